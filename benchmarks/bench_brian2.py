"""Steps per second: the LIF backend (torch) vs Brian2 (Cython, compile excluded) and Lava's
floating-point CPU simulator on the same network.

One trial (batch 1), random recurrent weights (dense, or sparse with ``--density p``), T steps at
dt = 1 ms; throughput in steps/s and neuron-steps/s (N × steps/s).  The Brian2
network first runs one step (code generation and Cython compilation happen then); the
remaining steps are timed by Brian2's own clock of its simulation loop (``device._last_run_time``),
which leaves out the ``gc.collect()`` and code-object set-up that every ``Network.run`` call pays
(about 0.5 s per call in a process holding torch).  The mean firing rate is printed: this network
fires at some hundred Hz; ``bench_lif_rates.py`` sweeps the rate.

    python benchmarks/bench_brian2.py [--steps 1000] [--sizes 100 1000] [--density 0.1] [--codegen cython]
"""
from __future__ import annotations

import argparse
import time

import torch

import neuro


def spec_for(n, density=1.0):
    return neuro.models.load("romo_rate").replace(**{
        "dt": 1.0, "populations[0].neuron.model": "lif", "populations[0].size": n, "n_inputs": 3,
        "populations[0].neuron.tau_syn": 5.0, "populations[0].neuron.tau_mem": 10.0,
        "populations[0].neuron.tau_readout": 20.0, "input.gain": 3.0, "recurrent.gain": 1.0,
        "recurrent.density": density})


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--sizes", type=int, nargs="+", default=[100, 1000])
    p.add_argument("--codegen", default="cython", choices=["cython", "numpy"])
    p.add_argument("--density", type=float, default=1.0, help="recurrent connection probability")
    p.add_argument("--no-lava", action="store_true", help="skip Lava (slow at large N)")
    args = p.parse_args()
    torch.set_num_threads(1)
    print(f"T = {args.steps}, batch 1, density {args.density}, Brian2 target {args.codegen}, 1 torch thread")
    print(f"{'N':>6s} {'neuro steps/s':>14s} {'neuron-steps/s':>15s} {'Brian2 steps/s':>15s} {'ratio':>7s} "
          f"{'Lava steps/s':>13s} {'ratio':>7s} {'rate Hz':>8s}")
    for n in args.sizes:
        spec = spec_for(n, args.density)
        net = neuro.compile(spec, "lif", neuro.init_weights(spec, 0))
        x = torch.rand(args.steps, 1, 3)
        with torch.no_grad():
            net.run(x[:10])
            start = time.perf_counter()
            rate = 1000 * float(net.run(x).spikes.mean()) / spec.dt
            ours = args.steps / (time.perf_counter() - start)
        model = neuro.export(net, "brian2", codegen=args.codegen)
        brian2 = model.set_codegen()
        currents = (x[:, 0].numpy().astype(float)) @ model.w.W_in.T
        network = model._network(currents)[0]
        network.run(spec.dt * brian2.ms)        # code generation and compilation happen here
        network.run((args.steps - 1) * spec.dt * brian2.ms)
        theirs = (args.steps - 1) / brian2.get_device()._last_run_time
        lava = float("nan")
        if not args.no_lava:
            sim = neuro.export(net, "lava")
            sim._trial(x[:10, 0].numpy().astype(float))        # process start-up paid once
            start = time.perf_counter()
            sim._trial(x[:, 0].numpy().astype(float))
            lava = args.steps / (time.perf_counter() - start)
        print(f"{n:6d} {ours:14.0f} {ours * n:15.3g} {theirs:15.0f} {ours / theirs:7.2f} {lava:13.0f} {ours / lava:7.2f} {rate:8.1f}")


if __name__ == "__main__":
    main()

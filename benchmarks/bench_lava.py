"""Steps per second: Lava's simulator (float and Loihi fixed point) vs the LIF backend, same network.

    python benchmarks/bench_lava.py [--steps 1000] [--sizes 50 200] [--batch 1 16]

Lava's time is a whole ``run`` as a user sees it (process build, compilation, start-up of its
processes, T steps); "per step" subtracts a 10-step run's time to remove the start-up.  A batch runs
as parallel populations (block-diagonal recurrent weights) in one Lava run; the LIF backend runs it
as a batched tensor.  Steps/s count network steps (one step of all B trials).
"""
from __future__ import annotations

import argparse
import time

import torch

import neuro


def spec_for(n: int):
    return neuro.models.load("romo_rate").replace(**{
        "dt": 1.0, "populations[0].neuron.model": "lif", "populations[0].size": n, "n_inputs": 3,
        "populations[0].neuron.tau_syn": 5.0, "populations[0].neuron.tau_mem": 10.0,
        "input.gain": 3.0, "recurrent.gain": 1.0, "input.bias": True})


def seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--sizes", type=int, nargs="+", default=[50, 200])
    p.add_argument("--batch", type=int, nargs="+", default=[1, 16])
    args = p.parse_args()
    torch.set_num_threads(1)
    print(f"T = {args.steps}, 1 torch thread; Lava = whole run incl. start-up (per step: start-up removed)")
    print(f"{'N':>5s} {'B':>3s} {'LIF steps/s':>12s} {'precision':>9s} {'Lava steps/s':>13s} {'LIF ÷ Lava':>11s}"
          f" {'Lava per step':>14s} {'LIF ÷ Lava/step':>16s}")
    for n in args.sizes:
        spec = spec_for(n)
        net = neuro.compile(spec, "lif", neuro.init_weights(spec, 0))
        for b in args.batch:
            x = torch.rand(args.steps, b, 3)
            with torch.no_grad():
                net.run(x[:10])
                ours = args.steps / seconds(lambda: net.run(x))
            for precision in ("float", "fixed"):
                sim = neuro.export(net, "lava", precision=precision, progress=False)
                sim.run(x[:10])                                   # lava imported, caches warm
                short = seconds(lambda: sim.run(x[:10]))
                full = seconds(lambda: sim.run(x))
                lava, per_step = args.steps / full, (args.steps - 10) / max(full - short, 1e-9)
                print(f"{n:5d} {b:3d} {ours:12.0f} {precision:>9s} {lava:13.0f} {ours / lava:11.1f}"
                      f" {per_step:14.0f} {ours / per_step:16.1f}")


if __name__ == "__main__":
    main()

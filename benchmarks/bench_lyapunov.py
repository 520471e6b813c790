"""Lyapunov spectrum cost: neuro's JVP/QR method vs forming the full Jacobian every step.

The plain reference is what one writes first: ``torch.func.jacrev`` of the one-step map
(an N×N Jacobian per step), then ``J @ Q`` and a QR.  Both use one trajectory of a
ReLU rate network (Romo spec, g = 1.5) driven by zero input; times are per time step,
so the reference can run fewer steps than neuro (``--ref-steps``).

    python benchmarks/bench_lyapunov.py [--steps 1000] [--ref-steps 20] [--sizes 64 128 256 512 1024]
"""
from __future__ import annotations

import argparse
import time

import torch

import neuro
from neuro.lyapunov import full_jacobian_spectrum, lyapunov_spectrum


def per_step(fn, steps: int) -> float:
    fn(2)   # warm-up: first calls pay for lazy initialization
    start = time.perf_counter()
    fn(steps)
    return (time.perf_counter() - start) / steps


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--ref-steps", type=int, default=20)
    p.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256, 512, 1024])
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(f"T = {args.steps} (reference: {args.ref_steps} steps, per-step cost scaled), "
          f"{args.threads} thread(s)")
    print(f"{'N':>5s} {'k':>5s} {'neuro ms/step':>14s} {'full-J ms/step':>15s} {'ratio':>7s} {'neuro total s':>14s}")
    for n in args.sizes:
        spec = neuro.models.load("romo_rate").replace(**{"populations[0].size": n, "recurrent.gain": 1.5})
        net = neuro.compile(spec, "rate")
        for k in (n, 10):
            ours = per_step(lambda T: lyapunov_spectrum(net, steps=T, k=k), args.steps)
            ref = per_step(lambda T: full_jacobian_spectrum(net, steps=T, k=k), args.ref_steps)
            print(f"{n:5d} {k:5d} {ours * 1e3:14.3f} {ref * 1e3:15.3f} {ref / ours:7.1f} {ours * args.steps:14.2f}")


if __name__ == "__main__":
    main()

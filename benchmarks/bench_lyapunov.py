"""Lyapunov spectrum cost: neuro's JVP/QR method vs forming the full Jacobian every step.

neuro pushes k tangent vectors through the analytic Jacobian–vector product
``J Q = α Q + (1-α) W (f'(h) ⊙ Q)`` (O(N²k) per step) and QRs them.  Two plain
references form the N×N Jacobian every step, then ``J @ Q`` and the same QR:

- ``jacrev``: what a generic tool does — ``torch.func.jacrev`` of the one-step map
  (N reverse passes, O(N³) per step); ``neuro.lyapunov.dense_jacobian_spectrum``;
- ``dense``: the closed-form ``αI + (1-α) W diag f'(h)`` built as a matrix (O(N²) to
  build, O(N²k) to apply) — the best a hand-written dense loop can do.

One trajectory of the Romo ReLU rate network (g = 1.5, zero input), float32.
neuro runs the full T steps; the references run ``--ref-steps`` steps and their
per-step cost is scaled to T (it does not depend on t).  Ratios are reference
time / neuro time (> 1: neuro is faster).

    python benchmarks/bench_lyapunov.py            # N = 64 … 1024, k = N and 10, T = 1000
    python benchmarks/bench_lyapunov.py --quick    # T = 100, N up to 512
"""
from __future__ import annotations

import argparse
import time

import torch

import neuro
from neuro.lyapunov import dense_jacobian_spectrum, lyapunov_spectrum


def dense_analytic_spectrum(net, steps: int, k: int, seed: int = 0):
    """Plain loop with the closed-form dense Jacobian ``αI + (1-α) W diag f'(h)`` every step."""
    with torch.no_grad():
        p = net.effective()
        gen = torch.Generator().manual_seed(seed)
        n = net.n_hidden
        h = torch.randn(1, n, generator=gen).to(p["W_rec"])
        x = torch.zeros(1, net.spec.n_inputs).to(h)
        Q = torch.linalg.qr(torch.randn(1, n, k, generator=gen).to(h))[0]
        eye = torch.eye(n).to(h)
        logs = torch.zeros(1, k).to(h)
        for _ in range(steps):
            J = net.alpha * eye + (1 - net.alpha) * p["W_rec"] * net.fprime(h).unsqueeze(-2)
            Q, R = torch.linalg.qr(J @ Q)
            logs += torch.log(torch.diagonal(R, dim1=-2, dim2=-1).abs())
            h = net.step(h, x, p)
    return logs / steps


def seconds(fn, steps: int) -> float:
    fn(2)   # warm-up: first calls pay for lazy initialization
    start = time.perf_counter()
    fn(steps)
    return time.perf_counter() - start


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=1000, help="T for neuro's spectrum")
    p.add_argument("--ref-steps", type=int, default=20, help="steps timed for each reference (scaled to T)")
    p.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256, 512, 1024])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--quick", action="store_true", help="T = 100, N ≤ 512, 10 reference steps")
    args = p.parse_args()
    if args.quick:
        args.steps, args.ref_steps = 100, 10
        args.sizes = [n for n in args.sizes if n <= 512]
    torch.set_num_threads(args.threads)
    T = args.steps
    print(f"Lyapunov spectrum, T = {T}, {args.threads} thread(s), float32; references timed over "
          f"{args.ref_steps} steps and scaled to T")
    print(f"{'N':>5} {'k':>5} | {'neuro s':>8} | {'jacrev s':>9} {'ratio':>6} | {'dense s':>8} {'ratio':>6}")
    for n in args.sizes:
        spec = neuro.models.load("romo_rate").replace(**{"populations[0].size": n, "recurrent.gain": 1.5})
        net = neuro.compile(spec, "rate", neuro.init_weights(spec, 0))
        for k in (n, 10):
            ours = seconds(lambda s: lyapunov_spectrum(net, steps=s, k=k), T)
            scale = T / args.ref_steps
            jac = seconds(lambda s: dense_jacobian_spectrum(net, steps=s, k=k), args.ref_steps) * scale
            dense = seconds(lambda s: dense_analytic_spectrum(net, s, k), args.ref_steps) * scale
            print(f"{n:5d} {k:5d} | {ours:8.3f} | {jac:9.3f} {jac / ours:6.1f} | {dense:8.3f} {dense / ours:6.1f}",
                  flush=True)


if __name__ == "__main__":
    main()

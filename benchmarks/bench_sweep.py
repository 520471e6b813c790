"""Sweeps as ensembles vs one process per run with a plain PyTorch loop.

The initialization study's grid — 5 gains × {BPTT, e-prop} × 5 seeds, 64 ReLU
units, batch 32, Romo (140 steps), Adam — run two ways on the same cores:

* ``neuro sweep``: one ensemble per rule (25 members each), the two ensembles on a
  local pool of one worker per core, results written to a run folder;
* one process per run (50 processes, one per core at a time), each training a
  plain PyTorch network written the way Yang & Wang's primer writes it
  (``nn.Linear`` input and recurrent layers inside the Python time loop, masked
  MSE, ``loss.backward()``, Adam); e-prop detaches the recurrent rate.

Then time per iteration vs ensemble size E and vs N (one thread): the whole step's
arithmetic rate (its multiply-adds over its time) beside what MKL's batched matmuls
alone take at the same shapes (the floor of any implementation built on them — the
compiled rollout kernel beats it), and where an ensemble iteration's time goes.  The grid's own
floor is printed beside it: the grid's recurrent multiply-adds at one core's large-matmul rate
(or ``--peak-gflops``) times the cores, with nothing else to do.

    python benchmarks/bench_sweep.py [--quick] [--iterations 100] [--cores 2]
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
GAINS = [0.2, 0.5, 1.0, 1.5, 2.0]
SEEDS = range(5)
RULES = ["bptt", "eprop"]


# -- the plain loop, one process per run ---------------------------------------------

class PlainCTRNN(nn.Module):
    """h ← α h + (1-α)(W_rec relu(h) + W_in x), y = W_out relu(h) + b, as in the primer's CTRNN."""

    def __init__(self, n_in, n_hidden, n_out, alpha, gain, eprop):
        super().__init__()
        self.input2h = nn.Linear(n_in, n_hidden, bias=False)
        self.h2h = nn.Linear(n_hidden, n_hidden, bias=False)
        nn.init.normal_(self.h2h.weight, 0.0, gain / n_hidden ** 0.5)
        self.fc = nn.Linear(n_hidden, n_out)
        self.alpha, self.eprop = alpha, eprop

    def forward(self, x):
        h = torch.zeros(x.shape[1], self.h2h.weight.shape[0])
        states = []
        for t in range(x.shape[0]):
            r = torch.relu(h)
            if self.eprop:          # e-prop / RFLO: no credit through the recurrent input
                r = r.detach()
            h = self.alpha * h + (1 - self.alpha) * (self.h2h(r) + self.input2h(x[t]))
            states.append(h)
        return self.fc(torch.relu(torch.stack(states)))


def plain_run(rule: str, gain: float, seed: int, iterations: int) -> None:
    """One run of the grid, the way a script per run does it (this is what each process executes)."""
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    from neuro.tasks import Romo
    task = Romo(dt=20.0, tau=100.0)
    net = PlainCTRNN(1, 64, 2, 0.8, gain, rule == "eprop")
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    for it in range(iterations):
        b = task.batch(32, seed=(seed, it))
        loss = ((((net(b.inputs) - b.targets) ** 2).mean(-1)) * b.mask).sum() / b.mask.sum()
        opt.zero_grad()
        loss.backward()
        opt.step()


def time_plain_grid(iterations: int, cores: int) -> float:
    cmd = lambda rule, g, s: [sys.executable, __file__, "--plain-run", rule, str(g), str(s), str(iterations)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    start = time.perf_counter()
    with cf.ThreadPoolExecutor(cores) as pool:
        jobs = [pool.submit(subprocess.run, cmd(r, g, s), check=True, env=env, cwd=ROOT)
                for r in RULES for g in GAINS for s in SEEDS]
        for j in jobs:
            j.result()
    return time.perf_counter() - start


def plain_seconds_per_iteration(rule: str, iterations: int) -> float:
    from neuro.tasks import Romo
    task = Romo(dt=20.0, tau=100.0)
    net = PlainCTRNN(1, 64, 2, 0.8, 1.0, rule == "eprop")
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    start = time.perf_counter()
    for it in range(iterations):
        b = task.batch(32, seed=(0, it))
        loss = ((((net(b.inputs) - b.targets) ** 2).mean(-1)) * b.mask).sum() / b.mask.sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return (time.perf_counter() - start) / iterations


def process_startup_seconds() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import torch, neuro.tasks"], check=True, cwd=ROOT)
    return time.perf_counter() - start


def time_sweep_grid(iterations: int, cores: int) -> float:
    from neuro.executors import LocalPool
    from neuro.sweep import run_sweep
    exp = {"name": "bench", "spec": "romo_rate", "tasks": ["romo"], "rules": RULES, "gains": GAINS, "lrs": [1e-3],
           "seeds": len(SEEDS), "iterations": iterations, "batch_size": 32,
           "overrides": {"populations[0].size": 64}, "checkpoint_every": 10 ** 9}
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        run_sweep(exp, out, executor=LocalPool(workers=cores, threads=1), progress=False)
        return time.perf_counter() - start


# -- scaling and profile (one thread, in this process) ----------------------------------

def _setup(E: int, N: int, rule: str = "bptt"):
    import neuro
    spec = neuro.models.load("romo_rate").replace(**{"populations[0].size": N})
    task = neuro.tasks.get("romo", dt=spec.dt, tau=spec.neuron.tau)
    members = [{"seed": e, "lr": 1e-3, "overrides": {"recurrent.gain": GAINS[e % 5]}} for e in range(E)]
    return spec, task, members


def time_per_iteration(E: int, N: int, iterations: int, rule: str = "bptt") -> float:
    from neuro.ensemble import train_ensemble
    spec, task, members = _setup(E, N)
    train_ensemble(spec, task, rule, members, iterations=2, progress=False)          # warm-up
    start = time.perf_counter()
    train_ensemble(spec, task, rule, members, iterations=iterations, progress=False)
    return (time.perf_counter() - start) / iterations


def matmul_floor(E: int, N: int, T: int = 140, B: int = 32, rule: str = "bptt") -> float:
    """Seconds per iteration of the recurrence's matmuls alone: forward W f(h), and in the backward
    λ W (BPTT only) and Σ_t λ[t]ᵀ f(h[t]) — T products each of [E, B, N] × [E, N, N]."""
    h, W = torch.randn(E, B, N), torch.randn(E, N, N)
    acc = torch.zeros(E, N, N)
    products = 3 if rule == "bptt" else 2
    for _ in range(3):
        torch.matmul(h, W)
    reps = 5
    start = time.perf_counter()
    for _ in range(reps):
        for t in range(T):
            torch.matmul(h, W)
            acc.baddbmm_(h.transpose(-1, -2), h)
            if products == 3:
                torch.matmul(h, W)
    return (time.perf_counter() - start) / reps


def peak_gflops(n: int = 1024, reps: int = 5) -> float:
    """What one core reaches on a large square matmul (one thread): the arithmetic peak the
    grid's floor is measured against."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(reps))
    return 2 * n ** 3 / best / 1e9


def _timed(f) -> float:
    """CPU seconds (one thread): other jobs on a shared machine do not lower the peak measured."""
    start = time.process_time()
    f()
    return time.process_time() - start


def grid_floor(iterations: int, cores: int, peak: float, N: int = 64, T: int = 140, B: int = 32) -> float:
    """Seconds the grid cannot go below on ``cores`` cores: its recurrent multiply-adds (forward
    ``W f(h)``; backward ``Σ λᵀ f(h)`` and, for BPTT, ``λ W``; 2·B·N²·T each per iteration) over all
    runs, at ``peak`` GFLOP/s per core, with the cores never idle."""
    runs = len(GAINS) * len(SEEDS)
    flops = sum(runs * iterations * (3 if r == "bptt" else 2) * 2 * B * N * N * T for r in RULES)
    return flops / (peak * 1e9 * cores)


def step_gflops(N: int, seconds_per_member_iteration: float, rule: str = "bptt", T: int = 140, B: int = 32) -> float:
    """The recurrence's multiply-adds per member-iteration (forward W f(h); backward Σ λᵀ f(h) and, for
    BPTT, λ W — 2·B·N² each per step) divided by the measured time of the whole iteration."""
    products = 3 if rule == "bptt" else 2
    return products * 2 * B * N * N * T / seconds_per_member_iteration / 1e9


PARTS = {   # (file, function) whose cumulative time is one part of an iteration
    "rollout forward (compiled kernel)": ("rate_kernel.py", "forward"),
    "rollout adjoint (compiled kernel)": ("rate_kernel.py", "adjoint"),
    "task batches": ("romo.py", "member_batches"),
    "loss": ("base.py", "loss"),
    "accuracy": ("romo.py", "member_accuracies"),
    "Adam": ("ensemble.py", "step"),
}


def profile(E: int, N: int, iterations: int, rule: str = "bptt") -> list[tuple[str, float]]:
    """Seconds per iteration in each part of ``PARTS`` and the rest (cProfile: Python-level calls;
    the compiled kernel is one call each way)."""
    import cProfile
    import pstats

    from neuro.ensemble import train_ensemble
    spec, task, members = _setup(E, N)
    train_ensemble(spec, task, rule, members, iterations=2, progress=False)
    prof = cProfile.Profile()
    prof.enable()
    train_ensemble(spec, task, rule, members, iterations=iterations, progress=False)
    prof.disable()
    stats = pstats.Stats(prof).stats
    cumulative = lambda file, fn: sum(v[3] for (f, _, name), v in stats.items() if f.endswith(file) and name == fn)
    total = cumulative("ensemble.py", "train_ensemble")
    rows = [(part, cumulative(*where) / iterations) for part, where in PARTS.items()]
    rows.append(("everything else (Python loop, gradient checks, autograd glue)", total / iterations - sum(r[1] for r in rows)))
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer iterations and sizes (a few minutes)")
    p.add_argument("--iterations", type=int, default=None, help="training iterations per run of the grid")
    p.add_argument("--cores", type=int, default=2, help="processes at a time (both sides)")
    p.add_argument("--peak-gflops", type=float, default=None,
                   help="per-core arithmetic rate for the grid's floor (default: measured on a large matmul)")
    p.add_argument("--skip-grid", action="store_true", help="only the scaling and the profile")
    p.add_argument("--plain-run", nargs=4, metavar=("RULE", "GAIN", "SEED", "ITERATIONS"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.plain_run:
        rule, gain, seed, its = args.plain_run
        plain_run(rule, float(gain), int(seed), int(its))
        return
    torch.set_num_threads(1)
    iterations = args.iterations or (20 if args.quick else 200)
    if not args.skip_grid:
        print(f"## Grid: 5 gains × 2 rules × 5 seeds = 50 runs, N = 64, batch 32, Romo, {iterations} iterations, "
              f"{args.cores} processes at a time\n")
        sweep = time_sweep_grid(iterations, args.cores)
        plain = time_plain_grid(iterations, args.cores)
        print("| approach | wall time (s) | speed-up |\n|---|---|---|")
        print(f"| one process per run, plain PyTorch loop | {plain:.1f} | 1.0× |")
        print(f"| neuro sweep (2 ensembles of 25) | {sweep:.1f} | {plain / sweep:.1f}× |")
        peak = args.peak_gflops or peak_gflops()
        floor = grid_floor(iterations, args.cores, peak)
        source = "given" if args.peak_gflops else "one core's large-matmul rate through torch/MKL, CPU time"
        print(f"| floor: the grid's recurrent multiply-adds at {peak:.0f} GFLOP/s per core ({source}) × "
              f"{args.cores} cores, no other work | {floor:.1f} | {plain / floor:.1f}× |\n")
        print(f"The sweep takes {sweep / floor:.2f}× this floor; at this arithmetic rate the speed-up over the plain "
              f"processes cannot exceed {plain / floor:.1f}×.\n")

    its = 3 if args.quick else 10
    full = 1500
    startup = process_startup_seconds()
    plain_it = {r: plain_seconds_per_iteration(r, its) for r in RULES}
    ens_it = {r: time_per_iteration(25, 64, its, r) for r in RULES}
    plain_full = len(GAINS) * len(SEEDS) * sum(startup + full * plain_it[r] for r in RULES) / args.cores
    ens_full = max(ens_it.values()) * full + startup        # the two ensembles run side by side
    print(f"## Per-iteration costs (one thread) and the paper's {full} iterations extrapolated\n")
    print("| | BPTT | e-prop |\n|---|---|---|")
    print(f"| plain loop, s / iteration (one run) | {plain_it['bptt']:.4f} | {plain_it['eprop']:.4f} |")
    print(f"| ensemble of 25, s / iteration | {ens_it['bptt']:.4f} | {ens_it['eprop']:.4f} |")
    print(f"| ensemble, s / member-iteration | {ens_it['bptt'] / 25:.4f} | {ens_it['eprop'] / 25:.4f} |")
    print(f"\nProcess start-up (python + torch + neuro.tasks): {startup:.1f} s.  Grid at {full} iterations on "
          f"{args.cores} cores: plain ≈ {plain_full:.0f} s, ensembles ≈ {ens_full:.0f} s "
          f"→ {plain_full / ens_full:.1f}×.\n")

    print(f"## Time per iteration vs ensemble size E (N = 64, BPTT, one thread, {its} iterations)\n")
    print("| E | s / iteration | ms / member-iteration | GFLOP/s of the whole step | MKL batched matmuls alone (s) |")
    print("|---|---|---|---|---|")
    for E in ([1, 5, 25] if args.quick else [1, 5, 10, 25, 50]):
        t, floor = time_per_iteration(E, 64, its), matmul_floor(E, 64)
        print(f"| {E} | {t:.3f} | {1e3 * t / E:.2f} | {step_gflops(64, t / E):.0f} | {floor:.3f} |")
    print("\n## Time per iteration vs N (E = 25, BPTT, one thread)\n")
    print("| N | s / iteration | ms / member-iteration | GFLOP/s of the whole step | MKL batched matmuls alone (s) |")
    print("|---|---|---|---|---|")
    for N in ([32, 64, 128] if args.quick else [32, 64, 128, 256]):
        t, floor = time_per_iteration(25, N, its), matmul_floor(25, N)
        print(f"| {N} | {t:.3f} | {1e3 * t / 25:.2f} | {step_gflops(N, t / 25):.0f} | {floor:.3f} |")
    for rule in RULES:
        print(f"\n## Where an iteration's time goes (E = 25, N = 64, {rule}, cProfile)\n")
        rows = profile(25, 64, its, rule)
        total = sum(r[1] for r in rows)
        print("| part | ms / iteration | share |\n|---|---|---|")
        for name, sec in rows:
            print(f"| {name} | {1e3 * sec:.1f} | {100 * sec / total:.0f}% |")
        print(f"| (iteration) | {1e3 * total:.1f} | 100% |")


if __name__ == "__main__":
    main()

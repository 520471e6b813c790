"""Training iterations per second: neuro vs a plain PyTorch loop written like Yang & Wang's primer.

Setup of the initialization paper: 64 ReLU units, batch 32, Romo (140 steps at dt/τ = 0.2), Adam.
The plain loop is the primer's CTRNN pattern: nn.Linear input and recurrent layers applied inside
the Python time loop, output layer on the stacked rates, MSE on the masked outputs.  e-prop in the
plain loop detaches the recurrent rate, as the initialization paper describes.

    python benchmarks/bench_training.py [--iterations 100] [--threads 1]
"""
from __future__ import annotations

import argparse
import time

import torch
from torch import nn

import neuro


class PrimerRNN(nn.Module):
    """The primer's continuous-time RNN, written the plain way."""

    def __init__(self, n_in, n_hidden, n_out, alpha, eprop=False):
        super().__init__()
        self.input2h = nn.Linear(n_in, n_hidden, bias=False)
        self.h2h = nn.Linear(n_hidden, n_hidden, bias=False)
        self.fc = nn.Linear(n_hidden, n_out)
        self.alpha, self.eprop = alpha, eprop

    def forward(self, x):
        h = torch.zeros(x.shape[1], self.h2h.weight.shape[0])
        states = []
        for t in range(x.shape[0]):
            r = torch.relu(h)
            if self.eprop:
                r = r.detach()
            h = self.alpha * h + (1 - self.alpha) * (self.h2h(r) + self.input2h(x[t]))
            states.append(h)
        return self.fc(torch.relu(torch.stack(states)))


def time_plain(task, spec, eprop: bool, iterations: int) -> float:
    net = PrimerRNN(1, spec.n_hidden, 2, spec.alpha, eprop)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    batches = [task.batch(32, seed=i) for i in range(iterations)]
    start = time.perf_counter()
    for b in batches:
        out = net(b.inputs)
        loss = ((((out - b.targets) ** 2).mean(-1)) * b.mask).sum() / b.mask.sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return iterations / (time.perf_counter() - start)


def time_neuro(task, spec, rule: str, iterations: int) -> float:
    net = neuro.compile(spec, "rate", neuro.init_weights(spec, 0))
    # batches are drawn inside neuro.train; draw them once here so both sides time training only
    cache = {}
    original = task.batch
    task.batch = lambda n, seed=0, dtype=torch.float32: cache.setdefault(seed, original(n, seed, dtype))
    for i in range(iterations):
        task.batch(32, seed=(0, i))
    start = time.perf_counter()
    neuro.train(net, task, neuro.rules.get(rule), iterations=iterations, lr=1e-3, progress=False, eval_every=10**9)
    elapsed = time.perf_counter() - start
    task.batch = original
    return iterations / elapsed


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--iterations", type=int, default=100)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    spec = neuro.models.load("romo_rate")
    task = neuro.tasks.get("romo")
    print(f"Romo, N = {spec.n_hidden}, batch 32, T = {task.n_steps}, {args.threads} thread(s), "
          f"{args.iterations} iterations")
    print(f"{'rule':8s} {'neuro it/s':>11s} {'plain it/s':>11s} {'ratio':>7s}")
    for rule in ("bptt", "eprop"):
        plain = time_plain(task, spec, rule == "eprop", args.iterations)
        ours = time_neuro(task, spec, rule, args.iterations)
        print(f"{rule:8s} {ours:11.1f} {plain:11.1f} {ours / plain:7.2f}")


if __name__ == "__main__":
    main()

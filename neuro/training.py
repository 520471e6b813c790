"""``neuro.train``: the training loop for gradient rules (Adam by default).

Each iteration draws a fresh batch seeded by ``(seed, iteration)`` and hidden
noise from a generator seeded by ``seed``, so the same spec, seed and rule give
the same loss history on the CPU.  With a ``run_dir`` it writes the history
(``history.csv``) and checkpoints (``checkpoint.pt``) and resumes from them.
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .io import atomic_torch_save


class TrainingError(RuntimeError):
    """Training stopped (e.g. the loss became NaN/Inf); the message says where the last good weights are.
    ``history`` holds the iterations that completed."""

    def __init__(self, message: str, history: "History | None" = None):
        super().__init__(message)
        self.history = history


@dataclass
class History:
    iteration: list[int] = field(default_factory=list)
    loss: list = field(default_factory=list)          # float, or a list per ensemble member
    accuracy: list = field(default_factory=list)

    def append(self, iteration: int, loss, accuracy) -> None:
        self.iteration.append(iteration)
        self.loss.append(loss)
        self.accuracy.append(accuracy)

    def __len__(self) -> int:
        return len(self.iteration)

    def to_csv(self, path) -> None:
        path = Path(path)
        tmp = path.with_suffix(".tmp")
        with open(tmp, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["iteration", "loss", "accuracy"])
            w.writerows(zip(self.iteration, self.loss, self.accuracy))
        tmp.replace(path)

    def state(self) -> dict:
        return {"iteration": self.iteration, "loss": self.loss, "accuracy": self.accuracy}


def _optimizer(name: str, params, lr: float):
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr)
    raise ValueError(f"optimizer must be 'adam' or 'sgd', got {name!r}")


def _scalar(x: torch.Tensor):
    x = x.detach()
    return float(x) if x.dim() == 0 else [float(v) for v in x]


def train(net, task, rule, iterations: int = 500, lr: float = 1e-3, batch_size: int = 32, seed: int = 0,
          optimizer: str = "adam", run_dir=None, checkpoint_every: int = 100, progress: bool = True,
          eval_every: int = 1, resume: bool = True, desc: str | None = None) -> History:
    """Train ``net`` on ``task`` with a learning ``rule``; return the per-iteration ``History``.

    Online rules (those with ``fit``: FORCE, full-FORCE, reward-modulated Hebbian …)
    run their own loop and are dispatched to.
    """
    if not hasattr(rule, "loss_and_gradients"):
        if hasattr(rule, "fit"):
            return rule.fit(net, task, iterations=iterations, seed=seed, progress=progress, run_dir=run_dir)
        raise TypeError(f"{rule!r} is not a learning rule (it has neither loss_and_gradients nor fit)")
    if not isinstance(iterations, int) or iterations < 0:
        raise ValueError(f"iterations must be an integer >= 0, got {iterations!r}")
    if not (isinstance(lr, (int, float)) and lr > 0 and math.isfinite(lr)):
        raise ValueError(f"lr must be a finite number > 0, got {lr!r}")
    params = net.trainable()
    opt = _optimizer(optimizer, list(params.values()), lr)
    history, start = History(), 0
    ckpt = Path(run_dir) / "checkpoint.pt" if run_dir is not None else None
    if ckpt is not None:
        ckpt.parent.mkdir(parents=True, exist_ok=True)
        if resume and ckpt.exists():
            state = torch.load(ckpt, weights_only=False)
            net.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            history = History(**state["history"])
            start = state["iteration"]
    generator = torch.Generator(device=next(iter(params.values())).device if params else "cpu")
    generator.manual_seed(seed * 1_000_003 + start)

    def save(iteration: int) -> None:
        if ckpt is not None:
            atomic_torch_save({"model": net.state_dict(), "optimizer": opt.state_dict(),
                               "history": history.state(), "iteration": iteration}, ckpt)
            history.to_csv(ckpt.parent / "history.csv")

    dtype = next(iter(params.values())).dtype if params else torch.float32
    bar = tqdm(range(start, iterations), desc=desc or f"{getattr(rule, 'name', 'rule')}", disable=not progress,
               leave=False, dynamic_ncols=True, mininterval=1.0)
    good = None
    for it in bar:
        batch = task.batch(batch_size, seed=(seed, it), dtype=dtype)
        loss, outputs, grads = rule.loss_and_gradients(net, batch, task, generator=generator)
        bad = not bool(torch.isfinite(loss).all()) or any(not bool(torch.isfinite(g).all()) for g in grads.values())
        if bad:
            if good is not None:   # roll back to the last weights whose loss was finite
                with torch.no_grad():
                    for k, p in params.items():
                        p.copy_(good[k])
                save(max(it - 1, 0))
            where = f"; the last good weights are restored in the model and saved to {ckpt}" if ckpt else ""
            raise TrainingError(f"loss or gradient became non-finite at iteration {it} "
                                f"(loss={_scalar(loss)}, lr={lr}, rule={getattr(rule, 'name', rule)}){where}",
                                history)
        acc = task.accuracy(outputs, batch) if (it % eval_every == 0 or it == iterations - 1) else float("nan")
        history.append(it, _scalar(loss), acc)
        good = {k: p.detach().clone() for k, p in params.items()}
        for k, p in params.items():
            p.grad = grads[k]
        opt.step()
        opt.zero_grad(set_to_none=True)
        if progress:
            l = history.loss[-1]
            bar.set_postfix(loss=f"{(sum(l) / len(l)) if isinstance(l, list) else l:.4f}", acc=f"{acc:.2f}")
        if ckpt is not None and ((it + 1) % checkpoint_every == 0 or it == iterations - 1):
            save(it + 1)
    return history

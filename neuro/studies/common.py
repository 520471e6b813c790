"""Pieces the paper reproductions share: members of a condition, training them, tidy tables."""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from tqdm.auto import tqdm

import neuro
from neuro.io import atomic_write_text


@dataclass
class Member:
    """One network of a condition: its seed, learning rate and spec overrides (e.g. the gain)."""

    seed: int
    lr: float
    overrides: dict = field(default_factory=dict)

    def spec(self, base):
        return base.replace(**self.overrides)

    def network(self, base, **options):
        spec = self.spec(base)
        return neuro.compile(spec, "rate", neuro.init_weights(spec, self.seed), **options)


@dataclass
class Result:
    member: Member
    history: neuro.History
    net: object
    diverged: bool = False      # the loss became non-finite; history stops there

    @property
    def lr(self) -> float:
        return self.member.lr


def train_members(spec, task, rule: str, members: list[Member], iterations: int, batch_size: int,
                  progress: bool = True, desc: str = "", nets=None) -> list[Result]:
    """Train each member (from its own seed, or from the given ``nets``) with the named rule."""
    results = []
    bar = tqdm(members, desc=desc, disable=not progress, dynamic_ncols=True)
    for i, m in enumerate(bar):
        net = nets[i] if nets is not None else m.network(spec)
        try:
            history = neuro.train(net, task, neuro.rules.get(rule), iterations=iterations, lr=m.lr,
                                  batch_size=batch_size, seed=m.seed, progress=False)
            results.append(Result(m, history, net))
        except neuro.TrainingError as e:     # a diverging run is a result, not a crash of the study
            results.append(Result(m, e.history, net, diverged=True))
        if results[-1].history.loss:
            bar.set_postfix(loss=f"{results[-1].history.loss[-1]:.4f}")
    return results


def final_loss(result: Result, n: int = 20) -> float:
    """Mean loss over the last ``n`` iterations (inf for a run that diverged)."""
    if result.diverged or not result.history.loss:
        return float("inf")
    return float(sum(result.history.loss[-n:]) / len(result.history.loss[-n:]))


def write_rows(path, rows: list[dict]) -> None:
    if not rows:
        return
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
    atomic_write_text(path, buf.getvalue())


def write_metrics(path, curves: dict) -> None:
    """Tidy table: one row per (task, rule, gain, seed, iteration)."""
    rows = []
    for (task, rule, gain), results in curves.items():
        for r in results:
            h = r.history
            rows.extend({"task": task, "rule": rule, "gain": gain, "seed": r.member.seed, "lr": r.lr,
                         "iteration": it, "loss": loss, "accuracy": acc}
                        for it, loss, acc in zip(h.iteration, h.loss, h.accuracy))
    write_rows(path, rows)

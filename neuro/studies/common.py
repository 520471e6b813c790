"""Pieces the paper reproductions share: members of a condition, training them, tidy tables."""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

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
    """Train the members as one batched ensemble (``neuro.ensemble``), each from its own seed
    or from the given ``nets``; a member whose loss diverges is reported, not fatal."""
    from neuro.ensemble import Member as EnsembleMember, train_ensemble
    ens_members = [EnsembleMember(seed=m.seed, lr=m.lr, overrides=m.overrides,
                                  weights=None if nets is None else nets[i].weights())
                   for i, m in enumerate(members)]
    res = train_ensemble(spec, task, rule, ens_members, iterations=iterations, batch_size=batch_size,
                         progress=progress, desc=desc)
    return [Result(m, res.histories[e], res.network(e), diverged=res.diverged[e]) for e, m in enumerate(members)]


def final_loss(result: Result, n: int = 20) -> float:
    """Mean loss over the last ``n`` iterations (inf for a run that diverged)."""
    if result.diverged or not result.history.loss:
        return float("inf")
    return float(sum(result.history.loss[-n:]) / len(result.history.loss[-n:]))


def write_rows(path, rows: list[dict]) -> None:
    if not rows:
        return
    buf = io.StringIO()
    columns = list(dict.fromkeys(k for r in rows for k in r))     # every row's columns, first seen first
    w = csv.DictWriter(buf, fieldnames=columns, restval="")
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

"""The similarity study's dynamical comparison (the paper's appendix Fig. 8B), from a finished run
folder (``finals.npz``, ``references.npz``): DSA distances (``neuro.dsa``) of the BPTT and e-prop
final networks (default gain and learning rate) to every reference, and between BPTT and e-prop
of the same seed; the claim "DSA does not tell the rules apart by their distance to the data" is
an equivalence test over seeds (paired), as the geometric claims are.

    python -m neuro.studies.similarity_dsa RUN_FOLDER [--n-delays 10] [--rank 10] [--iters 1000]

writes ``dsa.csv`` and ``dsa.md`` into the folder.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from neuro.io import atomic_write_text
from neuro.studies import common
from neuro.studies.similarity_claims import _fmt, _test


def dsa_study(out: Path, n_delays: int = 10, rank: int = 10, iters: int = 1000, margin: float | None = None,
              rules: tuple = ("bptt", "eprop")) -> list[dict]:
    from neuro.dsa import dsa_distances
    from neuro.studies.similarity import load_finals
    out = Path(out)
    finals, references = load_finals(out)
    cfg = json.loads((out / "config.json").read_text())
    lr, margin = cfg["lr"], margin if margin is not None else cfg.get("equivalence_margin", 0.1)
    rows, lines = [], []
    for task, refs in references.items():
        seeds = sorted({k[5] for k in finals if k[0] == task and k[1] == rules[0]})
        keys = [(task, r, False, 1.0, lr, s) for r in rules for s in seeds]
        keys = [k for k in keys if k in finals]
        models = [finals[k][0] for k in keys]
        names = list(refs)
        to_data = dsa_distances(models, [refs[n] for n in names], n_delays=n_delays, rank=rank, iters=iters)
        between = dsa_distances([finals[k][0] for k in keys if k[1] == rules[0]],
                                [finals[k][0] for k in keys if k[1] == rules[1]],
                                n_delays=n_delays, rank=rank, iters=iters)
        for i, k in enumerate(keys):
            for j, n in enumerate(names):
                rows.append({"task": task, "rule": k[1], "seed": k[5], "reference": n, "dsa": float(to_data[i, j])})
        for s, d in zip(seeds, np.diag(between)):
            rows.append({"task": task, "rule": f"{rules[0]} vs {rules[1]}", "seed": s, "reference": "(models)",
                         "dsa": float(d)})
        for n in names:
            per = {r: {row["seed"]: row["dsa"] for row in rows if row["task"] == task and row["rule"] == r
                       and row["reference"] == n} for r in rules}
            a, b = np.array([per[rules[1]][s] for s in seeds]), np.array([per[rules[0]][s] for s in seeds])
            res = _test(a, b, "equivalent", margin)
            lines.append(f"| {task} | {n} | {_fmt(per[rules[0]])} | {_fmt(per[rules[1]])} | "
                         f"{_fmt(np.diag(between))} | {res['label']} | {res['reason']} |")
    common.write_rows(out / "dsa.csv", rows)
    text = ["# Dynamical similarity (DSA; Ostrow et al. 2023) of the final networks", "",
            f"n_delays {n_delays}, rank {rank}, angular score, {iters} optimizer iterations; default gain and "
            f"learning rate; mean ± std over seeds. Claim: e-prop's and BPTT's DSA distances to the reference are "
            f"comparable (paired over seeds, 95 % CI inside ±{margin:g} rad).", "",
            f"| task | reference | {rules[0]} to reference | {rules[1]} to reference | {rules[0]} vs {rules[1]} "
            f"(same seed) | comparable | reason |", "|---|---|---|---|---|---|---|", *lines]
    atomic_write_text(out / "dsa.md", "\n".join(text) + "\n")
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="DSA distances of a finished similarity run")
    p.add_argument("run")
    p.add_argument("--n-delays", type=int, default=10)
    p.add_argument("--rank", type=int, default=10)
    p.add_argument("--iters", type=int, default=1000)
    a = p.parse_args(argv)
    dsa_study(Path(a.run), a.n_delays, a.rank, a.iters)
    print(f"{a.run}/dsa.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

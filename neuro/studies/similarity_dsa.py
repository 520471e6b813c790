"""The similarity study's dynamical comparison (the paper's appendix Fig. 8B): DSA distances
(``neuro.dsa``) of the BPTT and e-prop final networks (default gain and learning rate) to every
reference, and between BPTT and e-prop of the same seed.  The claim "e-prop's and BPTT's DSA
distances to the data are comparable" is an equivalence test over seeds (paired), as the
geometric claims are, one per reference (claim 7 of the study's tables).

The study runs this stage itself (``Config.dsa``; it is skipped, and the report says so, where
dsa-metric is not installed); on a finished run folder (``finals.npz``, ``references.npz``):

    python -m neuro.studies.similarity_dsa RUN_FOLDER [--n-delays 10] [--rank 10] [--iters 1000]

writes ``dsa.csv`` and ``dsa.md`` into the folder, and claim 7 into its ``claims.csv``,
``robustness.csv`` and ``claims.md``.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from neuro.io import atomic_write_text
from neuro.studies import common
from neuro.studies.similarity_claims import _fmt, _test

CLAIM = "7"


def dsa_rows(finals: dict, references: dict, lr: float, n_delays: int = 10, rank: int = 10, iters: int = 1000,
             rules: tuple = ("bptt", "eprop")) -> list[dict]:
    """One row per (task, rule, seed, reference) with its DSA distance, plus the rows
    ``rule = "bptt vs eprop"``, ``reference = "(models)"``: the two rules' networks of the same seed.
    ``finals``: ``{(task, rule, dale, gain, lr, seed): (rates [C, T, N], W_rec)}``;
    ``references``: ``{task: {name: activity [C, T, n]}}``."""
    from neuro.dsa import dsa_distances
    opts = dict(n_delays=n_delays, rank=rank, iters=iters)
    rows = []
    for task, refs in references.items():
        seeds = sorted({k[5] for k in finals if k[0] == task and k[1] in rules and not k[2]
                        and k[3] == 1.0 and k[4] == lr})
        keys = [(task, r, False, 1.0, lr, s) for r in rules for s in seeds if (task, r, False, 1.0, lr, s) in finals]
        if not keys:
            continue
        names = list(refs)
        to_data = dsa_distances([finals[k][0] for k in keys], [refs[n] for n in names], **opts)
        for i, k in enumerate(keys):
            for j, n in enumerate(names):
                rows.append({"task": task, "rule": k[1], "seed": k[5], "reference": n, "dsa": float(to_data[i, j])})
        for s in seeds:
            pair = [(task, r, False, 1.0, lr, s) for r in rules[:2]]
            if all(k in finals for k in pair):
                d = dsa_distances([finals[pair[0]][0]], [finals[pair[1]][0]], **opts)[0, 0]
                rows.append({"task": task, "rule": f"{rules[0]} vs {rules[1]}", "seed": s, "reference": "(models)",
                             "dsa": float(d)})
    return rows


def dsa_claims(rows: list[dict], margin: float, neutral: dict | None = None,
               rules: tuple = ("bptt", "eprop")) -> list[dict]:
    """Claim 7 against each reference, in the study's claim format: e-prop's DSA distance to the
    reference is comparable to BPTT's (paired over seeds, 95 % CI inside ± ``margin``).
    ``neutral``: ``{reference: bool}`` (False for an in-family teacher)."""
    from neuro.studies.similarity import RULE_LABELS
    found = []
    pairs = {(r["task"], r["reference"]) for r in rows if r["reference"] != "(models)"}
    for task, ref in sorted(pairs):
        per = {rule: {r["seed"]: r["dsa"] for r in rows if r["task"] == task and r["reference"] == ref
                      and r["rule"] == rule} for rule in rules}
        seeds = sorted(set(per[rules[0]]) & set(per[rules[1]]))
        a, b = np.array([per[rules[1]][s] for s in seeds]), np.array([per[rules[0]][s] for s in seeds])
        between = [r["dsa"] for r in rows if r["task"] == task and r["reference"] == "(models)"]
        found.append({"task": task, "claim": CLAIM, "subject": "dsa", "reference": ref,
                      "what": f"DSA: {RULE_LABELS[rules[1]]}'s dynamical distance to the data is comparable to "
                              f"{RULE_LABELS[rules[0]]}'s (|Δ| < {margin:g} rad)",
                      "level": np.nan, "numbers": f"{RULE_LABELS[rules[0]]} {_fmt(per[rules[0]])}, "
                                                  f"{RULE_LABELS[rules[1]]} {_fmt(per[rules[1]])}; between them "
                                                  f"(same seed) {_fmt(between)}",
                      **_test(a, b, "equivalent", margin), "neutral": (neutral or {}).get(ref, True)})
    return found


def dsa_markdown(rows: list[dict], claims: list[dict], n_delays: int, rank: int, iters: int, margin: float) -> str:
    lines = ["# Dynamical similarity (DSA; Ostrow et al. 2023) of the final networks", "",
             f"n_delays {n_delays}, rank {rank}, angular score, {iters} optimizer iterations; default gain and "
             f"learning rate; mean ± std over seeds. Claim {CLAIM}: e-prop's and BPTT's DSA distances to the "
             f"reference are comparable (paired over seeds, 95 % CI inside ±{margin:g} rad).", "",
             "| task | reference | measured | comparable | reason |", "|---|---|---|---|---|"]
    for c in claims:
        lines.append(f"| {c['task']} | {c['reference']} | {c['numbers']} | {c['label']} | {c['reason']} |")
    lines += ["", "Every distance (rad):", "", "| task | rule | seed | reference | DSA |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['task']} | {r['rule']} | {r['seed']} | {r['reference']} | {r['dsa']:.4f} |")
    return "\n".join(lines) + "\n"


def write(out: Path, rows: list[dict], claims: list[dict], n_delays: int, rank: int, iters: int,
          margin: float) -> None:
    common.write_rows(Path(out) / "dsa.csv", rows)
    atomic_write_text(Path(out) / "dsa.md", dsa_markdown(rows, claims, n_delays, rank, iters, margin))


SECTION = "## Dynamical similarity (DSA, claim 7)"


def merge_into_tables(out: Path, found: list[dict]) -> None:
    """Put claim 7 into a finished run's ``claims.csv`` and ``robustness.csv`` (replacing any earlier
    claim 7) and its section into ``claims.md``, so a run made before the study ran DSA reads like one
    made after."""
    import csv

    from neuro.studies.similarity_claims import robustness
    path = Path(out) / "claims.csv"
    if not path.exists():
        return
    with open(path, newline="") as fh:
        old = [r for r in csv.DictReader(fh) if r["claim"] != CLAIM]
    for r in old:
        r["neutral"] = r.get("neutral", "True") != "False"
    columns = list(old[0]) if old else list(found[0])
    rows = old + [{k: c.get(k, "") for k in columns} for c in found]
    common.write_rows(path, rows)
    robust = robustness(rows)
    common.write_rows(Path(out) / "robustness.csv", [
        {**{k: v for k, v in r.items() if k != "labels"},
         "labels": "; ".join(f"{k}: {v}" for k, v in r["labels"].items())} for r in robust])
    md = Path(out) / "claims.md"
    if md.exists():
        text = md.read_text().split("\n" + SECTION)[0].rstrip("\n")
        lines = [SECTION, "", "| task | reference | measured | verdict | reason |", "|---|---|---|---|---|"]
        lines += [f"| {c['task']} | {c['reference']} | {c['numbers']} | {c['label']} | {c['reason']} |" for c in found]
        lines += ["", "Against every neutral reference: " + "; ".join(
            f"{r['task']}: **{r['overall']}**" for r in robust if r["claim"] == CLAIM) + ". Every distance: `dsa.md`."]
        atomic_write_text(md, text + "\n\n" + "\n".join(lines) + "\n")


def dsa_study(out: Path, n_delays: int = 10, rank: int = 10, iters: int = 1000, margin: float | None = None,
              rules: tuple = ("bptt", "eprop"), merge: bool = True) -> list[dict]:
    """DSA on a finished run folder: writes ``dsa.csv`` and ``dsa.md`` and (``merge``) puts claim 7
    into the folder's claim tables; returns the rows."""
    from neuro.studies.similarity import load_finals
    out = Path(out)
    finals, references = load_finals(out)
    cfg = json.loads((out / "config.json").read_text())
    margin = margin if margin is not None else cfg.get("equivalence_margin", 0.1)
    rows = dsa_rows(finals, references, cfg["lr"], n_delays, rank, iters, rules)
    neutral = {n: not n.startswith("teacher") for refs in references.values() for n in refs}
    found = dsa_claims(rows, margin, neutral, rules)
    write(out, rows, found, n_delays, rank, iters, margin)
    if merge and found:
        merge_into_tables(out, found)
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

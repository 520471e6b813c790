"""The similarity study's third stage: each of the paper's claims, decided against each
reference by a test across seeds (``neuro.curves.compare`` / ``verdict``: paired over seeds,
95 % CIs), then summarized across the references.

Distances are read off each run's snapshots at equal accuracy: 0.95 × the lowest best
accuracy among the compared runs.  "Comparable" claims are equivalence claims: held when
the 95 % CI of the paired difference lies inside ± ``cfg.equivalence_margin`` rad.  A
claim is *supported* when it is held against every neutral reference (stand-ins and a
recording); the in-family teacher is reported beside them and not counted.
"""
from __future__ import annotations

import numpy as np

from neuro import curves, similarity

MIN_LEVEL = 0.1     # below this normalized accuracy a comparison says nothing: reported, not judged


def select(rows, **where):
    return [r for r in rows if all(r[k] == v for k, v in where.items())]


def runs(rows, **where) -> dict:
    """seed -> (accuracy, distance) snapshot series (training order) of the rows matching ``where``."""
    found = {}
    for r in sorted(select(rows, **where), key=lambda r: r["iteration"]):
        found.setdefault(r["seed"], []).append((r["accuracy"], r["distance"]))
    return {s: tuple(np.array(v).T) for s, v in found.items()}


def at_accuracy(series, level: float) -> float:
    """Distance when the run reached ``level``: interpolated along its snapshots (in training order)."""
    acc, dist = series
    best = np.maximum.accumulate(acc)
    i = int(np.argmax(best >= level))
    if best[i] < level:
        return float("nan")
    if i == 0:
        return float(dist[0])
    a0, a1 = best[i - 1], acc[i]
    w = 0.0 if a1 == a0 else (level - a0) / (a1 - a0)
    return float(dist[i - 1] + np.clip(w, 0, 1) * (dist[i] - dist[i - 1]))


def matched(groups: dict) -> tuple[float, dict]:
    """Per group, per seed, the distance at the highest accuracy all the groups' runs reached (× 0.95)."""
    level = 0.95 * min(float(np.max(acc)) for g in groups.values() for acc, _ in g.values())
    return level, {k: {s: at_accuracy(v, level) for s, v in g.items()} for k, g in groups.items()}


def _paired(a: dict, b: dict) -> tuple[np.ndarray, np.ndarray]:
    seeds = sorted(set(a) & set(b))
    return np.array([a[s] for s in seeds]), np.array([b[s] for s in seeds])


def _fmt(v) -> str:
    v = np.asarray(list(v.values()) if isinstance(v, dict) else v, dtype=float)
    v = v[np.isfinite(v)]
    return f"{v.mean():.3f} ± {v.std(ddof=1) if len(v) > 1 else 0:.3f}" if len(v) else "n/a"


def _test(a, b, claim: str, margin: float | None) -> dict:
    """``a`` vs ``b`` (per-seed values) → label, reason and the comparison's numbers."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) < 2:
        return {"label": "inconclusive", "reason": f"{len(a)} seed(s): no test", "diff": np.nan,
                "ci_low": np.nan, "ci_high": np.nan, "p": np.nan, "effect": np.nan, "n": len(a)}
    cmp = curves.compare(a, b, paired=True)
    label, reason = curves.verdict(cmp, claim, margin=margin)
    return {"label": label, "reason": reason, "diff": cmp.diff_mean, "ci_low": cmp.ci[0], "ci_high": cmp.ci[1],
            "p": cmp.p, "effect": cmp.effect, "n": cmp.n}


def _combine(results: list[dict]) -> dict:
    """Several tests that must all hold: held if all held, not held if any is not held."""
    labels = [r["label"] for r in results]
    worst = next((r for r in results if r["label"] == "not held"), None) or \
        next((r for r in results if r["label"] == "inconclusive"), None) or results[0]
    label = "held" if all(x == "held" for x in labels) else ("not held" if "not held" in labels else "inconclusive")
    return {**worst, "label": label, "reason": "; ".join(r["reason"] for r in results)}


def claims_for(cfg, rows, name: str, reference: str, floor: dict | None, above: dict | None) -> list[dict]:
    """Claims 1, 2, 3a, 4, 5, 6 on one task against one reference."""
    rows = select(rows, task=name, reference=reference)
    margin = cfg.equivalence_margin
    found = []

    def add(claim, subject, what, numbers, level, result):
        if level is not None and level < MIN_LEVEL:
            result = {**result, "label": "not testable", "reason": f"equal accuracy only at {level:.2f}"}
        found.append({"task": name, "claim": claim, "subject": subject, "reference": reference, "what": what,
                      "level": np.nan if level is None else round(level, 3), "numbers": numbers, **result})

    base = {r: runs(rows, rule=r, dale=False, gain=1.0, lr=cfg.lr) for r in cfg.rules}
    base = {r: v for r, v in base.items() if v}
    if "bptt" in base:
        for rule in ("eprop", "tbptt"):
            if rule in base:
                level, d = matched({"bptt": base["bptt"], rule: base[rule]})
                a, b = _paired(d[rule], d["bptt"])
                add("1", rule, f"{_label(rule)} reaches a distance comparable to BPTT at equal accuracy "
                               f"(|Δ| < {margin:g} rad)", f"BPTT {_fmt(d['bptt'])}, {_label(rule)} {_fmt(d[rule])}",
                    level, _test(a, b, "equivalent", margin))
    gains = {g: runs(rows, rule="bptt", dale=False, gain=g, lr=cfg.lr) for g in cfg.gains}
    gains = {g: v for g, v in gains.items() if v}
    if len(gains) > 1 and "eprop" in base and 1.0 in gains:
        level, d = matched({**{f"g{g}": v for g, v in gains.items()}, "eprop": base["eprop"]})
        seeds = sorted(set.intersection(*[set(v) for v in d.values()]))
        spread = np.array([max(d[f"g{g}"][s] for g in gains) - min(d[f"g{g}"][s] for g in gains) for s in seeds])
        gap = np.array([abs(d["eprop"][s] - d["g1.0"][s]) for s in seeds])
        add("2", "gain", "the initial gain moves the BPTT distance more than switching BPTT → e-prop does",
            "; ".join(f"g={g}: {_fmt(d[f'g{g}'])}" for g in gains) + f"; gain range {_fmt(spread)} vs rule gap "
            f"{_fmt(gap)}", level, _test(spread, gap, "greater", None))
    lrs = {lr: runs(rows, rule="bptt", dale=False, gain=1.0, lr=lr) for lr in cfg.lrs}
    lrs = {lr: v for lr, v in lrs.items() if v}
    if len(lrs) > 1 and cfg.lr in lrs:
        level, d = matched({lr: v for lr, v in lrs.items()})
        tests = [_test(*_paired(d[lr], d[cfg.lr]), "equivalent", margin) for lr in lrs if lr != cfg.lr]
        add("3a", "lr", f"BPTT distances barely depend on the learning rate (each lr vs {cfg.lr:g}: "
                        f"|Δ| < {margin:g} rad)", "; ".join(f"lr={lr:g}: {_fmt(v)}" for lr, v in d.items()),
            level, _combine(tests))
    for rule in ("np", "es"):
        if rule in base and "eprop" in base and "bptt" in base:
            level, d = matched({"bptt": base["bptt"], "eprop": base["eprop"], rule: base[rule]})
            tests = [_test(*_paired(d[rule], d[other]), "greater", None) for other in ("bptt", "eprop")]
            add("4", rule, f"{_label(rule)} ends farther from the data than BPTT and e-prop at equal accuracy",
                f"{_label(rule)} {_fmt(d[rule])}; BPTT {_fmt(d['bptt'])}; e-prop {_fmt(d['eprop'])}",
                level, _combine(tests))
    dale = {r: runs(rows, rule=r, dale=True, gain=1.0, lr=cfg.lr) for r in cfg.dale_rules}
    dale = {r: v for r, v in dale.items() if v}
    if "modprop" in dale and "bptt" in dale:
        level, d = matched(dale)
        tests = [_test(*_paired(d[r], d["bptt"]), "equivalent", margin) for r in d if r != "bptt"]
        add("5", "dale", f"under Dale's law (ReLU), ModProp, e-prop and BPTT reach comparable distances "
                         f"(each vs BPTT: |Δ| < {margin:g} rad)", "; ".join(f"{_label(r)} {_fmt(v)}"
                                                                          for r, v in d.items()),
            level, _combine(tests))
    if floor and above:
        tests = [_test(np.asarray(v), np.full(len(v), floor["noise_floor"]), "greater", None) for v in above.values()]
        add("6", "floor", f"every model stays above the data's split-half noise floor (n = {floor['n_sample']} "
                          f"neurons per half)", f"floor {floor['noise_floor']:.3f} ± {floor['noise_floor_std']:.3f}; "
            + "; ".join(f"{_label(r)}{' (Dale)' if dl else ''} {_fmt(v)}" for (r, dl), v in above.items()),
            None, _combine(tests))
    return found


def model_claims(cfg, finals: dict, name: str) -> list[dict]:
    """Claim 3b, between models (no reference): e-prop ends closer to low-lr BPTT than to default-lr BPTT."""
    low = min(cfg.lrs) if cfg.lrs else cfg.lr
    seeds = [s for s in range(cfg.seeds) if all(k in finals for k in
             ((name, "eprop", False, 1.0, cfg.lr, s), (name, "bptt", False, 1.0, low, s),
              (name, "bptt", False, 1.0, cfg.lr, s)))]
    if low == cfg.lr or not seeds:
        return []
    to_low = np.array([similarity.procrustes_distance(finals[(name, "eprop", False, 1.0, cfg.lr, s)][0],
                                                      finals[(name, "bptt", False, 1.0, low, s)][0]) for s in seeds])
    to_default = np.array([similarity.procrustes_distance(finals[(name, "eprop", False, 1.0, cfg.lr, s)][0],
                                                          finals[(name, "bptt", False, 1.0, cfg.lr, s)][0])
                           for s in seeds])
    return [{"task": name, "claim": "3b", "subject": "lr", "reference": "(models only)",
             "what": f"e-prop ends closer to BPTT at a low learning rate ({low:g}) than at the default ({cfg.lr:g})",
             "level": np.nan, "numbers": f"to lr {low:g}: {_fmt(to_low)}; to lr {cfg.lr:g}: {_fmt(to_default)}",
             **_test(to_low, to_default, "less", None)}]


def robustness(claims: list[dict]) -> list[dict]:
    """One row per (task, claim, subject): the labels against each reference and the overall reading."""
    groups = {}
    for c in claims:
        groups.setdefault((c["task"], c["claim"], c["subject"]), []).append(c)
    out = []
    for (task, claim, subject), cs in groups.items():
        neutral = [c for c in cs if c.get("neutral", True)]
        labels = [c["label"] for c in neutral]
        if not labels:
            overall = "no neutral reference"
        elif all(x == "not testable" for x in labels):
            overall = "not testable (accuracy too low)"
        elif all(x == "held" for x in labels):
            overall = "supported" if len(labels) > 1 or cs[0]["reference"] == "(models only)" else "held (one reference)"
        elif all(x == "not held" for x in labels):
            overall = "not supported"
        elif "held" in labels and "not held" in labels:
            overall = "depends on the stand-in"
        elif "held" in labels:
            overall = "held against some, inconclusive against others"
        elif "not held" in labels:
            overall = "not held against some, inconclusive against others"
        else:
            overall = "inconclusive"
        out.append({"task": task, "claim": claim, "subject": subject, "what": cs[0]["what"],
                    "labels": {c["reference"]: c["label"] for c in cs}, "overall": overall})
    return out


def _label(rule: str) -> str:
    from neuro.studies.similarity import RULE_LABELS
    return RULE_LABELS.get(rule, rule)

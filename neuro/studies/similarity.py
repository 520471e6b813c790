"""``neuro reproduce similarity``: Liu, Yang & Cueva, "Multiple temporal credit assignment rules
achieve comparable neural data similarity".

Networks are trained with BPTT, truncated BPTT, e-prop, node perturbation and
evolution strategies (and, under Dale's law with ReLU units, BPTT / e-prop /
ModProp) on the context-dependent task (Mante et al. 2013; NeuroGym) and on the
reaching task (Sussillo et al. 2015 shape; synthetic EMG).  Snapshots taken during
training give, per run, the angular Procrustes distance to the data against the
normalized accuracy (Fig. 1B); the same for several initial gains (Fig. 2) and for
BPTT at several learning rates, with e-prop's distance to low- and default-lr BPTT
(Fig. 3); the split-half noise floor (Appendix B.5).

The data.  No recording ships (not redistributable).  By default the "data" are
the condition-wise activity of a *teacher*: a BPTT-trained network of another seed
and size — a known ground truth (note it favours BPTT-like solutions).  ``--data
PATH`` (``.npy``/``.npz``/``.mat``, ``[conditions, time, neurons]``) replaces the
reaching task's teacher with your recording: its 27 conditions must be in the
task's condition order; its time axis is resampled onto the task's (the trial's
start and end matched).

Gains multiply the default initialization of the recurrent and readout weights
(the paper's definition).  Everything lands in one run folder: ``config.json``,
``snapshots.csv`` (one row per run × snapshot), ``summary.csv`` (final accuracy and distance per
rule / gain / lr), ``claims.md`` and ``claims.csv``, figures.  Scales: ``--quick``, ``--scale medium``
(one core, ~18 CPU-minutes; its output is in docs/similarity/) and the default full run.
"""
from __future__ import annotations

import argparse
import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

import neuro
from neuro import similarity
from neuro.io import atomic_write_text
from neuro.studies import common

RULE_LABELS = {"bptt": "BPTT", "tbptt": "truncated BPTT", "eprop": "e-prop", "np": "node perturbation",
               "es": "evolution strategies", "modprop": "ModProp"}
COLORS = {"bptt": "black", "tbptt": "tab:blue", "eprop": "magenta", "np": "c", "es": "gold", "modprop": "green"}


@dataclass
class Config:
    tasks: list = field(default_factory=lambda: ["reaching", "context"])
    rules: list = field(default_factory=lambda: ["bptt", "tbptt", "eprop", "np", "es"])
    dale_rules: list = field(default_factory=lambda: ["bptt", "eprop", "modprop"])
    perturbation_tasks: list = field(default_factory=lambda: ["context"])     # where np/es run (S = 50: costly)
    dale_tasks: list = field(default_factory=lambda: ["reaching", "context"])  # where the Dale/ReLU variants run
    seeds: int = 4
    n_hidden: dict = field(default_factory=lambda: {"reaching": 100, "context": 100})
    teacher_hidden: dict = field(default_factory=lambda: {"reaching": 150, "context": 150})
    iterations: dict = field(default_factory=lambda: {"reaching": 400, "context": 1000})
    teacher_iterations: dict = field(default_factory=lambda: {"reaching": 800, "context": 2000})
    reaching_dt: float = 10.0              # ms; 186 steps as in Sussillo et al. 2015
    lr: float = 1e-3                       # the paper's default (Adam)
    gains: list = field(default_factory=lambda: [0.5, 1.0, 1.5])
    gain_rules: list = field(default_factory=lambda: ["bptt", "eprop"])
    lrs: list = field(default_factory=lambda: [1e-3, 3e-4, 1e-4])
    snapshots: int = 8                     # log-spaced snapshot iterations (0 and the last included)
    linear_snapshots: int = 0              # plus this many evenly spaced ones: resolution at high accuracy,
                                           # where the equal-accuracy comparisons are read off
    batch_size: int = 32
    tbptt_k: int = 10
    context_trials: int = 64               # the fixed trials that stand for the context task's conditions
    noise_floor_repeats: int = 20
    teacher_rule: str = "bptt"             # the rule that trains the teacher standing in for the data

    @classmethod
    def quick(cls) -> "Config":
        return cls(seeds=2, rules=["bptt", "tbptt", "eprop", "np", "es"], perturbation_tasks=["context"],
                   dale_tasks=["context"], n_hidden={"reaching": 32, "context": 32},
                   teacher_hidden={"reaching": 48, "context": 48},
                   iterations={"reaching": 120, "context": 300}, teacher_iterations={"reaching": 250, "context": 500},
                   reaching_dt=20.0, gains=[0.5, 1.0, 1.5], lrs=[1e-3, 1e-4], snapshots=6, context_trials=48,
                   noise_floor_repeats=10)

    @classmethod
    def medium(cls) -> "Config":
        """Between ``quick`` and the full run, sized for one CPU core (18 CPU-minutes measured):
        4 seeds, N = 64 (teacher 96, so the noise floor's halves of 48 neurons fit in a model),
        the reaching task at dt = 10 ms (T = 186 as in Sussillo et al.), 1000 iterations there (the
        paper's; at 500 e-prop reached only 0.67 ± 0.15 and the Dale/ReLU rules < 0.5) and 1500 on
        the context task (every rule at its ceiling, ~0.87), the learning rates 1e-3, 3e-4, 1e-4,
        NP/ES on the context task, the Dale/ReLU variants on both tasks, and 8 log-spaced + 8
        evenly spaced snapshots."""
        return cls(seeds=4, n_hidden={"reaching": 64, "context": 64}, teacher_hidden={"reaching": 96, "context": 96},
                   iterations={"reaching": 1000, "context": 1500},
                   teacher_iterations={"reaching": 1000, "context": 2500},
                   reaching_dt=10.0, lrs=[1e-3, 3e-4, 1e-4], snapshots=8, linear_snapshots=8)

    @classmethod
    def scaled(cls, scale: str) -> "Config":
        if scale not in SCALES:
            raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
        return {"quick": cls.quick, "medium": cls.medium, "full": cls}[scale]()


SCALES = ("quick", "medium", "full")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quick", action="store_true", help="small networks, 2 seeds, NP/ES and the Dale/ReLU variants "
                                                        "on the context task only: a few minutes on 2 cores "
                                                        "(= --scale quick)")
    p.add_argument("--scale", choices=SCALES, default=None,
                   help="quick (~1 CPU-minute), medium (4 seeds, N = 64, 1000/1500 iterations: ~18 CPU-minutes "
                        "on one core) or full (the default: 4 seeds, N = 100; hours)")
    p.add_argument("--out", default=None, help="run folder (default runs/similarity[-quick|-medium])")
    p.add_argument("--data", default=None, help="your recording for the reaching task: .npy/.npz/.mat, "
                                                "[27 conditions, time, neurons]")
    p.add_argument("--data-key", default=None, help="the array's name inside a .npz/.mat holding several")
    p.add_argument("--data-axes", default="ctn", help="order of the stored axes (default ctn)")
    p.add_argument("--seeds", type=int, default=None)
    p.add_argument("--teacher-rule", default=None, choices=["bptt", "tbptt", "eprop"],
                   help="the rule that trains the teacher standing in for the data (default bptt)")
    p.add_argument("--tasks", nargs="+", default=None, choices=["reaching", "context"])
    p.add_argument("--no-progress", action="store_true")


def run(args) -> int:
    scale = args.scale or ("quick" if args.quick else "full")
    if args.quick and scale != "quick":
        raise SystemExit(f"--quick contradicts --scale {scale}")
    cfg = Config.scaled(scale)
    if args.seeds is not None:
        cfg.seeds = args.seeds
    if args.tasks is not None:
        cfg.tasks = args.tasks
    if getattr(args, "teacher_rule", None):
        cfg.teacher_rule = args.teacher_rule
    out = Path(args.out or ("runs/similarity" if scale == "full" else f"runs/similarity-{scale}"))
    data = _load(args) if args.data else None
    study(cfg, out, data=data, progress=not args.no_progress)
    print(f"results in {out}/ (claims.md, snapshots.csv, *.png)")
    return 0


def _load(args):
    from neuro.data import load_recording
    return load_recording(args.data, key=args.data_key, axes=args.data_axes)


# -- tasks, specs, conditions ---------------------------------------------------------

def _task(name: str, cfg: Config):
    if name == "reaching":
        from neuro.tasks.reaching import Reaching
        return Reaching(dt=cfg.reaching_dt, steps=int(round(1860 / cfg.reaching_dt)),
                        go=int(round(600 / cfg.reaching_dt)))
    return neuro.tasks.get("context")


def _spec(name: str, task, n: int, dale: bool = False):
    spec = neuro.models.load("context_rate").replace(n_inputs=task.n_inputs, n_outputs=task.n_outputs,
                                                     dt=task.dt, **{"populations[0].size": n})
    if name == "reaching":
        spec = spec.replace(**{"populations[0].neuron.tau": 50.0})
    if dale:
        spec = spec.replace(**{"dale.enabled": True, "populations[0].neuron.activation": "relu"})
    return spec


def _conditions(name: str, task, cfg: Config):
    """The trials whose (noise-free) activity is compared with the data: ``[conditions, time, units]``."""
    if name == "reaching":
        return task.conditions_batch()
    return task.batch(cfg.context_trials, seed=2013)


def condition_activity(net, batch) -> np.ndarray:
    """Noise-free rates ``[E, conditions, time, units]`` (E = 1 for a single network) and outputs."""
    inputs = batch.inputs.to(net.W_rec.dtype)
    lead = tuple(net.W_rec.shape[:-2])
    if lead:
        inputs = inputs.unsqueeze(1).expand((inputs.shape[0],) + lead + tuple(inputs.shape[1:]))
    h = net.initial_state(inputs.shape[-2])
    with torch.no_grad():
        traj = net.run(inputs, noise=torch.zeros((inputs.shape[0],) + tuple(h.shape), dtype=inputs.dtype))
    rates, outputs = traj.rates, traj.outputs
    if not lead:
        rates, outputs = rates.unsqueeze(1), outputs.unsqueeze(1)
    return rates.permute(1, 2, 0, 3).double().numpy(), outputs                  # [E, C, T, N], [T, E, C, o]


def _accuracies(task, outputs, batch) -> list[float]:
    return [float(np.clip(task.normalized_accuracy(outputs[:, e], batch), 0.0, 1.0))
            for e in range(outputs.shape[1])]


def _snapshot_iterations(total: int, k: int, linear: int = 0) -> list[int]:
    """0, ``k - 1`` log-spaced iterations up to ``total``, and ``linear`` evenly spaced ones; sorted, unique."""
    its = np.round(np.geomspace(1, total, max(k - 1, 1))).astype(int)
    if linear:
        its = np.concatenate([its, np.round(np.linspace(0, total, linear + 1)[1:]).astype(int)])
    return [0] + [int(i) for i in np.unique(its) if i > 0]


# -- the study -----------------------------------------------------------------------

def study(cfg: Config, out: Path, data=None, progress: bool = True) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "config.json", json.dumps(asdict(cfg), indent=2))
    t0 = time.time()
    rows, floors, pairs = [], {}, {}
    for name in cfg.tasks:
        task = _task(name, cfg)
        cond = _conditions(name, task, cfg)
        reference, source = _data(name, task, cond, cfg, data, progress)
        floors[name] = similarity.noise_floor(reference, n_sample=reference.shape[-1] // 2,
                                              repeats=cfg.noise_floor_repeats)
        floors[name]["source"] = source
        for dale in (False, True):
            rules = cfg.dale_rules if dale else cfg.rules
            if dale and name not in cfg.dale_tasks:
                continue
            for rule in rules:
                if rule in ("np", "es") and name not in cfg.perturbation_tasks:
                    continue
                found, finals = _train_rule(name, task, cond, reference, rule, dale, cfg, out, progress)
                rows.extend(found)
                pairs.update(finals)
                common.write_rows(out / "snapshots.csv", rows)            # partial results survive a crash
        _model_vs_floor(name, cfg, floors, pairs, reference)
    elapsed = time.time() - t0
    claims = _claims(cfg, rows, floors, pairs)
    summary = _summary(rows)
    common.write_rows(out / "summary.csv", summary)
    common.write_rows(out / "claims.csv", [{**c, "held": _verdict(c["held"]).strip("*")} for c in claims])
    atomic_write_text(out / "claims.md", _claims_markdown(cfg, claims, floors, elapsed, summary))
    _figures(cfg, rows, floors, out)
    return {"claims": claims, "rows": rows, "floors": floors, "seconds": elapsed}


def _data(name, task, cond, cfg, data, progress):
    """The reference activity ``[conditions, time, neurons]``: the user's recording or a teacher's."""
    if data is not None and name == "reaching":
        from neuro.data import align
        c, T = cond.inputs.shape[1], cond.inputs.shape[0]
        if data.shape[0] != c:
            raise ValueError(f"--data has {data.shape[0]} conditions; the reaching task has {c} (in its order)")
        span = data.dt * (data.shape[1] - 1)
        grid = np.linspace(0, span, T)                         # trial start and end matched
        return align(data, grid), "recording"
    spec = _spec(name, task, cfg.teacher_hidden[name])
    teacher = neuro.compile(spec, "rate", neuro.init_weights(spec, seed=9_999))
    label = RULE_LABELS.get(cfg.teacher_rule, cfg.teacher_rule)
    neuro.train(teacher, task, _rule(cfg.teacher_rule, cfg), iterations=cfg.teacher_iterations[name], lr=cfg.lr,
                batch_size=cfg.batch_size, seed=9_999, progress=progress, desc=f"{name} teacher ({label})")
    rates, outputs = condition_activity(teacher, cond)
    return rates[0], f"teacher ({label}, N = {cfg.teacher_hidden[name]}, accuracy " \
                     f"{_accuracies(task, outputs, cond)[0]:.2f})"


def _members(rule: str, dale: bool, cfg: Config) -> list[tuple[dict, common.Member]]:
    """(labels, member) for the seeds at the default setting, plus gains / learning rates."""
    found, seen = [], set()

    def add(gain, lr, seed):
        key = (gain, lr, seed)
        if key not in seen:
            seen.add(key)
            over = {"recurrent.gain": gain, "readout.gain": gain} if gain != 1.0 else {}
            found.append(({"gain": gain, "lr": lr, "seed": seed}, common.Member(seed=seed, lr=lr, overrides=over)))

    for s in range(cfg.seeds):
        add(1.0, cfg.lr, s)
    if not dale and rule in cfg.gain_rules:
        for g in cfg.gains:
            for s in range(cfg.seeds):
                add(g, cfg.lr, s)
    if not dale and rule == "bptt":
        for lr in cfg.lrs:
            for s in range(cfg.seeds):
                add(1.0, lr, s)
    return found


def _rule(rule: str, cfg: Config):
    return neuro.rules.get("tbptt", k=cfg.tbptt_k) if rule == "tbptt" else neuro.rules.get(rule)


def _train_rule(name, task, cond, reference, rule, dale, cfg, out, progress):
    from neuro.ensemble import train_ensemble
    spec = _spec(name, task, cfg.n_hidden[name], dale)
    labelled = _members(rule, dale, cfg)
    members = [m for _, m in labelled]
    run_dir = out / "runs" / f"{name}-{rule}{'-dale' if dale else ''}"
    if run_dir.exists():
        shutil.rmtree(run_dir)              # snapshots are taken while training: start clean
    rows, finals = [], {}
    result = None
    iterations = cfg.iterations[name]
    for it in _snapshot_iterations(iterations, cfg.snapshots, cfg.linear_snapshots):
        result = train_ensemble(spec, task, _rule(rule, cfg), [{"seed": m.seed, "lr": m.lr, "overrides": m.overrides}
                                                               for m in members],
                                iterations=it, batch_size=cfg.batch_size, progress=progress, run_dir=run_dir,
                                checkpoint_every=10 ** 9,
                                desc=f"{name} {rule}{' (Dale)' if dale else ''} → {it}")
        rates, outputs = condition_activity(result.ensemble.net, cond)
        accs = _accuracies(task, outputs, cond)
        for e, (labels, _) in enumerate(labelled):
            rows.append({"task": name, "rule": rule, "dale": dale, **labels, "iteration": it,
                         "accuracy": accs[e], "distance": similarity.procrustes_distance(rates[e], reference),
                         "diverged": bool(result.diverged[e])})
            if it == iterations:
                finals[(name, rule, dale, labels["gain"], labels["lr"], labels["seed"])] = rates[e]
    return rows, finals


def _model_vs_floor(name, cfg, floors, pairs, reference):
    """Model-to-data distance at the noise floor's sample size, for each rule's final networks."""
    n = floors[name]["n_sample"]
    for (task, rule, dale, gain, lr, seed), rates in pairs.items():
        if task != name or gain != 1.0 or lr != cfg.lr or rates.shape[-1] < n:
            continue
        res = similarity.noise_floor(reference, rates, n_sample=n, repeats=cfg.noise_floor_repeats, seed=seed)
        floors[name].setdefault("models", {}).setdefault((rule, dale), []).append(res["model_to_data"])


# -- claims ----------------------------------------------------------------------------

def _select(rows, **where):
    return [r for r in rows if all(r[k] == v for k, v in where.items())]


def _runs(rows, **where) -> list[tuple[np.ndarray, np.ndarray]]:
    """(accuracy, distance) snapshot series of each seed matching ``where``."""
    found = {}
    for r in _select(rows, **where):
        found.setdefault(r["seed"], []).append((r["accuracy"], r["distance"]))
    return [tuple(np.array(v).T) for v in found.values()]


def _at_accuracy(series, level: float) -> float:
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


MIN_LEVEL = 0.1     # below this normalized accuracy a comparison says nothing: reported, not judged


def _matched(groups: dict) -> tuple[float, dict]:
    """Distances of every group's runs at the highest accuracy all their runs reached."""
    level = min(float(np.max(acc)) for runs in groups.values() for acc, _ in runs)
    level = 0.95 * level
    return level, {k: np.array([_at_accuracy(s, level) for s in runs]) for k, runs in groups.items()}


def _fmt(v: np.ndarray) -> str:
    v = v[np.isfinite(v)]
    return f"{v.mean():.3f} ± {v.std():.3f}" if len(v) else "n/a"


def _claims(cfg, rows, floors, pairs) -> list[dict]:
    claims = []
    for name in cfg.tasks:
        base = {r: _runs(rows, task=name, rule=r, dale=False, gain=1.0, lr=cfg.lr) for r in cfg.rules}
        base = {r: v for r, v in base.items() if v}
        if "bptt" not in base:
            continue
        seed_std = max(np.std([s[1][-1] for s in base["bptt"]]), 1e-3)
        for rule in ("eprop", "tbptt"):
            if rule in base:
                level, d = _matched({"bptt": base["bptt"], rule: base[rule]})
                gap = abs(np.nanmean(d[rule]) - np.nanmean(d["bptt"]))
                claims.append({"task": name, "claim": "1", "level": level, "what": f"{RULE_LABELS[rule]} reaches a distance to the "
                               f"data comparable to BPTT at equal accuracy ({level:.2f})",
                               "numbers": f"BPTT {_fmt(d['bptt'])}, {RULE_LABELS[rule]} {_fmt(d[rule])}",
                               "held": bool(gap <= 2 * max(np.nanstd(d["bptt"]), np.nanstd(d[rule]), seed_std))})
        gains = {g: _runs(rows, task=name, rule="bptt", dale=False, gain=g, lr=cfg.lr) for g in cfg.gains}
        gains = {g: v for g, v in gains.items() if v}
        if len(gains) > 1 and "eprop" in base:
            level, d = _matched({**{f"g{g}": v for g, v in gains.items()}, "eprop": base["eprop"]})
            spread = np.nanmax([np.nanmean(d[f"g{g}"]) for g in gains]) - np.nanmin([np.nanmean(d[f"g{g}"])
                                                                                      for g in gains])
            rule_gap = abs(np.nanmean(d["eprop"]) - np.nanmean(d[f"g{1.0}"])) if 1.0 in gains else float("nan")
            claims.append({"task": name, "claim": "2", "level": level, "what": "the initial gain moves the BPTT distance more "
                           f"than switching BPTT → e-prop does (at accuracy {level:.2f})",
                           "numbers": "; ".join(f"g={g}: {_fmt(d[f'g{g}'])}" for g in gains)
                           + f"; gain range {spread:.3f} vs rule gap {rule_gap:.3f}",
                           "held": bool(spread > rule_gap)})
        lrs = {lr: _runs(rows, task=name, rule="bptt", dale=False, gain=1.0, lr=lr) for lr in cfg.lrs}
        lrs = {lr: v for lr, v in lrs.items() if v}
        if len(lrs) > 1:
            level, d = _matched({f"{lr:g}": v for lr, v in lrs.items()})
            means = [np.nanmean(v) for v in d.values()]
            claims.append({"task": name, "claim": "3a", "level": level, "what": f"BPTT distances barely depend on the learning "
                           f"rate (at accuracy {level:.2f})",
                           "numbers": "; ".join(f"lr={k}: {_fmt(v)}" for k, v in d.items()),
                           "held": bool(np.nanmax(means) - np.nanmin(means) <= 2 * seed_std + 0.02)})
            low = min(lrs)
            if "eprop" in base and low != cfg.lr:
                near = [similarity.procrustes_distance(pairs[(name, "eprop", False, 1.0, cfg.lr, s)],
                                                       pairs[(name, "bptt", False, 1.0, lr, s)])
                        for s in range(cfg.seeds) for lr in (low, cfg.lr)]
                to_low, to_default = np.array(near[0::2]), np.array(near[1::2])
                claims.append({"task": name, "claim": "3b", "what": f"e-prop ends closer to BPTT at a low learning "
                               f"rate ({low:g}) than at the default ({cfg.lr:g}) (same seeds, final networks)",
                               "numbers": f"to lr {low:g}: {_fmt(to_low)}; to lr {cfg.lr:g}: {_fmt(to_default)}",
                               "held": bool(to_low.mean() < to_default.mean())})
        for rule in ("np", "es"):
            if rule in base and "eprop" in base:
                level, d = _matched({"bptt": base["bptt"], "eprop": base["eprop"], rule: base[rule]})
                claims.append({"task": name, "claim": "4", "level": level, "what": f"{RULE_LABELS[rule]} ends farther from the data "
                               f"than BPTT and e-prop at equal accuracy ({level:.2f})",
                               "numbers": f"{RULE_LABELS[rule]} {_fmt(d[rule])}; BPTT {_fmt(d['bptt'])}; "
                                          f"e-prop {_fmt(d['eprop'])}",
                               "held": bool(np.nanmean(d[rule]) > max(np.nanmean(d["bptt"]), np.nanmean(d["eprop"])))})
        dale = {r: _runs(rows, task=name, rule=r, dale=True, gain=1.0, lr=cfg.lr) for r in cfg.dale_rules}
        dale = {r: v for r, v in dale.items() if v}
        if "modprop" in dale and "bptt" in dale:
            level, d = _matched(dale)
            spread = max(abs(np.nanmean(d[r]) - np.nanmean(d["bptt"])) for r in d)
            claims.append({"task": name, "claim": "5", "level": level, "what": f"under Dale's law (ReLU), ModProp, e-prop and BPTT "
                           f"reach comparable distances (at accuracy {level:.2f})",
                           "numbers": "; ".join(f"{RULE_LABELS[r]} {_fmt(v)}" for r, v in d.items()),
                           "held": bool(spread <= 2 * max(max(np.nanstd(v) for v in d.values()), seed_std))})
        fl = floors[name]
        models = fl.get("models", {})
        if models:
            above = all(np.mean(v) > fl["noise_floor"] for v in models.values())
            claims.append({"task": name, "claim": "6", "what": f"every model stays above the data's split-half noise "
                           f"floor (n = {fl['n_sample']} neurons per half)",
                           "numbers": f"floor {fl['noise_floor']:.3f} ± {fl['noise_floor_std']:.3f}; "
                           + "; ".join(f"{RULE_LABELS[r]}{' (Dale)' if dl else ''} {np.mean(v):.3f}"
                                       for (r, dl), v in models.items()),
                           "held": bool(above)})
    for c in claims:
        level = c.pop("level", None)
        if level is not None and level < MIN_LEVEL:
            c["held"] = None
    return claims


def _summary(rows) -> list[dict]:
    """One row per (task, rule, Dale, gain, lr): the final snapshot's accuracy and distance over seeds."""
    groups = {}
    for r in rows:
        groups.setdefault((r["task"], r["rule"], r["dale"], r["gain"], r["lr"]), []).append(r)
    out = []
    for (task, rule, dale, gain, lr), rs in groups.items():
        last = max(r["iteration"] for r in rs)
        final = [r for r in rs if r["iteration"] == last]
        acc, dist = np.array([r["accuracy"] for r in final]), np.array([r["distance"] for r in final])
        start = np.array([r["distance"] for r in rs if r["iteration"] == 0])
        out.append({"task": task, "rule": rule, "dale": dale, "gain": gain, "lr": lr, "seeds": len(final),
                    "iterations": last, "accuracy_mean": round(float(acc.mean()), 4),
                    "accuracy_std": round(float(acc.std()), 4), "distance_mean": round(float(dist.mean()), 4),
                    "distance_std": round(float(dist.std()), 4),
                    "distance_at_init": round(float(start.mean()), 4) if len(start) else float("nan"),
                    "diverged": int(sum(r["diverged"] for r in final))})
    return out


def _claims_markdown(cfg, claims, floors, elapsed, summary=()) -> str:
    lines = ["# Neural-data similarity across learning rules — the paper's claims with our numbers", "",
             f"Tasks {cfg.tasks}; rules {cfg.rules} (Dale/ReLU: {cfg.dale_rules}); {cfg.seeds} seeds; "
             f"N = {cfg.n_hidden}; iterations {cfg.iterations}; batch {cfg.batch_size}; Adam lr {cfg.lr}. "
             f"Wall time {elapsed / 60:.1f} min.", "",
             "Distance = angular Procrustes distance (radians, netrep `LinearMetric(alpha=1, center_columns=True)`) "
             "between noise-free condition-wise rates and the data, mean ± std over seeds, read off each run's "
             "training snapshots at the stated normalized accuracy (0.95 × the lowest best accuracy among the "
             "compared runs).", ""]
    for name, fl in floors.items():
        lines.append(f"- {name}: data = {fl['source']}; noise floor {fl['noise_floor']:.3f} ± "
                     f"{fl['noise_floor_std']:.3f} rad (disjoint halves of {fl['n_sample']} neurons).")
    lines += ["", "| task | claim | statement | measured | held |", "|---|---|---|---|---|"]
    for c in claims:
        lines.append(f"| {c['task']} | {c['claim']} | {c['what']} | {c['numbers']} | "
                     f"{_verdict(c['held'])} |")
    if summary:
        lines += ["", "Final networks (last snapshot; mean ± std over seeds):", "",
                  "| task | rule | gain | lr | normalized accuracy | distance to data | distance at init |",
                  "|---|---|---|---|---|---|---|"]
        for r in summary:
            lines.append(f"| {r['task']} | {RULE_LABELS[r['rule']]}{' (Dale, ReLU)' if r['dale'] else ''} | "
                         f"{r['gain']:g} | {r['lr']:g} | {r['accuracy_mean']:.3f} ± {r['accuracy_std']:.3f} | "
                         f"{r['distance_mean']:.3f} ± {r['distance_std']:.3f} | {r['distance_at_init']:.3f} |"
                         + (f" ({r['diverged']} diverged)" if r["diverged"] else ""))
    teacher = RULE_LABELS.get(cfg.teacher_rule, cfg.teacher_rule)
    lines += ["", f"The data are the activity of a teacher trained with {teacher} unless `--data` was given: a known "
                  f"ground truth, which may favour students trained with the same rule. Short training (`--quick`) leaves NP/ES at low accuracy, "
                  "so their comparisons happen at low accuracy levels."]
    return "\n".join(lines) + "\n"


def _verdict(held) -> str:
    return "not testable (accuracy too low)" if held is None else ("yes" if held else "**no**")


# -- figures ---------------------------------------------------------------------------

def _curve(ax, series, color, label, ls="-"):
    grid = np.linspace(0, 1, 41)
    curves = []
    for acc, dist in series:
        ax.plot(acc, dist, color=color, lw=0.6, alpha=0.35)
        curves.append([_at_accuracy((acc, dist), a) for a in grid])
    c = np.array(curves)
    with np.errstate(all="ignore"):
        mean, std = np.nanmean(c, 0), np.nanstd(c, 0)
    ok = np.sum(np.isfinite(c), 0) == len(series)
    ax.plot(grid[ok], mean[ok], color=color, lw=2, label=label, ls=ls)
    ax.fill_between(grid[ok], (mean - std)[ok], (mean + std)[ok], color=color, alpha=0.15, lw=0)


def _figures(cfg, rows, floors, out):
    from neuro.plots import pyplot
    plt = pyplot()
    with plt.rc_context({"font.family": "DejaVu Sans"}):     # some imported packages ask for fonts we lack
        for name in cfg.tasks:
            _figure(cfg, rows, floors, out, name, plt)


def _figure(cfg, rows, floors, out, name, plt):
    fig, axes = plt.subplots(1, 4, figsize=(18, 4), sharey=True)
    panels = [("rules", [(r, dict(rule=r, dale=False, gain=1.0, lr=cfg.lr), COLORS[r], RULE_LABELS[r])
                         for r in cfg.rules]),
              ("initial gain (BPTT solid, e-prop dashed)",
               [(None, dict(rule=r, dale=False, gain=g, lr=cfg.lr), plt.cm.viridis(i / max(len(cfg.gains) - 1, 1)),
                 f"{RULE_LABELS[r]} g={g}") for i, g in enumerate(cfg.gains) for r in cfg.gain_rules]),
              ("BPTT learning rates and e-prop",
               [(None, dict(rule="bptt", dale=False, gain=1.0, lr=lr), plt.cm.Greys(0.4 + 0.6 * (i + 1) / len(cfg.lrs)),
                 f"BPTT lr={lr:g}") for i, lr in enumerate(cfg.lrs)]
               + [(None, dict(rule="eprop", dale=False, gain=1.0, lr=cfg.lr), "magenta", "e-prop")]),
              ("Dale's law, ReLU", [(r, dict(rule=r, dale=True, gain=1.0, lr=cfg.lr), COLORS[r], RULE_LABELS[r])
                                    for r in cfg.dale_rules])]
    for ax, (title, lines) in zip(axes, panels):
        for _, where, color, label in lines:
            series = _runs(rows, task=name, **where)
            if series:
                _curve(ax, series, color, label, "--" if where["rule"] == "eprop" and "gain" in title else "-")
        fl = floors[name]
        ax.axhspan(fl["noise_floor"] - fl["noise_floor_std"], fl["noise_floor"] + fl["noise_floor_std"],
                   color="orange", alpha=0.3, lw=0, label="noise floor")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("normalized accuracy")
        ax.set_xlim(0, 1)
        ax.legend(frameon=False, fontsize=7)
    axes[0].set_ylabel("Procrustes distance to data (rad)")
    fig.suptitle(f"{name}: distance to the data vs accuracy during training", fontsize=11)
    fig.tight_layout()
    fig.savefig(out / f"distance_vs_accuracy_{name}.png", dpi=120)
    plt.close(fig)

"""``neuro reproduce initialization``: the claims of Liu, Zhang & Liu, "The Influence of
Initial Connectivity on Biologically Plausible Learning", on the paper's protocol and
judged with its own statistic, the learning curve.

Claims, in the paper's words (main text, Figures 1-5):

1. "the initial weight magnitude in e-prop significantly affects learning performance",
   "much like in BPTT" (Fig. 1, 2); "noticeable gap in the learning curve ... between
   gain = 0.2 with the others before convergence" (Fig. 5).
2. "before training, networks initialized with smaller weight gains had Lyapunov exponents
   further from 0"; "the trained networks exhibit a maximum Lyapunov exponent around 0"
   (Fig. 3, Romo).
3. Pretraining with 100 iterations of local gradient flossing "enhances performance ...
   particularly when the initial weight gain is suboptimal" (Fig. 4, from iteration 2000).

Protocol (the paper's appendix "Training details"): 64 ReLU units, batch 32, Adam, five
seeds; the learning rate of each (task, rule, gain) chosen from {1e-4, 3e-4, 1e-3, 3e-3}
on two separate selection seeds trained for the full length, by the area under the
log10-loss curve; Romo after Schuessler et al. 2020 (dt = 20 ms, τ = 100 ms, 6000
iterations), 2AF and DMS at NeuroGym's default dt = 100 ms with τ = 100 ms (3000
iterations; dt = τ means α = 0, so e-prop keeps no eligibility trace there).  e-prop
runs in both forms: ``detach`` (the paper's code, ``hidden.detach()``) and ``trace``
(its Eq. 6, the leak path kept).  Gains {0.2, 0.5, 1, 1.5} are the paper's; g = 2 is
ours.  Flossing uses the learning rate of a small grid that brings the max exponent
closest to 0 at every gain.

Each run is reduced to learning-curve statistics (``neuro.curves``): the mean log10
loss from iteration 200 (Fig. 1 starts there; from 2000 for flossing, as Fig. 4), the
area under the log-loss curve, iterations to a criterion, final loss and accuracy.
Conditions are compared seed by seed (paired t-test, 95 % CI, d_z) and every claim is
labelled held / not held / inconclusive (seed noise or the chance floor).  Everything
lands in one folder: ``claims.md``/``claims.csv``, ``runs.csv`` (one row per run),
``curves.parquet`` (every iteration of every run), figures, and the sweeps' run folders
under ``sweeps/`` (a rerun resumes them).
"""
from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

import neuro
from neuro import curves, sweep
from neuro.io import atomic_write_text
from neuro.studies import common

PAPER_GAINS = (0.2, 0.5, 1.0, 1.5)
# the learning rates the full run selected (results/initialization/claims.md), reused by --quick
QUICK_LRS = {"bptt|0.2": 3e-3, "bptt|1": 1e-3, "bptt|2": 3e-3,
             "eprop(form=detach)|0.2": 3e-4, "eprop(form=detach)|1": 1e-4, "eprop(form=detach)|2": 3e-3}
RULE_NAMES = {"bptt": "BPTT", "eprop(form=detach)": "e-prop (detach, paper's code)",
              "eprop(form=trace)": "e-prop (trace, Eq. 6)"}


@dataclass
class Config:
    tasks: dict = field(default_factory=lambda: {
        "romo": {"dt": 20.0, "tau": 100.0, "iterations": 6000, "criterion": 5e-3},
        "2af": {"dt": 100.0, "tau": 100.0, "iterations": 3000, "criterion": None},
        "dms": {"dt": 100.0, "tau": 100.0, "iterations": 3000, "criterion": None}})
    gains: list = field(default_factory=lambda: [0.2, 0.5, 1.0, 1.5, 2.0])
    rules: list = field(default_factory=lambda: ["bptt", "eprop(form=detach)", "eprop(form=trace)"])
    lrs: list = field(default_factory=lambda: [1e-4, 3e-4, 1e-3, 3e-3])
    seeds: int = 5
    selection_seeds: list = field(default_factory=lambda: [10_000, 10_001])
    batch_size: int = 32
    n_hidden: int = 64
    window_start: int = 200             # Fig. 1 starts at iteration 200
    floss_window_start: int = 2000      # Fig. 4 starts at iteration 2000
    floss_task: str = "romo"
    floss_rules: list = field(default_factory=lambda: ["eprop(form=detach)"])
    floss_steps: int = 100
    floss_k: int = 16
    floss_lrs: list = field(default_factory=lambda: [3e-3, 1e-2, 3e-2])
    floss_select_lr: bool = True        # flossed runs get their own lr selection (the paper: per scheme)
    sensitivity_dt: float | None = 20.0  # tasks run at dt = τ (α = 0) again at this dt: which verdicts hang on dt/τ
    sensitivity_gains: list = field(default_factory=lambda: [0.2, 1.0])
    sensitivity_seeds: int = 3
    lyapunov_k: int = 4
    chunk_size: int = 20
    lr_for: dict | None = None          # {"RULE|GAIN": lr}: fixed learning rates instead of the selection
    quick: bool = False

    @classmethod
    def quick_config(cls) -> "Config":
        return cls(tasks={"romo": {"dt": 20.0, "tau": 100.0, "iterations": 2000, "criterion": 5e-3}},
                   gains=[0.2, 1.0, 2.0], rules=["bptt", "eprop(form=detach)"], lrs=[1e-3], seeds=3,
                   selection_seeds=[], floss_rules=["eprop(form=detach)"], floss_lrs=[1e-2], floss_select_lr=False,
                   sensitivity_dt=None,
                   floss_window_start=1000, chunk_size=5, quick=True, lr_for=dict(QUICK_LRS))


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quick", action="store_true",
                   help="Romo only, 3 gains x 3 seeds, BPTT and e-prop (detach), the full run's lrs, 2000 iterations "
                        "(about 3 min)")
    p.add_argument("--out", default=None, help="output folder (default runs/initialization[-quick])")
    p.add_argument("--seeds", type=int, default=None, help="evaluation seeds per condition (default 5; quick 3)")
    p.add_argument("--tasks", nargs="+", default=None, choices=["romo", "2af", "dms"],
                   help="tasks to run (default: all three; quick: romo)")
    p.add_argument("--workers", type=int, default=None, help="worker processes (default: one per core)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args) -> int:
    cfg = Config.quick_config() if args.quick else Config()
    if args.seeds is not None:
        if args.seeds < 2:
            raise ValueError(f"--seeds must be >= 2 (a paired test needs two seeds), got {args.seeds}")
        cfg.seeds = args.seeds
    if args.tasks:
        cfg.tasks = {t: Config().tasks[t] for t in args.tasks}
    out = Path(args.out or ("runs/initialization-quick" if args.quick else "runs/initialization"))
    study(cfg, out, progress=not args.no_progress, workers=args.workers)
    print(f"results in {out}/ (claims.md, claims.csv, runs.csv, curves.parquet, *.png)")
    return 0


# -- the study ---------------------------------------------------------------------

def _rule_table(name: str) -> dict:
    if "(" not in name:
        return {"name": name}
    base, opts = name[:-1].split("(", 1)
    return {"name": base, **dict(kv.split("=") for kv in opts.split(","))}


def _experiment(cfg: Config, task: str, rules: list, name: str, seeds=None, lr_for=None, pretrain=None,
                lyapunov: bool = False) -> sweep.Experiment:
    t = cfg.tasks[task]
    data = {"name": name, "spec": "romo_rate", "tasks": [{"name": task, **({"tau": t["tau"]} if task == "romo" else {})}],
            "rules": [_rule_table(r) for r in rules], "gains": cfg.gains, "lrs": cfg.lrs,
            "seeds": list(range(cfg.seeds)) if seeds is None else seeds, "iterations": t["iterations"],
            "batch_size": cfg.batch_size, "chunk_size": cfg.chunk_size,
            "overrides": {"populations[0].size": cfg.n_hidden, "dt": t["dt"], "populations[0].neuron.tau": t["tau"]}}
    lr_for = lr_for if lr_for is not None else cfg.lr_for
    if lr_for is not None:
        data["lr_for"] = {k: v for k, v in lr_for.items() if k.split("|")[0] in rules}
    elif cfg.selection_seeds and len(cfg.lrs) > 1:
        data["lr_selection"] = {"iterations": t["iterations"], "seeds": cfg.selection_seeds, "statistic": "area_log10"}
    if pretrain is not None:
        data["pretrain"] = pretrain
    if lyapunov:
        data["lyapunov"] = {"k": cfg.lyapunov_k, "batch_size": 8, "seed": 123}
    return sweep.load_experiment(data)


def study(cfg: Config, out: Path, progress: bool = True, workers: int | None = None) -> dict:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "config.json", json.dumps(asdict(cfg), indent=2))
    t0 = time.time()
    rows, runs, chosen, selection = [], [], {}, []
    floss_lr, floss_table = None, []
    # the flossing task first and its flossing comparison right after: a run cut short keeps them
    for task in sorted(cfg.tasks, key=lambda t: t != cfg.floss_task):
        exp = _experiment(cfg, task, task_rules(cfg, task), f"{task}", lyapunov=task == cfg.floss_task)
        folder = sweep.run_sweep(exp, out / "sweeps", progress=progress, workers=workers)
        r, meta = _collect(folder, "none")
        rows += r
        runs += meta
        selection += _selection(folder, "none")
        chosen.update(_chosen_lrs(meta))
        if task == cfg.floss_task and cfg.floss_rules:
            floss_lr, floss_table = _choose_floss_lr(cfg, progress, workers)
            lr_for = (None if _selects_floss_lr(cfg) else
                      {f"{r}|{g:g}": chosen[(task, r, g)] for r in cfg.floss_rules for g in cfg.gains})
            pretrain = {"floss": {"steps": cfg.floss_steps, "lr": floss_lr, "k": cfg.floss_k, "batch_size": 8}}
            exp = _experiment(cfg, task, cfg.floss_rules, f"{task}-flossed", lr_for=lr_for, pretrain=pretrain,
                              lyapunov=True)
            folder = sweep.run_sweep(exp, out / "sweeps", progress=progress, workers=workers)
            r, meta = _collect(folder, "flossed")
            rows += r
            runs += meta
            selection += _selection(folder, "flossed")
    for task in sensitivity_tasks(cfg):
        scfg, condition = _sensitivity_config(cfg, task), sensitivity_condition(cfg)
        rules = task_rules(scfg, task)
        lr_for = {f"{r}|{g:g}": chosen[(task, "eprop(form=detach)" if r == "eprop(form=trace)" else r, g)]
                  for r in rules for g in scfg.gains}
        exp = _experiment(scfg, task, rules, f"{task}-dt{cfg.sensitivity_dt:g}", lr_for=lr_for)
        folder = sweep.run_sweep(exp, out / "sweeps", progress=progress, workers=workers)
        r, meta = _collect(folder, condition)
        rows += r
        runs += meta
    stats = _run_statistics(cfg, rows, runs)
    floors = _floors(cfg)
    claims = _claims(cfg, stats, floors)
    elapsed = time.time() - t0
    common.write_rows(out / "runs.csv", stats)
    common.write_rows(out / "claims.csv", claims)
    common.write_rows(out / "flossing_lr.csv", floss_table)
    if selection:
        common.write_rows(out / "lr_selection.csv", selection)
    _write_curves(out / "curves", rows)
    _figures(cfg, out, rows, stats, floors)
    atomic_write_text(out / "claims.md", _claims_markdown(cfg, claims, floors, floss_lr, elapsed))
    return {"claims": claims, "runs": stats, "seconds": elapsed}


def _floors(cfg: Config) -> dict:
    """Each task's chance floor (and each sensitivity task's at its dt), keyed as the claims read them."""
    floors = {task: chance_floor(_task(cfg, task)) for task in cfg.tasks}
    floors.update({f"{task} at dt = {cfg.sensitivity_dt:g}": chance_floor(_task(_sensitivity_config(cfg, task), task))
                   for task in sensitivity_tasks(cfg)})
    return floors


STAT_TEXT = ("task", "rule", "condition")
CURVE_COLUMNS = ("condition", "stage", "task", "rule", "gain", "lr", "seed", "iteration", "loss", "accuracy")


def redraw(out) -> list[Path]:
    """Draw the study's figures again from the tables it wrote (``config.json``, ``runs.csv``,
    ``curves.parquet`` or ``curves.csv``): a change of figure style needs no rerun.  Returns the
    figures' paths."""
    import csv
    out = Path(out)
    curves_file = next((p for p in (out / "curves.parquet", out / "curves.csv") if p.is_file()), None)
    for name, present in (("config.json", (out / "config.json").is_file()), ("runs.csv", (out / "runs.csv").is_file()),
                          ("curves.parquet (or curves.csv)", curves_file is not None)):
        if not present:
            raise FileNotFoundError(f"{out} is not an initialization study folder: no {name}")
    cfg = Config(**json.loads((out / "config.json").read_text()))
    rows = sweep.read_table(curves_file)
    with open(out / "runs.csv", newline="") as fh:
        stats = [_typed_stat(r) for r in csv.DictReader(fh)]
    _figures(cfg, out, rows, stats, _floors(cfg))
    return sorted(out.glob("*.png"))


def _typed_stat(row: dict) -> dict:
    """A ``runs.csv`` row with the types ``_run_statistics`` gave it (numbers, ``diverged`` a bool, None)."""
    typed = {}
    for k, v in row.items():
        if k in STAT_TEXT:
            typed[k] = v
        elif k == "diverged":
            typed[k] = v == "True"
        elif k == "seed":
            typed[k] = int(v)
        else:
            typed[k] = float(v) if v not in ("", None) else None      # the CSV writes None as ""
    return typed


def task_rules(cfg: Config, task: str) -> list:
    """The rules a task runs.  At dt >= τ (α = 0) e-prop's trace form is its detach form (no leak, no
    trace to keep; ``tests/test_rules.py`` holds the gradients equal), so only the detach form runs."""
    t = cfg.tasks[task]
    if t["dt"] >= t["tau"] and "eprop(form=detach)" in cfg.rules:
        return [r for r in cfg.rules if r != "eprop(form=trace)"]
    return list(cfg.rules)


def sensitivity_tasks(cfg: Config) -> list:
    """Tasks that run at dt >= τ (α = 0): run again at ``cfg.sensitivity_dt``, where e-prop keeps a trace."""
    if not cfg.sensitivity_dt:
        return []
    return [t for t, v in cfg.tasks.items() if v["dt"] >= v["tau"] and cfg.sensitivity_dt < v["tau"]]


def sensitivity_condition(cfg: Config) -> str:
    return f"dt={cfg.sensitivity_dt:g}"


def _sensitivity_config(cfg: Config, task: str) -> Config:
    """The sensitivity runs: ``task`` at ``sensitivity_dt``, fewer gains and seeds, the learning rates
    selected at the task's own dt (the trace form takes the detach form's)."""
    return replace(cfg, tasks={task: {**cfg.tasks[task], "dt": cfg.sensitivity_dt}},
                   gains=list(cfg.sensitivity_gains), seeds=cfg.sensitivity_seeds, sensitivity_dt=None)


def rule_name(cfg: Config, task: str, rule: str) -> str:
    """A rule's name in tables and figures; at α = 0 the detach row stands for both e-prop forms."""
    if rule == "eprop(form=detach)" and "eprop(form=trace)" in cfg.rules and "eprop(form=trace)" not in task_rules(cfg, task):
        return "e-prop (α = 0: detach = trace)"
    return RULE_NAMES.get(rule, rule)


def _task(cfg: Config, name: str):
    t = cfg.tasks[name]
    return neuro.tasks.get(name, dt=t["dt"], **({"tau": t["tau"]} if name == "romo" else {}))


def _collect(folder: Path, condition: str) -> tuple[list, list]:
    """Every iteration of every run of a finished sweep (both stages), and the per-run records."""
    plain = lambda label: label.split("(")[0]          # "romo(tau=100.0)" -> "romo": one task per sweep
    rows = [{**r, "task": plain(r["task"]), "condition": condition} for r in sweep.read_table(folder)]
    meta = [{**m, "task": plain(m["task"]), "condition": condition} for m in sweep.runs_table(folder)]
    return rows, meta


def _selects_floss_lr(cfg: Config) -> bool:
    return cfg.floss_select_lr and not cfg.lr_for and bool(cfg.selection_seeds) and len(cfg.lrs) > 1


def _selection(folder: Path, condition: str) -> list:
    """The learning-rate search of a finished sweep (its ``summary.csv`` rows of stage ``lr_search``)."""
    import csv
    with open(folder / "summary.csv", newline="") as f:
        return [{"condition": condition, **r} for r in csv.DictReader(f) if r["stage"] == "lr_search"]


def _chosen_lrs(meta: list) -> dict:
    """(task, rule, gain) -> the lr its evaluation seeds trained with."""
    return {(m["task"], m["rule"], m["gain"]): m["lr"] for m in meta if m["stage"] == "train"}


def _choose_floss_lr(cfg: Config, progress: bool, workers: int | None = None) -> tuple[float, list]:
    """The flossing lr of ``cfg.floss_lrs`` whose pretraining brings the max exponent closest to 0 at
    every gain (smallest worst-case |λ_max| over gains, on the first selection seed).  Each candidate
    flosses one ensemble of the gains, in a worker process."""
    from neuro.executors import cpu_count, make_executor
    if len(cfg.floss_lrs) == 1:       # nothing to choose; the flossed sweep records the exponents
        return cfg.floss_lrs[0], []
    payloads = [{"cfg": asdict(cfg), "lr": lr} for lr in cfg.floss_lrs]
    table = []
    with make_executor(None, workers if workers is not None else min(cpu_count(), len(payloads)), threads=1) as ex:
        for _, rows in ex.imap(_floss_candidate, payloads):
            table += rows
    def worst(lr):
        per_gain = [np.mean([r["lyapunov_after"] for r in table if r["floss_lr"] == lr and r["gain"] == g])
                    for g in cfg.gains]
        return max(abs(v) if np.isfinite(v) else math.inf for v in per_gain)
    best = min(cfg.floss_lrs, key=worst)
    for r in table:
        r["chosen"] = r["floss_lr"] == best
    return best, table


def _floss_candidate(payload: dict) -> list[dict]:
    """Floss the gains × selection seeds at one lr; max exponents before and after (runs in a worker)."""
    from neuro.ensemble import Ensemble
    cfg, lr = Config(**payload["cfg"]), payload["lr"]
    task = _task(cfg, cfg.floss_task)
    spec = neuro.models.load("romo_rate").replace(**{"populations[0].size": cfg.n_hidden,
                                                     "dt": cfg.tasks[cfg.floss_task]["dt"],
                                                     "populations[0].neuron.tau": cfg.tasks[cfg.floss_task]["tau"],
                                                     "n_inputs": task.n_inputs, "n_outputs": task.n_outputs})
    seeds = cfg.selection_seeds[:1] or [10_000]
    members = [{"seed": s, "lr": 1e-3, "overrides": {"recurrent.gain": g}} for g in cfg.gains for s in seeds]
    lyap = {"k": cfg.lyapunov_k, "batch_size": 8, "steps": None, "seed": 123}
    ens = Ensemble(spec, members)
    before = sweep.max_exponents(ens.net, task, lyap)
    neuro.floss(ens.net, steps=cfg.floss_steps, k=cfg.floss_k, local=True, lr=lr, inputs=task, batch_size=8,
                seed=0, progress=False)
    after = sweep.max_exponents(ens.net, task, lyap)
    return [{"floss_lr": lr, "gain": m["overrides"]["recurrent.gain"], "seed": m["seed"],
             "lyapunov_before": float(before[i]), "lyapunov_after": float(after[i])} for i, m in enumerate(members)]


def _run_statistics(cfg: Config, rows: list, runs: list) -> list[dict]:
    """One row per evaluation run: its learning-curve statistics and Lyapunov exponents."""
    curves_by_run: dict = {}
    for r in rows:
        if r["stage"] == "train":
            curves_by_run.setdefault((r["condition"], r["task"], r["rule"], r["gain"], r["seed"]), []).append(r)
    lyap = {(m["condition"], m["task"], m["rule"], m["gain"], m["seed"]): m for m in runs if m["stage"] == "train"}
    out = []
    for key, rs in sorted(curves_by_run.items(), key=lambda kv: (kv[0][1], kv[0][0], kv[0][2], kv[0][3], kv[0][4])):
        condition, task, rule, gain, seed = key
        iterations = cfg.tasks[task]["iterations"]
        loss = np.full(iterations, np.inf)
        acc = np.full(iterations, np.nan)
        for r in rs:
            loss[r["iteration"]], acc[r["iteration"]] = r["loss"], r["accuracy"]
        row = {"task": task, "rule": rule, "condition": condition, "gain": gain, "lr": rs[0]["lr"], "seed": seed,
               **curves.run_statistics(loss, acc, window=(cfg.window_start, None),
                                       criterion=cfg.tasks[task]["criterion"])}
        row["late_window_log10_loss"] = curves.window_log10(loss, min(cfg.floss_window_start, iterations - 1))
        row["diverged"] = bool(len(rs) < iterations or not np.all(np.isfinite(loss)))
        m = lyap.get(key, {})
        for k in ("init", "pretrained", "trained"):
            row[f"lyapunov_{k}"] = m.get(f"lyapunov_{k}", math.nan)
        out.append(row)
    return out


def chance_floor(task, n: int = 512) -> float:
    """The loss of the best prediction that ignores the inputs but knows the time step: per step, the
    mean target (regression, masked MSE) or the class frequencies (classification, cross-entropy).
    A run whose loss stays here has learned nothing about the stimuli."""
    b = task.batch(n, seed=987_654)
    mask = b.mask.numpy()
    if task.kind == "regression":
        y = b.targets.numpy()
        w = mask[..., None]
        mean = (y * w).sum(1, keepdims=True) / np.maximum(w.sum(1, keepdims=True), 1e-12)
        per_step = ((y - mean) ** 2).mean(-1)
    else:
        y = b.targets.numpy()
        per_step = np.zeros_like(mask)
        for t in range(y.shape[0]):
            scored = mask[t] > 0
            if scored.any():
                p = np.bincount(y[t][scored], minlength=task.n_outputs) / scored.sum()
                per_step[t] = -np.log(np.maximum(p[y[t]], 1e-12))
    return float((per_step * mask).sum() / mask.sum())


# -- claims --------------------------------------------------------------------------

def _values(stats, task, rule, gain, condition="none", column="window_log10_loss") -> np.ndarray:
    rows = sorted((r for r in stats if r["task"] == task and r["rule"] == rule and r["gain"] == gain
                   and r["condition"] == condition), key=lambda r: r["seed"])
    return np.array([r[column] for r in rows], dtype=float)


def _at_floor(stats, task, rule, gain, floor, condition="none") -> bool:
    return curves.at_floor(_values(stats, task, rule, gain, condition, "final_loss"), floor)


def _claim(claim, what, a, b, direction, floor_note=None, margin=None, note="") -> dict:
    cmp = curves.compare(a, b)
    label, reason = curves.verdict(cmp, direction, margin=margin)
    if floor_note:
        label, reason = "inconclusive", floor_note
    return {"claim": claim, "statement": what, "a_mean": cmp.mean_a, "a_std": cmp.std_a, "b_mean": cmp.mean_b,
            "b_std": cmp.std_b, "diff": cmp.diff_mean, "ci_low": cmp.ci[0], "ci_high": cmp.ci[1],
            "p_one_sided": {"less": cmp.p_less, "greater": cmp.p_greater}.get(direction, math.nan), "effect": cmp.effect,
            "test": cmp.test, "n": cmp.n, "verdict": label, "reason": reason, "note": note}


def _claims(cfg: Config, stats: list, floors: dict) -> list[dict]:
    claims = []
    low = min(cfg.gains)
    ref = 1.0 if 1.0 in cfg.gains else sorted(cfg.gains)[len(cfg.gains) // 2]
    for task in cfg.tasks:
        for rule in task_rules(cfg, task):
            claims += _gain_claims(cfg, stats, floors[task], task, rule, low, ref)
    if cfg.floss_task in cfg.tasks:
        for rule in task_rules(cfg, cfg.floss_task):
            claims += _lyapunov_claims(cfg, stats, rule, low, ref)
        for rule in cfg.floss_rules:
            claims += _flossing_claims(cfg, stats, floors[cfg.floss_task], rule, low)
    for task in sensitivity_tasks(cfg):
        claims += _sensitivity_claims(cfg, stats, floors[f"{task} at dt = {cfg.sensitivity_dt:g}"], task)
    adjusted = curves.holm([c["p_one_sided"] if np.isfinite(c["p_one_sided"]) else 1.0 for c in claims])
    for c, p in zip(claims, adjusted):
        c["p_holm"] = p
    return claims


def _floor_note(stats, task, rule, gains, floor, condition="none"):
    stuck = [g for g in gains if _at_floor(stats, task, rule, g, floor, condition)]
    if len(stuck) == len(gains):
        return (f"no run of either condition ends below the chance floor ({floor:.4f}; at it, or above it where "
                "the run blew up): nothing learned to compare")
    return None


def _gain_claims(cfg, stats, floor, task, rule, low, ref) -> list[dict]:
    name = f"{task} / {rule_name(cfg, task, rule)}"
    out = []
    a, b = _values(stats, task, rule, low), _values(stats, task, rule, ref)
    out.append(_claim("1a", f"{name}: g = {low:g} learns worse than g = {ref:g} (mean log10 loss from iteration "
                            f"{cfg.window_start})", a, b, "greater",
                      _floor_note(stats, task, rule, [low, ref], floor)))
    paper = [g for g in PAPER_GAINS if g in cfg.gains and g != low]
    if len(paper) >= 2:
        parts = [_claim("1b", "", a, _values(stats, task, rule, g), "greater",
                        _floor_note(stats, task, rule, [low, g], floor)) for g in paper]
        labels = [p["verdict"] for p in parts]
        verdict = ("held" if all(v == "held" for v in labels) else
                   "not held" if any(v == "not held" for v in labels) else "inconclusive")
        worst = max(parts, key=lambda p: p["p_one_sided"] if np.isfinite(p["p_one_sided"]) else 1.0)
        row = {**worst, "claim": "1b", "verdict": verdict,
               "statement": f"{name}: g = {low:g} learns worse than each other gain of the paper "
                            f"({', '.join(f'{g:g}' for g in paper)})",
               "reason": "; ".join(f"vs g={g:g}: {p['verdict']} ({p['reason']})" for g, p in zip(paper, parts)),
               "note": "the row's numbers are those of the least significant pair"}
        out.append(row)
    worst_gain = max(cfg.gains, key=lambda g: np.mean(_values(stats, task, rule, g)))
    if worst_gain != low:
        out.append(_claim("1c", f"{name}: (our reading) the worst-learning gain g = {worst_gain:g} learns worse "
                                f"than g = {ref:g}", _values(stats, task, rule, worst_gain), b, "greater",
                          _floor_note(stats, task, rule, [worst_gain, ref], floor),
                          note="g = 2 is not among the paper's gains" if worst_gain not in PAPER_GAINS else ""))
    return out


def _sensitivity_claims(cfg, stats, floor, task) -> list[dict]:
    """Claim 1a again at the sensitivity dt (α > 0: the e-prop forms differ and keep a trace)."""
    scfg, condition = _sensitivity_config(cfg, task), sensitivity_condition(cfg)
    low, ref = min(scfg.gains), max(scfg.gains)
    alpha = 1 - cfg.sensitivity_dt / cfg.tasks[task]["tau"]
    out = []
    for rule in task_rules(scfg, task):
        a, b = (_values(stats, task, rule, g, condition) for g in (low, ref))
        out.append(_claim("1a'", f"{task} / {RULE_NAMES.get(rule, rule)} at dt = {cfg.sensitivity_dt:g} ms "
                                 f"(α = {alpha:.2g}): g = {low:g} learns worse than g = {ref:g} (mean log10 loss from "
                                 f"iteration {cfg.window_start})", a, b, "greater",
                          _floor_note(stats, task, rule, [low, ref], floor, condition),
                          note=f"sensitivity: {scfg.seeds} seeds, the learning rates selected at dt = "
                               f"{cfg.tasks[task]['dt']:g} ms"))
    return out


def _lyapunov_claims(cfg, stats, rule, low, ref) -> list[dict]:
    task, name = cfg.floss_task, RULE_NAMES.get(rule, rule)
    col = lambda g, c: _values(stats, task, rule, g, column=f"lyapunov_{c}")
    init_low, init_ref = col(low, "init"), col(ref, "init")
    trained_low = col(low, "trained")
    out = [_claim("2a", f"{task} / {name}: before training the max LE is farther from 0 at g = {low:g} than at "
                        f"g = {ref:g} (|λ_max| per step)", np.abs(init_low), np.abs(init_ref), "greater"),
           _claim("2b", f"{task} / {name}: training brings the max LE toward 0 at g = {low:g} (|λ| after vs before)",
                  np.abs(trained_low), np.abs(init_low), "less"),
           _claim("2c", f"{task} / {name}: training changes the max LE more at g = {low:g} than at g = {ref:g} "
                        f"(|λ after − λ before|)", np.abs(trained_low - init_low),
                  np.abs(col(ref, "trained") - init_ref), "greater")]
    trained = np.concatenate([col(g, "trained") for g in cfg.gains if g in PAPER_GAINS or g == low])
    out.append(_claim("2d", f"{task} / {name}: trained networks have a max LE around 0 (within ±0.05 per step; "
                            f"all of the paper's gains pooled)", trained, np.zeros_like(trained), "equivalent",
                      margin=0.05, note="the ±0.05 margin is ours; the paper gives none"))
    return out


def _flossing_claims(cfg, stats, floor, rule, low) -> list[dict]:
    task, name = cfg.floss_task, RULE_NAMES.get(rule, rule)
    col = "late_window_log10_loss"
    plain = {g: _values(stats, task, rule, g, "none", col) for g in cfg.gains}
    flossed = {g: _values(stats, task, rule, g, "flossed", col) for g in cfg.gains}
    out = [_claim("3a", f"{task} / {name}: flossing before training lowers the loss at g = {low:g} (mean log10 loss "
                        f"from iteration {cfg.floss_window_start})", plain[low], flossed[low], "greater",
                  _floor_note(stats, task, rule, [low], floor) and _floor_note(stats, task, rule, [low], floor,
                                                                                 "flossed"))]
    gain = {g: plain[g] - flossed[g] for g in cfg.gains}          # per-seed improvement (log10 units)
    means = {g: np.mean(plain[g]) for g in cfg.gains}
    worst, best = max(means, key=means.get), min(means, key=means.get)
    if worst != best:
        out.append(_claim("3b", f"{task} / {name}: flossing helps most at the worst-learning gain (g = {worst:g}) — "
                                f"more than at the best (g = {best:g})", gain[worst], gain[best], "greater",
                          note="g = 2 is not among the paper's gains" if worst not in PAPER_GAINS else ""))
    if low not in (worst, best):
        out.append(_claim("3b'", f"{task} / {name}: (smallest-gain reading) flossing helps more at g = {low:g} than "
                                 f"at the best gain g = {best:g}", gain[low], gain[best], "greater"))
    before = _values(stats, task, rule, low, "flossed", "lyapunov_init")
    after = _values(stats, task, rule, low, "flossed", "lyapunov_pretrained")
    out.append(_claim("3c", f"{task} / {name}: flossing brings the max LE toward 0 at g = {low:g} "
                            f"(|λ| after vs before pretraining)", np.abs(after), np.abs(before), "less"))
    return out


def _fmt(x) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if isinstance(x, float) and math.isinf(x):
        return "diverged"
    return f"{x:.3g}"


def _claims_markdown(cfg: Config, claims: list, floors: dict, floss_lr, elapsed: float) -> str:
    timing = "; ".join(f"{t}: dt = {v['dt']:g} ms, τ = {v['tau']:g} ms (α = {1 - v['dt'] / v['tau']:.2g}), "
                       f"{v['iterations']} iterations" for t, v in cfg.tasks.items())
    lines = ["# Initialization study — the paper's claims, tested", "",
             f"Gains {cfg.gains} (g = 2 is ours; the paper's are 0.2–1.5), rules {cfg.rules}, {cfg.seeds} seeds, "
             f"batch {cfg.batch_size}, N = {cfg.n_hidden}, Adam. {timing}. "
             + (f"Learning rate per (task, rule, gain) from {cfg.lrs} by the area under the log10-loss curve "
                f"of {len(cfg.selection_seeds)} selection seeds trained for the full length. "
                if cfg.selection_seeds and len(cfg.lrs) > 1 and not cfg.lr_for else
                "Learning rates fixed per (rule, gain) to those the full run selected: "
                + ", ".join(f"{k} {v:g}" for k, v in cfg.lr_for.items()) + ". " if cfg.lr_for else
                f"One learning rate, {cfg.lrs[0]:g}, for every run. ")
             + (f"Flossing: {cfg.floss_steps} local steps, k = {cfg.floss_k}, lr {floss_lr:g} (of {cfg.floss_lrs}, "
                f"the one that brings the max exponent closest to 0 at every gain); e-prop after flossing trains at "
                + ("its own learning rate, selected as for the unflossed runs (lr_selection.csv, condition flossed). "
                   if _selects_floss_lr(cfg) else "the learning rate selected without flossing. ") if floss_lr else "")
             + "".join(f"{t}: dt = τ, so α = 0 and the two e-prop forms are one rule (their gradients are equal); "
                       "it runs once, reported as 'detach = trace'. " for t in cfg.tasks
                       if task_rules(cfg, t) != list(cfg.rules))
             + (f"Sensitivity to dt/τ: {', '.join(sensitivity_tasks(cfg))} again at dt = {cfg.sensitivity_dt:g} ms "
                f"(gains {cfg.sensitivity_gains}, {cfg.sensitivity_seeds} seeds, each rule at the learning rate selected "
                "at the task's own dt; claims 1a'). " if sensitivity_tasks(cfg) else "")
             + f"Wall time of this invocation {elapsed / 60:.1f} min (sweeps already on disk are reused, not "
               "retrained).", "",
             "Statistic: each run's mean log10 loss from iteration "
             f"{cfg.window_start} (the paper's Fig. 1 starts there; claim 3 from {cfg.floss_window_start}, as "
             "Fig. 4); a (a) and b (b) are its mean ± sd over seeds, compared seed by seed (paired t-test, 95 % CI "
             "of a − b, effect d_z; the exact signed-rank test where a run diverged). *held*: the claimed "
             "difference is significant (one-sided p < 0.05); *not held*: the opposite one is; *inconclusive*: "
             "within seed noise, or every run at the chance floor. p (Holm) adjusts for the whole table.",
             "", "Chance floors (loss of the best input-blind prediction): "
             + ", ".join(f"{t} {v:.4f}" for t, v in floors.items()) + ".", ""]
    if cfg.quick:
        lines += [f"**Quick run: {cfg.seeds} seeds, {len(cfg.gains)} gains, {list(cfg.tasks.values())[0]['iterations']} "
                  "iterations.** Paired tests on 3 seeds are underpowered (a t-test needs d_z ≳ 1.7 to reach "
                  "p < 0.05 one-sided): read *inconclusive* as 'not measured', and the full run "
                  "(`neuro reproduce initialization`) for the verdicts.", ""]
    lines += claims_table(claims).splitlines()
    lines += ["", "Reasons:", ""] + [f"- {c['claim']} {c['statement'].split(':')[0]}: {c['reason']}" for c in claims]
    return "\n".join(lines) + "\n"


def claims_table(claims: list[dict]) -> str:
    """The claims as a markdown table; ``claims`` as ``_claims`` returns them or as read back from
    ``claims.csv`` (the README's table is this function of the committed file)."""
    num = lambda v: float(v) if isinstance(v, str) and v not in ("", "nan") else (math.nan if v in ("", "nan") else v)
    lines = ["| claim | statement | a | b | a − b [95 % CI] | effect | p | p (Holm) | verdict |",
             "|---|---|---|---|---|---|---|---|---|"]
    for c in claims:
        c = {k: (num(v) if k not in ("claim", "statement", "verdict", "reason", "note", "test") else v)
             for k, v in c.items()}
        ci = "" if not np.isfinite(c["ci_low"]) else f" [{_fmt(c['ci_low'])}, {_fmt(c['ci_high'])}]"
        verdict = {"held": "held", "not held": "**not held**", "inconclusive": "*inconclusive*"}[c["verdict"]]
        note = f" ({c['note']})" if c.get("note") else ""
        lines.append(f"| {c['claim']} | {c['statement']}{note} | {_fmt(c['a_mean'])} ± {_fmt(c['a_std'])} | "
                     f"{_fmt(c['b_mean'])} ± {_fmt(c['b_std'])} | {_fmt(c['diff'])}{ci} | {_fmt(c['effect'])} | "
                     f"{_fmt(c['p_one_sided'])} | {_fmt(c['p_holm'])} | {verdict} |")
    return "\n".join(lines) + "\n"


def readme_claims(results: Path) -> str:
    """The README's claims table, from a committed study folder's ``claims.csv``."""
    import csv
    with open(Path(results) / "claims.csv", newline="") as fh:
        return claims_table(list(csv.DictReader(fh)))


# -- outputs -----------------------------------------------------------------------

def _write_curves(stem: Path, rows: list) -> None:
    """Every iteration of every evaluation run, and every 10th of the lr-selection runs."""
    keep = [r for r in rows if r["stage"] == "train" or r["iteration"] % 10 == 0]
    sweep.write_table(stem, keep, columns=CURVE_COLUMNS, float32=("loss", "accuracy"), compression="zstd")


def _figures(cfg: Config, out: Path, rows: list, stats: list, floors: dict) -> None:
    """Learning curves (Fig. 1, 2, 5), flossing (Fig. 4), exponents (Fig. 3), sensitivity.  Each loss axis
    stops at 30 × the task's chance floor: a run beyond it has failed; it is drawn at the edge, marked ×."""
    from neuro import plots
    plt = plots.pyplot()
    train = [r for r in rows if r["stage"] == "train"]
    by = {}
    for r in train:
        by.setdefault((r["condition"], r["task"], r["rule"], r["gain"], r["seed"]), []).append(r["loss"])
    colors = dict(zip(cfg.gains, plt.cm.viridis(np.linspace(0, 0.9, len(cfg.gains)))))
    for task in cfg.tasks:
        n = cfg.tasks[task]["iterations"]
        rules = task_rules(cfg, task)
        for suffix, gains in (("", cfg.gains), ("_intermediate", [g for g in cfg.gains if g in PAPER_GAINS])):
            fig, axes = plt.subplots(1, len(rules), figsize=(4.4 * len(rules), 3.6), sharey=True,
                                     squeeze=False)
            lows = []
            for ax, rule in zip(axes[0], rules):
                for g in gains:
                    runs = [by.get(("none", task, rule, g, s), []) for s in range(cfg.seeds)]
                    lows.append(_band(ax, runs, cfg.window_start, n, colors[g],
                                      f"g = {g:g}" + ("" if g in PAPER_GAINS else " (ours)"), cap=30 * floors[task]))
                ax.set_title(rule_name(cfg, task, rule), fontsize=10)
                ax.set_xlabel("training iteration")
                ax.set_yscale("log")
            _floor_axis(axes[0][0], lows)
            axes[0][0].set_ylabel(f"{task} loss (geometric mean ×/÷ sd, {cfg.seeds} seeds)")
            plots.legend_outside(axes[0][-1], fontsize=8)
            fig.suptitle(f"{task}: learning curves from iteration {cfg.window_start}; × = a run diverged (the axis ends at 30 × the "
                         "chance floor)", fontsize=10)
            plots.save(fig, out / f"learning_curves_{task}{suffix}.png")
    if any(r["condition"] == "flossed" for r in stats):
        task = cfg.floss_task
        fig, axes = plt.subplots(len(cfg.floss_rules), len(cfg.gains), figsize=(3.2 * len(cfg.gains),
                                 3.0 * len(cfg.floss_rules)), sharey=True, squeeze=False)
        lows = []
        for i, rule in enumerate(cfg.floss_rules):
            for ax, g in zip(axes[i], cfg.gains):
                for cond, color in (("none", "tab:gray"), ("flossed", "tab:red")):
                    runs = [by.get((cond, task, rule, g, s), []) for s in range(cfg.seeds)]
                    lows.append(_band(ax, runs, cfg.floss_window_start, cfg.tasks[task]["iterations"], color,
                                      "e-prop" if cond == "none" else "flossing → e-prop", cap=30 * floors[task]))
                ax.set_title(f"{RULE_NAMES.get(rule, rule).split(' (')[0]} {rule[-7:-1]}, g = {g:g}", fontsize=9)
                ax.set_yscale("log")
                ax.set_xlabel("training iteration")
            axes[i][0].set_ylabel(f"{task} loss (geometric mean ×/÷ sd)")
        _floor_axis(axes[0][0], lows)
        plots.legend_outside(axes[0][-1], fontsize=8)
        fig.suptitle(f"{task}: e-prop with and without {cfg.floss_steps} steps of local flossing, from iteration "
                     f"{cfg.floss_window_start}", fontsize=10)
        plots.save(fig, out / "flossing.png")
        _lyapunov_figure(cfg, out, stats, plt, plots)
    _sensitivity_figure(cfg, out, stats, plt, plots)


def _floor_axis(ax, lows, margin: float = 5.0) -> None:
    """The (shared) loss axis starts ``margin``× below the lowest mean curve, so that a band made wide
    by one seed far from the others does not squeeze every curve into a corner."""
    lows = [v for v in lows if np.isfinite(v) and v > 0]
    if lows:
        ax.set_ylim(bottom=min(lows) / margin)


def _band(ax, runs, start, n, color, label, cap: float | None = None) -> float:
    """Mean ± sd of the runs' loss from ``start``; a diverged run is marked × where it stopped and
    left out of the band after that point (the band then covers fewer runs).  With ``cap`` the axis
    ends there and anything above it is drawn at the edge.  Returns the lowest point of the mean."""
    a = np.full((len(runs), n), np.nan)
    for i, c in enumerate(runs):
        c = np.asarray(c, dtype=float)
        a[i, :len(c)] = c
        if 0 < len(c) < n:
            last = np.nanmax(c[-1:]) if np.isfinite(c[-1:]).any() else np.inf
            ax.plot([max(len(c) - 1, start)], [min(last, cap or np.inf)], marker="x", color=color, ms=8, mew=2,
                    clip_on=False)
    a = np.where(np.isfinite(a), a, np.nan)
    with np.errstate(all="ignore"):
        logs = np.log10(a[:, start:])
        mean, sd = np.nanmean(logs, 0), np.nanstd(logs, 0)
    smooth = max(1, (n - start) // 100)          # a running mean over 1 % of the window, for legibility
    if smooth > 1 and np.all(np.isfinite(mean)):
        kernel = np.ones(smooth) / smooth
        mean, sd = np.convolve(mean, kernel, "same"), np.convolve(sd, kernel, "same")
        mean[:smooth], sd[:smooth] = mean[smooth], sd[smooth]
        mean[-smooth:], sd[-smooth:] = mean[-smooth - 1], sd[-smooth - 1]
    x = np.arange(start, n)
    top = cap or np.inf
    ax.plot(x, np.minimum(10 ** mean, top), color=color, lw=1.4, label=label)
    ax.fill_between(x, np.minimum(10 ** (mean - sd), top), np.minimum(10 ** (mean + sd), top), color=color,
                    alpha=0.18, lw=0)
    if cap and ax.get_ylim()[1] > cap:
        ax.set_ylim(top=cap)
    return float(np.nanmin(10 ** mean)) if np.isfinite(mean).any() else math.nan


def _lyapunov_figure(cfg, out, stats, plt, plots) -> None:
    task = cfg.floss_task
    fig, axes = plt.subplots(1, len(cfg.rules), figsize=(4.2 * len(cfg.rules), 3.4), sharey=True, squeeze=False)
    for ax, rule in zip(axes[0], cfg.rules):
        for col, style, lab in (("init", "o-", "before training"), ("trained", "s-", "after training")):
            v = [_values(stats, task, rule, g, column=f"lyapunov_{col}") for g in cfg.gains]
            ax.errorbar(cfg.gains, [np.mean(x) for x in v], yerr=[np.std(x, ddof=1) for x in v], fmt=style,
                        capsize=3, label=lab)
        if rule in cfg.floss_rules:
            v = [_values(stats, task, rule, g, "flossed", "lyapunov_pretrained") for g in cfg.gains]
            ax.errorbar(cfg.gains, [np.mean(x) for x in v], yerr=[np.std(x, ddof=1) for x in v], fmt="^--",
                        capsize=3, label="after flossing")
        ax.axhline(0, color="gray", lw=0.8, ls="--")
        ax.set_title(RULE_NAMES.get(rule, rule), fontsize=10)
        ax.set_xlabel("initial gain g")
    axes[0][0].set_ylabel(f"max Lyapunov exponent (per {cfg.tasks[task]['dt']:g} ms step)")
    plots.legend_outside(axes[0][-1], fontsize=8)
    fig.suptitle(f"{task}: max Lyapunov exponent before/after training (mean ± sd over seeds)", fontsize=10)
    plots.save(fig, out / "lyapunov_before_after.png")


def _sensitivity_figure(cfg, out, stats, plt, plots) -> None:
    """Which conclusions depend on which choice: each task's statistic per gain and rule, side by side
    (the e-prop forms differ only where dt < τ)."""
    fig, axes = plt.subplots(1, len(cfg.tasks), figsize=(4.4 * len(cfg.tasks), 3.4), squeeze=False)
    markers = dict(zip(cfg.rules, "osd^v"))
    colors = dict(zip(cfg.rules, plots.categorical(len(cfg.rules))))     # one colour per rule in every panel
    for ax, task in zip(axes[0], cfg.tasks):
        t = cfg.tasks[task]
        for rule in task_rules(cfg, task):
            v = [_values(stats, task, rule, g) for g in cfg.gains]
            m = [np.mean(x) if np.all(np.isfinite(x)) else np.nan for x in v]
            sd = [np.std(x, ddof=1) if np.all(np.isfinite(x)) else np.nan for x in v]
            ax.errorbar(cfg.gains, m, yerr=sd, marker=markers[rule], color=colors[rule], capsize=3,
                        label=rule_name(cfg, task, rule))
        if task in sensitivity_tasks(cfg):
            scfg, condition = _sensitivity_config(cfg, task), sensitivity_condition(cfg)
            for rule in task_rules(scfg, task):
                v = [_values(stats, task, rule, g, condition) for g in scfg.gains]
                m = [np.mean(x) if len(x) and np.all(np.isfinite(x)) else np.nan for x in v]
                sd = [np.std(x, ddof=1) if len(x) > 1 and np.all(np.isfinite(x)) else np.nan for x in v]
                ax.errorbar(scfg.gains, m, yerr=sd, marker=markers[rule], color=colors[rule], mfc="none", ls="--",
                            capsize=3, label=f"{RULE_NAMES.get(rule, rule)}, dt = {cfg.sensitivity_dt:g} ms")
        ax.set_title(f"{task}: dt/τ = {t['dt'] / t['tau']:.2g} (α = {1 - t['dt'] / t['tau']:.2g})", fontsize=10)
        ax.set_xlabel("initial gain g")
    axes[0][0].set_ylabel(f"mean log10 loss from iteration {cfg.window_start}")
    handles = {}
    for ax in axes[0]:                   # every panel's entries, once each: panels differ in their rules
        for h, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, h)
    plots.legend_outside(axes[0][-1], handles=list(handles.values()), labels=list(handles), fontsize=7)
    fig.suptitle("Sensitivity: rule and e-prop form × dt/τ (open markers, dashed: the task again at dt = "
                 f"{cfg.sensitivity_dt:g} ms; missing point = a seed diverged)" if sensitivity_tasks(cfg) else
                 "Sensitivity: rule and e-prop form × dt/τ (missing point = a seed diverged)", fontsize=10)
    plots.save(fig, out / "sensitivity.png")

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

The data.  No recording ships (not redistributable).  Every claim is tested against
several *stand-in recordings* made by models outside the compared family
(``neuro.standins``: a full-FORCE network on both tasks, rotational dynamics on
reaching, a context-selected line attractor on the context task), read out as
trial-averaged Poisson spike counts of fewer neurons than the models have; a claim
is supported only where it holds against all of them.  A teacher of the compared
family (``teacher_rule``, BPTT by default) is shown beside them as a diagnostic: it
favours students trained with its own rule.  ``--data PATH`` adds your recording
(``.npy``/``.npz``/``.mat``, ``[conditions, time, neurons]``) for the task
``--data-task`` (reaching: Sussillo et al. 2015's 27 conditions; context: Mante et
al. 2013's 72 condition averages, in the order of ``similarity_references``); its
time axis is aligned to the task's by the events of ``--data-events`` (else the
trial's start and end are matched).

The pipeline, one module per stage: ``similarity_references`` (tasks, conditions,
stand-ins, teacher, recording) → ``similarity_training`` (ensembles, snapshots,
distances) → ``similarity_claims`` (paired tests per reference, robustness across
references) → ``similarity_dsa`` (DSA of the final BPTT and e-prop networks: claim 7) →
``similarity_report`` (tables, claims.md, figures).

Gains multiply the default initialization of the recurrent and readout weights
(the paper's definition).  Everything lands in one run folder: ``config.json``,
``snapshots.csv`` (one row per run × snapshot), ``summary.csv`` (final accuracy and distance per
rule / gain / lr), ``claims.md``, ``claims.csv`` (one row per claim × reference),
``robustness.csv``, ``dsa.csv``/``dsa.md``, ``finals.npz``/``references.npz``, figures.
Scales: ``--quick``, ``--scale medium`` and the default full run; results/similarity/ holds a
smaller run (``results/similarity/run_shared.py``).
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from neuro import similarity
from neuro.standins import STANDINS, StandInConfig
from neuro.io import atomic_write_text
from neuro.studies import common
from neuro.studies import similarity_claims as claims_mod
from neuro.studies import similarity_references as refs_mod
from neuro.studies import similarity_report as report
from neuro.studies import similarity_training as training
from neuro.studies.similarity_training import condition_activity  # noqa: F401  (public: models' activity)

RULE_LABELS = {"bptt": "BPTT", "tbptt": "truncated BPTT", "eprop": "e-prop", "np": "node perturbation",
               "es": "evolution strategies", "modprop": "ModProp"}


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
    teacher_rule: str | None = "bptt"      # an in-family teacher shown beside the stand-ins (None: none)
    standins: dict = field(default_factory=lambda: {k: list(v) for k, v in STANDINS.items()})
    standin: StandInConfig = field(default_factory=StandInConfig)
    standin_seed: int = 2013
    equivalence_margin: float = 0.1        # rad: "comparable" distances differ by less than this
    dsa: dict | None = field(default_factory=lambda: {"n_delays": 10, "rank": 10, "iters": 1000})
                                           # DSA of the final networks (claim 7; None: skipped)

    @classmethod
    def quick(cls) -> "Config":
        return cls(seeds=2, rules=["bptt", "tbptt", "eprop", "np", "es"], perturbation_tasks=["context"],
                   dale_tasks=["context"], n_hidden={"reaching": 32, "context": 32},
                   teacher_hidden={"reaching": 48, "context": 48},
                   iterations={"reaching": 120, "context": 300}, teacher_iterations={"reaching": 250, "context": 500},
                   reaching_dt=20.0, gains=[0.5, 1.0, 1.5], lrs=[1e-3, 1e-4], snapshots=6, context_trials=48,
                   noise_floor_repeats=10, dsa={"n_delays": 10, "rank": 10, "iters": 300},
                   standin=StandInConfig(n_neurons=24, force_units=100,
                                                  force_segments={"reaching": 60, "context": 200}))

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
                   help="quick (a few CPU-minutes), medium (4 seeds, N = 64, 1000/1500 iterations: ~20 CPU-minutes "
                        "on one core) or full (the default: 4 seeds, N = 100; hours)")
    p.add_argument("--out", default=None, help="run folder (default runs/similarity[-quick|-medium])")
    p.add_argument("--data", default=None, help="your recording: .npy/.npz/.mat, [conditions, time, neurons] "
                                                "(reaching: 27 conditions; context: Mante et al.'s 72)")
    p.add_argument("--data-task", default="reaching", choices=["reaching", "context"],
                   help="the task the recording belongs to (default reaching)")
    p.add_argument("--data-key", default=None, help="the array's name inside a .npz/.mat holding several")
    p.add_argument("--data-axes", default="ctn", help="order of the stored axes (default ctn)")
    p.add_argument("--data-dt", type=float, default=10.0, help="the recording's bin width in ms (default 10)")
    p.add_argument("--data-t0", type=float, default=0.0, help="the time of the recording's first bin in ms")
    p.add_argument("--data-events", default=None,
                   help="event times in the recording, ms: e.g. go=600 (reaching) or "
                        "stimulus=0,delay=750,decision=1050 (context); matched to the task's events")
    p.add_argument("--seeds", type=int, default=None)
    p.add_argument("--teacher-rule", default=None, choices=["bptt", "tbptt", "eprop", "none"],
                   help="the in-family teacher shown beside the stand-ins (default bptt; none: no teacher)")
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
        cfg.teacher_rule = None if args.teacher_rule == "none" else args.teacher_rule
    data = None
    if args.data:
        task = getattr(args, "data_task", "reaching") or "reaching"
        if task not in cfg.tasks:
            raise SystemExit(f"--data is a recording for the {task} task, which --tasks {' '.join(cfg.tasks)} "
                             f"leaves out; add it to --tasks or set --data-task")
        data = {task: load(args)}
    out = Path(args.out or ("runs/similarity" if scale == "full" else f"runs/similarity-{scale}"))
    study(cfg, out, data=data, progress=not args.no_progress)
    print(f"results in {out}/ (claims.md, robustness.csv, snapshots.csv, *.png)")
    return 0


def parse_events(text: str | None) -> dict:
    """``"stimulus=0,decision=1050"`` -> ``{"stimulus": 0.0, "decision": 1050.0}``."""
    events = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        name, sep, value = part.partition("=")
        try:
            events[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not name.strip():
            raise ValueError(f"--data-events must look like name=ms,name=ms; got {part!r}")
    return events


def load(args):
    from neuro.data import load_recording
    return load_recording(args.data, key=args.data_key, axes=args.data_axes,
                          dt=getattr(args, "data_dt", 10.0), t0=getattr(args, "data_t0", 0.0),
                          events=parse_events(getattr(args, "data_events", None)))


def save_finals(out: Path, finals: dict, references: dict) -> None:
    """``finals.npz`` (each final network's condition rates and recurrent weights) and ``references.npz``
    (each reference's activity), for later analyses (DSA, eigenspectra) without retraining."""
    import numpy as np
    arrays = {}
    for (task, rule, dale, gain, lr, seed), (rates, w) in finals.items():
        key = f"{task}|{rule}|{int(dale)}|{gain:g}|{lr:g}|{seed}"
        arrays[f"rates:{key}"], arrays[f"W_rec:{key}"] = rates.astype(np.float32), w.astype(np.float32)
    np.savez_compressed(out / "finals.npz", **arrays)
    np.savez_compressed(out / "references.npz", **{f"{name}|{r.name}": r.activity.astype(np.float32)
                                                   for name, found in references.items() for r in found})


def load_finals(out: Path) -> tuple[dict, dict]:
    """The inverse of ``save_finals``: ``({(task, rule, dale, gain, lr, seed): (rates, W_rec)},
    {task: {reference: activity}})``."""
    import numpy as np
    finals, refs = {}, {}
    with np.load(Path(out) / "finals.npz") as z:
        for k in z.files:
            kind, key = k.split(":", 1)
            task, rule, dale, gain, lr, seed = key.split("|")
            t = (task, rule, bool(int(dale)), float(gain), float(lr), int(seed))
            entry = list(finals.get(t, (None, None)))
            entry[0 if kind == "rates" else 1] = z[k].astype(float)
            finals[t] = tuple(entry)
    with np.load(Path(out) / "references.npz") as z:
        for k in z.files:
            task, name = k.split("|")
            refs.setdefault(task, {})[name] = z[k].astype(float)
    return finals, refs


def dynamics(cfg: Config, finals: dict, references: dict, claims: list, out: Path) -> list[str]:
    """The DSA stage (``similarity_dsa``) on the final networks: appends claim 7 per reference to
    ``claims``, writes ``dsa.csv``/``dsa.md``; returns the report's lines about it."""
    if not cfg.dsa:
        return []
    from neuro.studies import similarity_dsa as dsa
    try:
        rows = dsa.dsa_rows(finals, {t: {r.name: r.activity for r in found} for t, found in references.items()},
                            cfg.lr, **cfg.dsa)
    except ImportError as e:
        return ["", f"DSA (claim 7) skipped: {e}."]
    found = dsa.dsa_claims(rows, cfg.equivalence_margin,
                           {r.name: r.neutral for refs in references.values() for r in refs})
    dsa.write(out, rows, found, margin=cfg.equivalence_margin, **cfg.dsa)
    claims.extend(found)
    return ["", "DSA (Ostrow et al. 2023) of the final BPTT and e-prop networks, every distance: `dsa.md`."]


def study(cfg: Config, out: Path, data: dict | None = None, progress: bool = True) -> dict:
    """Run the study into ``out``; ``data``: ``{task: neuro.data.Recording}`` for user recordings."""
    data = dict(data or {})
    unknown = set(data) - set(cfg.tasks)
    if unknown:
        raise ValueError(f"recordings were given for {sorted(unknown)}, which the study's tasks {cfg.tasks} leave out")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "config.json", json.dumps(asdict(cfg), indent=2, default=str))
    t0 = time.time()
    rows, floors, references, finals, claims = [], {}, {}, {}, []
    for name in cfg.tasks:
        task = refs_mod.task(name, cfg)
        cond = refs_mod.conditions(name, task, cfg)
        references[name] = refs_mod.references(name, task, cond, cfg, data.get(name), progress)
        floors[name] = {r.name: similarity.noise_floor(r.activity, n_sample=r.activity.shape[-1] // 2,
                                                       repeats=cfg.noise_floor_repeats)
                        for r in references[name]}
        for dale in (False, True):
            if dale and name not in cfg.dale_tasks:
                continue
            for rule in (cfg.dale_rules if dale else cfg.rules):
                if rule in ("np", "es") and name not in cfg.perturbation_tasks:
                    continue
                found, fin = training.train_rule(name, task, cond, references[name], rule, dale, cfg, out, progress)
                rows.extend(found)
                finals.update(fin)
                common.write_rows(out / "snapshots.csv", rows)            # partial results survive a crash
        for ref in references[name]:
            above = training.model_vs_floor(name, cfg, floors[name][ref.name], finals, ref)
            for c in claims_mod.claims_for(cfg, rows, name, ref.name, floors[name][ref.name], above):
                claims.append({**c, "neutral": ref.neutral})
        claims.extend(claims_mod.model_claims(cfg, finals, name))
    save_finals(out, finals, references)
    notes = dynamics(cfg, finals, references, claims, out)
    elapsed = time.time() - t0
    robust = claims_mod.robustness(claims)
    table = report.summary(rows)
    common.write_rows(out / "summary.csv", table)
    common.write_rows(out / "claims.csv", claims)
    common.write_rows(out / "robustness.csv", [{**{k: v for k, v in r.items() if k != "labels"},
                                               "labels": "; ".join(f"{k}: {v}" for k, v in r["labels"].items())}
                                              for r in robust])
    report.figures(cfg, rows, floors, references, out)
    figures = report.eigenspectrum_figure(cfg, finals, out)
    extra = [""] + [f"Eigenvalues of the trained recurrent weights: `{f}`." for f in figures] + notes
    atomic_write_text(out / "claims.md", report.claims_markdown(cfg, claims, robust, references, floors, elapsed,
                                                                table, extra))
    return {"claims": claims, "robustness": robust, "rows": rows, "floors": floors, "references": references,
            "finals": finals, "seconds": elapsed}

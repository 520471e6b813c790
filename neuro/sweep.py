"""``neuro sweep EXPERIMENT.toml``: a declarative grid trained as ensembles, resumable.

An experiment file names a spec, tasks, rules, recurrent gains, learning rates
and seeds (see ``experiments/initialization_grid.toml``).  Every (task, rule)
becomes one ensemble of all its gains × learning rates × seeds (cut into chunks
of ``chunk_size`` members), trained by ``neuro.ensemble.train_ensemble``; the
chunks run on an executor (``neuro.executors``: a local process pool, or a Dask
or Ray cluster).  With an ``[lr_selection]`` table the sweep first does what
Liu, Zhang & Liu did: for each (task, rule, gain) it trains every learning rate
of the grid on the selection seeds and keeps the one with the lowest final loss
(mean over the last ``window`` iterations), then trains all seeds with it.

Everything lands in one run folder, ``OUT/NAME-HASH`` with HASH the hash of the
experiment's config (spec contents included):

    config.json                        the resolved experiment
    metrics.parquet | metrics.csv      one row per member × iteration (parquet when pyarrow is installed)
    summary.csv                        final loss/accuracy per (stage, task, rule, gain, lr); the chosen lrs
    figures/learning_curves_TASK.png
    members/ID/{spec.toml, checkpoint.pt, history.csv}   one run folder per member (``neuro plot``/``lyapunov`` read it)
    chunks/KEY/                        per-ensemble progress: ensemble.pt while training, metrics + done.json after

Every file is written atomically.  Kill the sweep at any moment (SIGKILL
included) and rerun it: finished chunks are read back, an interrupted one resumes
from its last ``ensemble.pt``, and the final table equals an uninterrupted run's.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import math
import os
import re
import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from neuro.progress import tqdm

from neuro.ensemble import CHECKPOINT
from neuro.io import atomic_torch_save, atomic_write_bytes, atomic_write_text

COLUMNS = ("stage", "task", "rule", "gain", "lr", "seed", "iteration", "loss", "accuracy")
_KEYS = {"name", "spec", "overrides", "tasks", "rules", "gains", "lrs", "seeds", "iterations", "batch_size",
         "chunk_size", "dtype", "device", "lr_selection", "checkpoint_every", "final_window", "lr_for",
         "pretrain", "lyapunov"}
_SELECTION_KEYS = {"iterations", "seeds", "statistic"}
SELECTION_STATISTICS = ("area_log10", "final_loss")
_FLOSS_KEYS = {"steps", "lr", "k", "batch_size", "seed"}
_LYAPUNOV_KEYS = {"k", "batch_size", "steps", "seed"}


# -- the experiment --------------------------------------------------------------

@dataclass
class Experiment:
    """A resolved experiment: the spec as a dict (so its hash covers the contents), tasks and
    rules as ``{"name": …, **options}``.  ``lr_selection = {"iterations": n, "seeds": [...]}`` or None."""

    name: str
    spec: dict
    tasks: list
    rules: list
    gains: list
    lrs: list
    seeds: list
    iterations: int
    batch_size: int = 32
    chunk_size: int | None = None
    dtype: str = "float32"
    device: str = "cpu"
    lr_selection: dict | None = None
    final_window: int = 20
    checkpoint_every: int = 100
    lr_for: dict | None = None       # {"RULE LABEL|GAIN": lr}: a fixed lr per (rule, gain) instead of the grid
    pretrain: dict | None = None     # {"floss": {"steps", "lr", "k", "batch_size", "seed"}} before training
    lyapunov: dict | None = None     # {"k", "batch_size", "steps", "seed"}: max exponent at init, after
                                     # pretraining and after training, on the task's inputs

    def config(self) -> dict:
        return asdict(self)

    def key(self) -> str:
        """Hash of everything that changes the numbers (not ``checkpoint_every``)."""
        cfg = self.config()
        cfg.pop("checkpoint_every")
        return _hash(cfg)


def _hash(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def _named(entry, what: str) -> dict:
    if isinstance(entry, str):
        return {"name": entry}
    if isinstance(entry, dict) and isinstance(entry.get("name"), str):
        return dict(entry)
    raise ValueError(f"each of {what} must be a name or a table with a 'name', got {entry!r}")


def _number_list(data: dict, key: str, positive: bool = True) -> list:
    values = data[key]
    if not isinstance(values, list) or not values:
        raise ValueError(f"{key} must be a non-empty list, got {values!r}")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or (positive and v <= 0):
            raise ValueError(f"{key} must hold finite numbers{' > 0' if positive else ''}, got {v!r}")
    return [float(v) for v in values]


def _seeds(value, key: str) -> list:
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 100_000:
        return list(range(value))
    if isinstance(value, list) and value and all(isinstance(s, int) and not isinstance(s, bool) and s >= 0
                                                 for s in value):
        return list(value)
    raise ValueError(f"{key} must be a count >= 1 (at most 100000) or a list of integers >= 0, got {value!r}")


def _positive_int(data: dict, key: str, default):
    value = data.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{key} must be an integer >= 1, got {value!r}")
    return value


def load_experiment(source, base_dir=None) -> Experiment:
    """An ``Experiment`` from a TOML file or a dict of the same keys; a ``spec`` given as a path is
    read relative to the experiment file."""
    import neuro
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.exists():
            raise FileNotFoundError(f"experiment file {path} does not exist")
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as e:
            raise ValueError(f"{path}: not valid TOML ({e})") from None
        base_dir = path.parent
        data.setdefault("name", path.stem)
    else:
        data = dict(source)
    unknown = set(data) - _KEYS
    if unknown:
        raise ValueError(f"unknown experiment key(s) {sorted(unknown)}; allowed: {sorted(_KEYS)}")
    for key in ("spec", "tasks", "rules", "gains", "lrs", "seeds", "iterations"):
        if key not in data:
            raise ValueError(f"experiment needs '{key}'")
    spec_ref = data["spec"]
    if not isinstance(spec_ref, str):
        raise ValueError(f"spec must be a ready model name or a spec file path, got {spec_ref!r}")
    spec_path = Path(base_dir or ".") / spec_ref
    if str(spec_ref).endswith((".toml", ".json")) or spec_path.exists():
        spec = neuro.load_spec(spec_path)
    else:
        spec = neuro.models.load(spec_ref)
    if spec.neuron.model != "rate":
        raise ValueError(f"sweeps train rate networks as ensembles; spec {spec_ref!r} has neuron model "
                         f"{spec.neuron.model!r}")
    overrides = data.get("overrides", {})
    if not isinstance(overrides, dict):
        raise ValueError(f"overrides must be a table of dotted spec paths, got {overrides!r}")
    spec = spec.replace(**overrides)
    selection = data.get("lr_selection")
    if selection is not None:
        if not isinstance(selection, dict) or set(selection) - _SELECTION_KEYS:
            raise ValueError(f"lr_selection must be a table with keys {sorted(_SELECTION_KEYS)}, got {selection!r}")
        statistic = selection.get("statistic", "area_log10")
        if statistic not in SELECTION_STATISTICS:
            raise ValueError(f"lr_selection.statistic must be one of {SELECTION_STATISTICS}, got {statistic!r}")
        selection = {"iterations": _positive_int(selection, "iterations", data["iterations"]),
                     "seeds": _seeds(selection.get("seeds", [10_000]), "lr_selection.seeds"),
                     "statistic": statistic}
    pretrain = _pretrain(data.get("pretrain"))
    lyapunov = _options(data.get("lyapunov"), "lyapunov", _LYAPUNOV_KEYS,
                        {"k": 4, "batch_size": 8, "steps": None, "seed": 123})
    dtype = data.get("dtype", "float32")
    if dtype not in ("float32", "float64"):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    device = data.get("device", "cpu")
    if not isinstance(device, str) or not re.fullmatch(r"cpu|cuda(:\d+)?", device):
        raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    from neuro.spec import to_dict
    name = data["name"]
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9._-]+", name):
        raise ValueError(f"name must be letters, digits, '.', '_' or '-', got {name!r}")
    exp = Experiment(
        name=name, spec=to_dict(spec),
        tasks=[_named(t, "tasks") for t in _as_list(data["tasks"], "tasks")],
        rules=[_named(r, "rules") for r in _as_list(data["rules"], "rules")],
        gains=_number_list(data, "gains"), lrs=_number_list(data, "lrs"),
        seeds=_seeds(data["seeds"], "seeds"), iterations=_positive_int(data, "iterations", None),
        batch_size=_positive_int(data, "batch_size", 32), chunk_size=_positive_int(data, "chunk_size", None),
        dtype=dtype, device=device, lr_selection=selection,
        final_window=_positive_int(data, "final_window", 20),
        checkpoint_every=_positive_int(data, "checkpoint_every", 100),
        lr_for=_lr_for(data.get("lr_for")), pretrain=pretrain, lyapunov=lyapunov)
    if exp.lr_for is not None and exp.lr_selection is not None:
        raise ValueError("give either lr_selection or lr_for, not both")
    for t in exp.tasks:   # fail now, not in a worker an hour later
        _check_options("task", t, _task_options(t["name"], spec))
        _built(lambda: _build_task(t, spec), "task", t)
    for r in exp.rules:
        _check_options("rule", r, _rule_options(r["name"]))
        _built(lambda: _build_rule(r), "rule", r)
    return exp


def _parameters(factory) -> tuple[list, bool]:
    """The keyword options ``factory`` takes (those with a default) and whether it takes any (``**kw``)."""
    import inspect
    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return [], True
    named = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
             and p.default is not p.empty]
    return named, any(p.kind is p.VAR_KEYWORD for p in params)


def _task_options(name: str, spec) -> list | None:
    """The options task ``name`` accepts (None when they cannot be told): its constructor's, and where
    it passes the rest on to an environment (the NeuroGym adapters), that environment's."""
    import neuro
    if name not in neuro.tasks.REGISTRY:
        return None                                     # neuro.tasks.get names the known tasks
    named, rest = _parameters(neuro.tasks.REGISTRY[name])
    if not rest:
        return named
    task = _built(lambda: _build_task({"name": name}, spec), "task", {"name": name})
    named, rest = _parameters(type(task))
    env = getattr(task, "env", None)
    if rest and env is not None:
        env_named, rest = _parameters(type(env))
        named = named + [k for k in env_named if k not in named]
    return None if rest else named


def _rule_options(name: str) -> list | None:
    import neuro
    if name not in neuro.rules.REGISTRY:
        return None
    named, rest = _parameters(type(neuro.rules.get(name)))
    return None if rest else named


def _check_options(kind: str, cfg: dict, accepted: list | None) -> None:
    """Refuse, in one line, options a task or rule does not take (before anything is built or trained)."""
    unknown = [k for k in cfg if k != "name" and accepted is not None and k not in accepted]
    if unknown:
        raise ValueError(f"{kind} {cfg['name']!r} has no option{'s' if len(unknown) > 1 else ''} "
                         f"{', '.join(map(repr, unknown))}; it accepts {', '.join(accepted) or 'no options'}")


def _built(build, kind: str, cfg: dict):
    """``build()``, with a TypeError from inside it (an option of the wrong type) as a one-line ValueError."""
    try:
        return build()
    except TypeError as e:
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise ValueError(f"{kind} {label(cfg)} cannot be built from its options ({first})") from None


def _options(value, key: str, allowed: set, defaults: dict) -> dict | None:
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) - allowed:
        raise ValueError(f"{key} must be a table with keys {sorted(allowed)}, got {value!r}")
    out = {**defaults, **value}
    for k, v in out.items():
        if v is None:
            continue
        if k == "lr":
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                raise ValueError(f"{key}.lr must be a finite number > 0, got {v!r}")
        elif isinstance(v, bool) or not isinstance(v, int) or v < (0 if k == "seed" else 1):
            raise ValueError(f"{key}.{k} must be an integer >= {0 if k == 'seed' else 1}, got {v!r}")
    return out


def _pretrain(value) -> dict | None:
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != {"floss"}:
        raise ValueError(f"pretrain must be a table with one key 'floss', got {value!r}")
    return {"floss": _options(value["floss"], "pretrain.floss", _FLOSS_KEYS,
                              {"steps": 100, "lr": 1e-3, "k": 16, "batch_size": 8, "seed": 0})}


def _lr_for(value) -> dict | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not value:
        raise ValueError(f"lr_for must be a table of 'RULE|GAIN' = lr, got {value!r}")
    out = {}
    for key, lr in value.items():
        rule, _, gain = str(key).rpartition("|")
        try:
            gain = float(gain)
        except ValueError:
            raise ValueError(f"lr_for keys are 'RULE|GAIN' (e.g. 'eprop(form=detach)|0.2'), got {key!r}") from None
        if not rule or isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
            raise ValueError(f"lr_for[{key!r}] must be a finite lr > 0 under a 'RULE|GAIN' key, got {lr!r}")
        out[f"{rule}|{gain:g}"] = float(lr)
    return out


def _as_list(value, key):
    if not isinstance(value, list) or not value:
        raise ValueError(f"{key} must be a non-empty list, got {value!r}")
    return value


def _build_task(cfg: dict, spec):
    """The task with the spec's time step (and, for Romo, its τ) unless the options say otherwise."""
    import neuro
    options = {k: v for k, v in cfg.items() if k != "name"}
    options.setdefault("dt", spec.dt)
    if cfg["name"] == "romo":
        options.setdefault("tau", spec.neuron.tau)
    return neuro.tasks.get(cfg["name"], **options)


def _build_rule(cfg: dict):
    import neuro
    rule = neuro.rules.get(cfg["name"], **{k: v for k, v in cfg.items() if k != "name"})
    if not hasattr(rule, "loss_and_gradients"):
        raise ValueError(f"sweeps train with gradient rules (bptt, tbptt, eprop, …); {cfg['name']!r} is an "
                         f"online rule")
    return rule


def label(cfg: dict) -> str:
    """``eprop`` or ``eprop(form=trace)``: how a task or rule is named in tables and folders."""
    opts = ",".join(f"{k}={v}" for k, v in sorted(cfg.items()) if k != "name")
    return f"{cfg['name']}({opts})" if opts else cfg["name"]


# -- the plan: chunks of members -------------------------------------------------

@dataclass
class Chunk:
    stage: str                 # "lr_search" or "train"
    task: dict
    rule: dict
    members: list              # [{"gain", "lr", "seed"}]
    iterations: int
    key: str = ""

    def member_id(self, m: dict) -> str:
        prefix = "lrsearch-" if self.stage == "lr_search" else ""
        raw = f"{prefix}{label(self.task)}-{label(self.rule)}-g{m['gain']:g}-lr{m['lr']:g}-s{m['seed']}"
        return re.sub(r"[^A-Za-z0-9._=-]+", "_", raw)


def plan(exp: Experiment, stage: str, lrs_for=None) -> list[Chunk]:
    """Chunks of one stage in a fixed order (task, rule, then gain × lr × seed); ``lrs_for(task, rule, gain)``
    gives the learning rates a gain trains with (all of the grid by default)."""
    seeds = exp.lr_selection["seeds"] if stage == "lr_search" else exp.seeds
    iterations = exp.lr_selection["iterations"] if stage == "lr_search" else exp.iterations
    chunks = []
    for task in exp.tasks:
        for rule in exp.rules:
            members = [{"gain": g, "lr": lr, "seed": s} for g in exp.gains
                       for lr in (lrs_for(task, rule, g) if lrs_for else exp.lrs) for s in seeds]
            size = exp.chunk_size or len(members)
            for i in range(0, len(members), size):
                c = Chunk(stage, task, rule, members[i:i + size], iterations)
                identity = {"spec": exp.spec, "task": task, "rule": rule, "members": c.members,
                            "iterations": iterations, "batch_size": exp.batch_size, "dtype": exp.dtype,
                            "device": exp.device, "stage": stage}
                if exp.pretrain or exp.lyapunov:     # keys of older sweeps stay as they were
                    identity.update(pretrain=exp.pretrain, lyapunov=exp.lyapunov)
                c.key = _hash(identity)[:16]
                chunks.append(c)
    return chunks


# -- one chunk (runs in a worker) ----------------------------------------------------

def run_chunk(payload: dict) -> dict:
    """Train one chunk as an ensemble; return each member's weights and history.  Runs in any
    worker: everything it needs is in ``payload`` (plain data)."""
    import torch

    import neuro
    from neuro.ensemble import train_ensemble
    from neuro.spec import from_dict
    previous = torch.get_num_threads()
    if payload.get("threads"):
        torch.set_num_threads(payload["threads"])
    try:
        spec = from_dict(payload["spec"])
        task = _build_task(payload["task"], spec)
        spec = spec.replace(n_inputs=task.n_inputs, n_outputs=task.n_outputs)
        members = [{"seed": m["seed"], "lr": m["lr"], "overrides": {"recurrent.gain": m["gain"]}}
                   for m in payload["members"]]
        dtype = getattr(torch, payload["dtype"])
        members, exponents = _prepare_members(spec, task, members, payload, dtype)
        res = train_ensemble(spec, task, _build_rule(payload["rule"]), members, iterations=payload["iterations"],
                             batch_size=payload["batch_size"], device=payload["device"],
                             dtype=getattr(torch, payload["dtype"]), progress=payload.get("progress", False),
                             desc=payload.get("desc", "ensemble"), run_dir=payload["chunk_dir"],
                             checkpoint_every=payload["checkpoint_every"])
        if payload.get("lyapunov"):
            exponents["trained"] = max_exponents(res.ensemble.net, task, payload["lyapunov"])
        out = []
        for e, m in enumerate(payload["members"]):
            state = {k: v.detach().cpu() for k, v in res.network(e).state_dict().items()}
            out.append({"member": m, "spec": neuro.spec.to_dict(res.ensemble.member_specs[e]), "model": state,
                        "history": res.histories[e].state(), "diverged": res.diverged[e],
                        "lyapunov": {k: float(v[e]) for k, v in exponents.items()}})
        return {"key": payload["key"], "members": out}
    finally:
        torch.set_num_threads(previous)


def _prepare_members(spec, task, members: list, payload: dict, dtype) -> tuple[list, dict]:
    """Measure the members' max Lyapunov exponents at initialization and, with a ``pretrain`` table,
    floss them first (Engelken 2023; local, as under e-prop's constraint): members then start from
    the flossed weights.  Returns the members and ``{"init": [...], "pretrained": [...]}``."""
    import neuro
    from neuro.ensemble import Ensemble
    lyap, pretrain = payload.get("lyapunov"), payload.get("pretrain")
    if not lyap and not pretrain:
        return members, {}
    ens = Ensemble(spec, members, dtype=dtype, device=payload["device"])
    exponents = {"init": max_exponents(ens.net, task, lyap)} if lyap else {}
    if pretrain:
        f = pretrain["floss"]
        neuro.floss(ens.net, steps=f["steps"], k=f["k"], local=True, lr=f["lr"], inputs=task,
                    batch_size=f["batch_size"], seed=f["seed"], progress=False)
        members = [{**m, "weights": ens.weights(e)} for e, m in enumerate(members)]
        if lyap:
            exponents["pretrained"] = max_exponents(ens.net, task, lyap)
    return members, exponents


def max_exponents(net, task, options: dict):
    """Max Lyapunov exponent per step of every member, along trajectories driven by one batch of the
    task's trials (the same batch for every member)."""
    import neuro
    inputs = task.batch(options["batch_size"], seed=options["seed"], dtype=net.W_rec.dtype).inputs
    inputs = inputs.to(net.W_rec.device)[:options["steps"]] if options["steps"] else inputs.to(net.W_rec.device)
    res = neuro.lyapunov_spectrum(net, inputs=inputs, k=options["k"], warmup=0, progress=False)
    return np.atleast_1d(np.asarray(res.max_exponent, dtype=float))


# -- tables -----------------------------------------------------------------------

def _have_pyarrow() -> bool:
    try:
        import pyarrow.parquet  # noqa: F401
        return True
    except ImportError:
        return False


def write_table(stem: Path, rows: list[dict], columns=COLUMNS, float32=(), compression: str | None = None) -> Path:
    """``stem.parquet`` if pyarrow is installed (the ``float32`` columns stored in single precision), else
    ``stem.csv`` (floats written exactly); atomic.  The one place that writes parquet."""
    data = {c: [r[c] for r in rows] for c in columns}
    if _have_pyarrow():
        import pyarrow as pa
        import pyarrow.parquet as pq
        table = pa.table(data)
        if float32:
            table = table.cast(pa.schema([(c, pa.float32() if c in float32 else table.schema.field(c).type)
                                          for c in columns]))
        buf = io.BytesIO()
        pq.write_table(table, buf, **({"compression": compression} if compression else {}))
        path = stem.with_suffix(".parquet")
        atomic_write_bytes(path, buf.getvalue())
        return path
    path = stem.with_suffix(".csv")
    atomic_write_text(path, _csv(rows, columns))
    return path


def read_table(path) -> list[dict]:
    """Rows of a table written by ``write_table`` (or the final metrics table of a run folder)."""
    path = Path(path)
    if path.is_dir():
        path = next((p for p in (path / "metrics.parquet", path / "metrics.csv") if p.exists()), path / "metrics")
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq
        return pq.read_table(path).to_pylist()
    types = {"gain": float, "lr": float, "seed": int, "iteration": int, "loss": float, "accuracy": float}   # others: str
    with open(path, newline="") as fh:
        return [{k: types.get(k, str)(v) for k, v in r.items()} for r in csv.DictReader(fh)]


def _csv(rows: list[dict], columns) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def _rows(chunk: Chunk, result: dict) -> list[dict]:
    rows = []
    for r in result["members"]:
        m, h = r["member"], r["history"]
        rows.extend({"stage": chunk.stage, "task": label(chunk.task), "rule": label(chunk.rule), "gain": m["gain"],
                     "lr": m["lr"], "seed": m["seed"], "iteration": it, "loss": loss, "accuracy": acc}
                    for it, loss, acc in zip(h["iteration"], h["loss"], h["accuracy"]))
    return rows


# -- the run folder ------------------------------------------------------------------

def _chunk_dir(run: Path, chunk: Chunk) -> Path:
    return run / "chunks" / chunk.key


def _chunk_table(run: Path, chunk: Chunk) -> Path | None:
    """The finished chunk's metrics table, or None when the chunk must be (re)computed: not finished,
    or one of the outputs it promises (its table, a member's checkpoint or history) is missing."""
    d = _chunk_dir(run, chunk)
    if not (d / "done.json").exists():
        return None
    table = next((p for p in (d / "metrics.parquet", d / "metrics.csv") if p.exists()), None)
    members = [run / "members" / chunk.member_id(m) for m in chunk.members]
    if table is None or not all((f / "checkpoint.pt").exists() and (f / "history.csv").exists() for f in members):
        (d / "done.json").unlink()
        return None
    return table


def _commit(run: Path, chunk: Chunk, result: dict) -> None:
    """Write a finished chunk: member folders, its table, then ``done.json`` — last, so a chunk is
    either complete on disk or recomputed."""
    import neuro
    from neuro.spec import from_dict
    from neuro.training import History
    for r in result["members"]:
        folder = run / "members" / chunk.member_id(r["member"])
        atomic_write_text(folder / "spec.toml", neuro.spec.dumps(from_dict(r["spec"])))
        history = History(**r["history"])
        atomic_torch_save({"model": r["model"], "history": r["history"], "iteration": chunk.iterations,
                           "member": r["member"], "diverged": r["diverged"]}, folder / "checkpoint.pt")
        atomic_write_text(folder / "history.csv", _csv([dict(zip(("iteration", "loss", "accuracy"), row))
                                                        for row in zip(history.iteration, history.loss,
                                                                       history.accuracy)],
                                                       ("iteration", "loss", "accuracy")))
    d = _chunk_dir(run, chunk)
    write_table(d / "metrics", _rows(chunk, result))
    atomic_write_text(d / "done.json", json.dumps({
        "stage": chunk.stage, "members": chunk.members, "member_ids": [chunk.member_id(m) for m in chunk.members],
        "runs": [{**r["member"], "task": label(chunk.task), "rule": label(chunk.rule), "diverged": r["diverged"],
                  "lyapunov": r.get("lyapunov", {})} for r in result["members"]]}))
    (d / CHECKPOINT).unlink(missing_ok=True)       # the chunk is done; its training state is no longer needed


def _remove_stale_temporaries(run: Path) -> None:
    """Temporary files of writes a kill interrupted (the finished files are never partial), and the
    training state of chunks that finished just before a kill could delete it."""
    for tmp in run.rglob(".*.tmp"):
        tmp.unlink(missing_ok=True)
    for done in run.glob("chunks/*/done.json"):
        (done.parent / CHECKPOINT).unlink(missing_ok=True)


def _execute(run: Path, exp: Experiment, chunks: list[Chunk], executor, threads, bar) -> None:
    pending = [c for c in chunks if _chunk_table(run, c) is None]
    bar.update(sum(len(c.members) for c in chunks) - sum(len(c.members) for c in pending))
    inline = getattr(executor, "name", "") == "inline"
    payloads = [{"key": c.key, "spec": exp.spec, "task": c.task, "rule": c.rule, "members": c.members,
                 "iterations": c.iterations, "batch_size": exp.batch_size, "dtype": exp.dtype, "device": exp.device,
                 "chunk_dir": str(_chunk_dir(run, c)), "checkpoint_every": exp.checkpoint_every,
                 "threads": threads, "progress": inline and not bar.disable,
                 "pretrain": exp.pretrain, "lyapunov": exp.lyapunov,
                 "desc": f"{c.stage} {label(c.task)} {label(c.rule)}"} for c in pending]
    for i, result in executor.imap(run_chunk, payloads):
        _commit(run, pending[i], result)
        bar.update(len(pending[i].members))


def _final_losses(rows: list[dict], iterations: int, window: int) -> dict:
    """Final loss per member (mean of its last ``window`` iterations; inf if it diverged)."""
    by_member: dict = {}
    for r in rows:
        by_member.setdefault((r["stage"], r["task"], r["rule"], r["gain"], r["lr"], r["seed"]), []).append(r)
    out = {}
    for key, rs in by_member.items():
        losses = [r["loss"] for r in rs]
        out[key] = (float(np.mean(losses[-window:])) if len(rs) == iterations and np.all(np.isfinite(losses))
                    else math.inf, float(np.nanmean([r["accuracy"] for r in rs[-window:]])))
    return out


def _areas(rows: list[dict], iterations: int) -> dict:
    """Area under the log10-loss curve per member (``neuro.curves.area_log10``; inf if it diverged)."""
    from neuro import curves
    by_member: dict = {}
    for r in rows:
        by_member.setdefault((r["stage"], r["task"], r["rule"], r["gain"], r["lr"], r["seed"]), []).append(r)
    return {key: (curves.area_log10([r["loss"] for r in rs], 0, iterations),) for key, rs in by_member.items()}


def select_lrs(exp: Experiment, rows: list[dict]) -> dict:
    """``{(task label, rule label, gain): lr}``: the lr of the grid with the best mean selection statistic
    over the selection seeds (the first one on ties): the area under the log10-loss curve (learns early
    and well; default) or the final loss."""
    stage_rows = [r for r in rows if r["stage"] == "lr_search"]
    if exp.lr_selection.get("statistic", "final_loss") == "area_log10":
        finals = _areas(stage_rows, exp.lr_selection["iterations"])
    else:
        finals = _final_losses(stage_rows, exp.lr_selection["iterations"], exp.final_window)
    chosen = {}
    for task in exp.tasks:
        for rule in exp.rules:
            for g in exp.gains:
                scores = [np.mean([finals[("lr_search", label(task), label(rule), g, lr, s)][0]
                                   for s in exp.lr_selection["seeds"]]) for lr in exp.lrs]
                chosen[(label(task), label(rule), g)] = exp.lrs[int(np.argmin(scores))]
    return chosen


def _summary(exp: Experiment, rows: list[dict], chosen: dict) -> list[dict]:
    finals = {}
    for stage in ("lr_search", "train") if exp.lr_selection else ("train",):
        its = exp.lr_selection["iterations"] if stage == "lr_search" else exp.iterations
        finals.update(_final_losses([r for r in rows if r["stage"] == stage], its, exp.final_window))
    groups: dict = {}
    for (stage, task, rule, gain, lr, seed), value in finals.items():
        groups.setdefault((stage, task, rule, gain, lr), []).append(value)
    out = []
    for (stage, task, rule, gain, lr), values in groups.items():
        loss = np.array([v[0] for v in values])
        ok = loss[np.isfinite(loss)]
        out.append({"stage": stage, "task": task, "rule": rule, "gain": gain, "lr": lr, "seeds": len(values),
                    "diverged": int((~np.isfinite(loss)).sum()),
                    "final_loss_mean": float(ok.mean()) if len(ok) else math.inf,
                    "final_loss_std": float(ok.std()) if len(ok) else math.nan,
                    "final_accuracy_mean": float(np.nanmean([v[1] for v in values])),
                    "selected": chosen.get((task, rule, gain)) == lr if stage == "lr_search" else ""})
    return out


def _figures(run: Path, exp: Experiment, rows: list[dict]) -> None:
    from neuro import plots
    train = [r for r in rows if r["stage"] == "train"]
    for task in exp.tasks:
        panels = {}
        for rule in exp.rules:
            curves: dict = {}
            for r in train:
                if r["task"] == label(task) and r["rule"] == label(rule):
                    curves.setdefault((r["gain"], r["lr"]), {}).setdefault(r["seed"], []).append(r["loss"])
            many_lrs = len({lr for _, lr in curves}) > len({g for g, _ in curves})
            panels[label(rule)] = {(f"g = {g:g}, lr = {lr:g}" if many_lrs else f"g = {g:g}"): list(c.values())
                                   for (g, lr), c in curves.items()}
        final = run / "figures" / f"learning_curves_{re.sub(r'[^A-Za-z0-9._=-]+', '_', label(task))}.png"
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.with_name(f".{final.stem}.tmp.png")     # render aside, then rename: never half-written
        plots.learning_curves(panels, tmp, title=f"{label(task)}: loss during training (mean ± std over seeds)")
        os.replace(tmp.with_suffix(".csv"), final.with_suffix(".csv"))     # the figure's data
        os.replace(tmp, final)


def run_sweep(experiment, out="runs", executor=None, progress: bool = True, workers: int | None = None) -> Path:
    """Run (or resume) an experiment; return its run folder.  ``experiment``: a TOML path, a dict or an
    ``Experiment``; ``executor``: from ``neuro.executors`` (default: a local process pool)."""
    from neuro.executors import cpu_count, make_executor
    exp = experiment if isinstance(experiment, Experiment) else load_experiment(experiment)
    run = Path(out) / f"{exp.name}-{exp.key()[:12]}"
    run.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(run)
    atomic_write_text(run / "config.json", json.dumps({"key": exp.key(), **exp.config()}, indent=2))
    if exp.lr_selection:
        first = plan(exp, "lr_search")
    elif exp.lr_for:
        first = plan(exp, "train", lambda t, r, g: [_fixed_lr(exp, r, g)])
    else:
        first = plan(exp, "train")
    if executor is None:
        if workers is None:   # one worker per chunk up to a worker per core; one process owns a GPU
            workers = 1 if exp.device.startswith("cuda") else min(cpu_count(), len(first))
        executor = make_executor(None, workers)
    # a fixed thread count per chunk, set by the config and the machine: a rerun computes the same numbers
    threads = getattr(executor, "threads", None) or (cpu_count() if executor.name == "inline" else 1)
    n_members = sum(len(c.members) for c in first)
    if exp.lr_selection:
        n_members += len(exp.tasks) * len(exp.rules) * len(exp.gains) * len(exp.seeds)
    chosen = {}
    with executor, tqdm(total=n_members, desc=f"sweep {exp.name}", unit="net", disable=not progress,
                        dynamic_ncols=True, mininterval=1.0) as bar:
        _execute(run, exp, first, executor, threads, bar)
        chunks = first
        if exp.lr_selection:
            chosen = select_lrs(exp, _gather(run, first))
            second = plan(exp, "train", lambda t, r, g: [chosen[(label(t), label(r), g)]])
            _execute(run, exp, second, executor, threads, bar)
            chunks = first + second
    rows = _gather(run, chunks)
    write_table(run / "metrics", rows)
    summary = _summary(exp, rows, chosen)
    atomic_write_text(run / "summary.csv", _csv(summary, list(summary[0])))
    _figures(run, exp, rows)
    return run


def _fixed_lr(exp: Experiment, rule: dict, gain: float) -> float:
    key = f"{label(rule)}|{gain:g}"
    if key not in exp.lr_for:
        raise ValueError(f"lr_for has no learning rate for {key!r}")
    return exp.lr_for[key]


def runs_table(run: Path) -> list[dict]:
    """One record per trained member of a finished sweep: stage, task, rule, gain, lr, seed, whether it
    diverged and its max Lyapunov exponents (``lyapunov_init``, ``_pretrained``, ``_trained``)."""
    out = []
    for done in sorted(Path(run).glob("chunks/*/done.json")):
        info = json.loads(done.read_text())
        for m in info.get("runs", []):
            out.append({"stage": info["stage"], "task": m["task"], "rule": m["rule"], "gain": m["gain"],
                        "lr": m["lr"], "seed": m["seed"], "diverged": m["diverged"],
                        **{f"lyapunov_{k}": v for k, v in m.get("lyapunov", {}).items()}})
    return out


def _gather(run: Path, chunks: list[Chunk]) -> list[dict]:
    rows = []
    for c in chunks:
        path = _chunk_table(run, c)
        if path is None:
            raise RuntimeError(f"chunk {c.key} ({c.stage} {label(c.task)} {label(c.rule)}) did not finish")
        rows.extend(read_table(path))
    return rows


# -- command line -------------------------------------------------------------------

def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("experiment", help="experiment TOML file (see experiments/initialization_grid.toml)")
    p.add_argument("--out", default="runs", help="folder that holds run folders (default: runs)")
    p.add_argument("--workers", type=int, default=None,
                   help="local worker processes (default: one per core; 0 = run in this process)")
    p.add_argument("--cluster", default=None,
                   help="run the chunks on a Dask cluster: tcp://HOST:PORT (its scheduler)")
    p.add_argument("--device", default=None, help="override the experiment's device (cpu, cuda, cuda:N)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args) -> int:
    from neuro.executors import make_executor
    exp = load_experiment(args.experiment)
    if args.device:
        exp = load_experiment({**_raw(args.experiment), "device": args.device}, Path(args.experiment).parent)
    if args.workers is not None and args.workers < 0:
        raise ValueError(f"--workers must be >= 0, got {args.workers}")
    executor = make_executor(args.cluster, args.workers) if (args.cluster or args.workers is not None) else None
    folder = run_sweep(exp, args.out, executor=executor, progress=not args.no_progress)
    print(f"results in {folder}/ (metrics table, summary.csv, figures/, members/)")
    return 0


def _raw(path) -> dict:
    data = tomllib.loads(Path(path).read_text())
    data.setdefault("name", Path(path).stem)
    return data

"""What a run folder knows: its spec, task, rule, backend and dt, read back for analysis.

``neuro train`` (and ``neuro compare``, once per variant) writes ``spec.toml``,
``args.json`` (the command's arguments: task, rule, backend, seed …), ``checkpoint.pt``
and ``history.csv``.  ``load_run(path)`` returns all of it as a :class:`Run`; the
``lyapunov``, ``export`` and ``plot`` commands take their defaults from it, so that a
network is analysed with the task, time step and backend it was trained with.

    run = neuro.load_run("runs/train-2af-eprop-g1.0-s0")
    run.net            # the trained network (compiled for run.backend)
    run.spec, run.task, run.history, run.rule, run.config
"""
from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import neuro


@dataclass
class Run:
    """A run folder read back (see the module docstring)."""

    folder: Path
    spec: "neuro.NetworkSpec"
    backend: str
    task_name: str | None
    rule: str | None
    config: dict = field(default_factory=dict)
    history: "neuro.History | None" = None
    net: object = None
    task: object = None

    @property
    def dt(self) -> float:
        return float(self.spec.dt)


def default_backend(spec) -> str:
    """The backend a spec's neuron model runs on: ``lif`` for LIF neurons, else ``rate``."""
    return "lif" if spec.neuron.model == "lif" else "rate"


def read_config(folder) -> dict:
    """``args.json`` of a run folder ({} if absent); the backend is filled in from the spec if missing."""
    folder = Path(folder)
    args = folder / "args.json"
    config = {}
    if args.exists():
        try:
            config = json.loads(args.read_text())
        except ValueError as e:
            raise ValueError(f"{args} is not valid JSON ({e})") from None
        if not isinstance(config, dict):
            raise ValueError(f"{args} must hold a JSON object, got {type(config).__name__}")
    return config


def read_history(path) -> "neuro.History | None":
    """``history.csv`` as a ``neuro.History`` (None if the file is absent)."""
    path = Path(path)
    if not path.exists():
        return None
    h = neuro.History()
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            acc = row.get("accuracy", "")
            h.append(int(row["iteration"]), float(row["loss"]), float(acc) if acc not in ("", None) else math.nan)
    return h


def is_run_folder(path) -> bool:
    return Path(path).is_dir() and (Path(path) / "spec.toml").exists()


def check_network_arg(value) -> Path:
    """Refuse, in one line, a NETWORK argument that names nothing (before anything is loaded)."""
    path = Path(str(value))
    if path.is_dir():
        if not (path / "spec.toml").exists():
            raise FileNotFoundError(f"{path} is not a run folder (no spec.toml)")
        return path
    if path.exists():
        return path
    looks_like_path = path.suffix in (".toml", ".json") or "/" in str(value) or "\\" in str(value)
    if looks_like_path:
        raise FileNotFoundError(f"no such run folder or spec file: {value}")
    if value not in neuro.models.names():
        raise ValueError(f"{value!r} is neither a run folder, a spec file nor a ready model "
                         f"(one of {neuro.models.names()})")
    return path


def load_run(path, backend: str | None = None, task: bool = True, **options) -> Run:
    """The trained network of a run folder with its spec, task, rule, backend and history.

    backend: compile for another backend than the one the run was trained on.
    task: build the run's task for the spec's dt (``run.task``; False leaves it None).
    options: go to the backend (``dtype`` …).
    """
    from neuro.resolve import task_for
    from neuro.runs import load_network
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"no such run folder: {path}")
    if not (folder / "spec.toml").exists():
        raise FileNotFoundError(f"{folder} is not a run folder (no spec.toml)")
    config = read_config(folder)
    spec = neuro.load_spec(folder / "spec.toml")
    backend = backend or config.get("backend") or default_backend(spec)
    net = load_network(folder, backend=backend, **options)
    task_name = config.get("task")
    run = Run(folder=folder, spec=spec, backend=backend, task_name=task_name, rule=config.get("rule"),
              config=config, history=read_history(folder / "history.csv"), net=net)
    if task and task_name:
        task_dt = float(config.get("task_dt", spec.dt))
        if task_dt != spec.dt:     # trained on a coarser task grid, inputs held (neuro compare's LIF variant)
            from neuro.compare import HeldTask
            from neuro.transfer import substeps
            run.task = HeldTask(neuro.tasks.get(task_name, dt=task_dt), substeps(task_dt, spec.dt))
        else:
            run.task = task_for(task_name, spec)
    return run


def resolve(value, backend: str | None = None, **options):
    """``(network, run or None)`` for a NETWORK argument: a run folder, a spec file or a ready model name."""
    from neuro.resolve import load_spec_arg
    path = check_network_arg(value)
    if path.is_dir():
        run = load_run(path, backend=backend, task=False, **options)
        return run.net, run
    spec = load_spec_arg(str(value))
    return neuro.compile(spec, backend or default_backend(spec), **options), None

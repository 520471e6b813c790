"""Specs and tasks from names: what the command line, the run folders and comparisons share."""
from __future__ import annotations

from pathlib import Path

from . import models
from .spec import load_spec


def load_spec_arg(value: str):
    """A spec from a file path, or a ready model's name (``romo_rate``)."""
    path = Path(value)
    if path.suffix in (".toml", ".json") or path.exists():
        return load_spec(path)
    return models.load(value)


def task_for(name: str, spec):
    """The task, built for the spec's time step (Romo also needs τ)."""
    from neuro import tasks
    if name == "romo":
        return tasks.get("romo", dt=spec.dt, tau=spec.neuron.tau if spec.neuron.model == "rate"
                         else spec.neuron.tau_mem)
    return tasks.get(name, dt=spec.dt)


def fit_spec_to_task(spec, task):
    """Input/output sizes come from the task; say so if the spec disagrees."""
    if (spec.n_inputs, spec.n_outputs) != (task.n_inputs, task.n_outputs):
        spec = spec.replace(n_inputs=task.n_inputs, n_outputs=task.n_outputs)
    return spec

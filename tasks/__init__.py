"""Tasks: ``neuro.tasks.get(name, **options)``; each gives ``batch(batch_size, seed)``."""
from __future__ import annotations

from .base import Batch, Task
from .romo import Romo


def _lazy(module_name, factory_name):
    def make(**kw):
        import importlib
        try:
            module = importlib.import_module(f"{__name__}.{module_name}")
        except ModuleNotFoundError as e:
            if e.name and e.name.startswith(__name__):
                raise NotImplementedError(f"task {factory_name!r} is not implemented in this version") from None
            raise
        return getattr(module, factory_name)(**kw)
    return make


def _neurogym(factory_name):
    return _lazy("neurogym_tasks", factory_name)


REGISTRY = {
    "romo": Romo,
    "2af": _neurogym("perceptual_decision_making"),
    "dms": _neurogym("delay_match_sample"),
    "context": _neurogym("context_decision_making"),
    "sum_of_sines": _lazy("force_targets", "SumOfSines"),
    "reaching": _lazy("reaching", "Reaching"),
    "interval": _lazy("timing", "IntervalReproduction"),
    "detection": _lazy("timing", "VibrotactileDetection"),
}


def register(name: str, factory) -> None:
    """Add a task factory under ``name`` (used by later modules and by users)."""
    REGISTRY[name] = factory


def get(name: str, **options) -> Task:
    """A task by name: ``romo``, ``2af``, ``dms``, ``context`` (options go to its constructor)."""
    if name not in REGISTRY:
        raise ValueError(f"task must be one of {sorted(REGISTRY)}, got {name!r}")
    return REGISTRY[name](**options)


def names() -> list[str]:
    return sorted(REGISTRY)


__all__ = ["Batch", "Task", "Romo", "get", "register", "names"]

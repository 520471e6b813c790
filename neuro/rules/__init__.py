"""Learning rules by name: ``neuro.rules.get("eprop")``.

Gradient rules return ``{parameter name: gradient}`` from ``rule.gradients(net, batch, task)``;
online rules implement ``rule.fit(net, task, …)``.
"""
from __future__ import annotations

import importlib

from .base import GradientRule
from .bptt import BPTT, TruncatedBPTT
from .eprop import EProp

# name -> "module:attribute" (lazy, so later rules can live in their own modules) or a class
REGISTRY: dict = {
    "bptt": BPTT,
    "tbptt": TruncatedBPTT,
    "eprop": EProp,
    "rflo": EProp,   # equivalent to e-prop for the leaky rate RNN (Liu, Zhang & Liu, 2024)
    "modprop": "neuro.rules.modprop:ModProp",
    "np": "neuro.rules.node_perturbation:NodePerturbation",
    "es": "neuro.rules.evolution:EvolutionStrategies",
    "force": "neuro.rules.force:FORCE",
    "full_force": "neuro.rules.force:FullFORCE",
    "reservoir": "neuro.rules.innate:Reservoir",
    "innate": "neuro.rules.innate:Innate",
    "reward_hebbian": "neuro.rules.reward_hebbian:RewardHebbian",
    "reinforce": "neuro.rules.reinforce:Reinforce",
}


def register(name: str, factory) -> None:
    REGISTRY[name] = factory


def get(name: str, **options):
    """A rule by name with its options, e.g. ``get("tbptt", k=20)``, ``get("eprop", form="trace")``."""
    if name not in REGISTRY:
        raise ValueError(f"rule must be one of {sorted(REGISTRY)}, got {name!r}")
    factory = REGISTRY[name]
    if isinstance(factory, str):
        module, attr = factory.split(":")
        try:
            factory = getattr(importlib.import_module(module), attr)
        except (ModuleNotFoundError, AttributeError):
            raise NotImplementedError(f"rule {name!r} is not implemented in this version of neuro") from None
    return factory(**options)


def names() -> list[str]:
    return sorted(REGISTRY)


def resolve(rule):
    """A rule given by name (``"eprop"``) or as an object, as an object; anything else is refused."""
    if isinstance(rule, str):
        return get(rule)
    if not (hasattr(rule, "loss_and_gradients") or hasattr(rule, "fit")):
        raise ValueError(f"a learning rule is a registered name {names()} or an object with "
                         f"loss_and_gradients or fit, got {type(rule).__name__}")
    return rule


__all__ = ["GradientRule", "BPTT", "TruncatedBPTT", "EProp", "get", "register", "names", "resolve"]

"""Ready network specs for the papers' setups: ``neuro.models.load("romo_rate")``."""
from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).parent


def names() -> list[str]:
    return sorted(p.stem for p in _HERE.glob("*.toml"))


def path(name: str) -> Path:
    p = _HERE / f"{name}.toml"
    if not p.exists():
        raise ValueError(f"model must be one of {names()}, got {name!r}")
    return p


def load(name: str):
    """Load a ready spec by name (see ``names()``)."""
    from neuro.spec import load_spec
    return load_spec(path(name))

"""One-line checks of options: ``check(ok, name, allowed, value)`` raises ``ValueError``."""
from __future__ import annotations


def check(ok: bool, name: str, allowed: str, value) -> None:
    """``ValueError("<name> must be <allowed>, got <value>")`` unless ``ok``."""
    if not ok:
        raise ValueError(f"{name} must be {allowed}, got {value!r}")

"""Surrogate derivatives of the spike (snnTorch's scalings), for traces and Jacobians.

The spike function with these backward passes lives in the backend that owns the spiking
library (``backends/lif.py``); the closed forms here serve e-prop's traces and Lyapunov analysis.
"""
from __future__ import annotations

import torch

NAMES = ("fast_sigmoid", "atan")


def surrogate_derivative(name: str, slope: float, x: torch.Tensor) -> torch.Tensor:
    """dS/dv at ``x = v - v_th``: fast sigmoid ``1/(slope|x| + 1)²`` (Zenke & Ganguli 2018) or
    arctan ``(slope/2) / (1 + (π/2 · slope · x)²)``."""
    if name == "fast_sigmoid":
        return 1.0 / (slope * x.abs() + 1.0) ** 2
    if name == "atan":
        return (slope / 2) / (1 + (torch.pi / 2 * slope * x) ** 2)
    raise ValueError(f"surrogate must be one of {NAMES}, got {name!r}")

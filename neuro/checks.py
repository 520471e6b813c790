"""One-line checks: of options (``check(ok, name, allowed, value)``) and of a network's inputs
(``check_inputs``); each raises ``ValueError``."""
from __future__ import annotations

import math

import torch


def check(ok: bool, name: str, allowed: str, value) -> None:
    """``ValueError("<name> must be <allowed>, got <value>")`` unless ``ok``."""
    if not ok:
        raise ValueError(f"{name} must be {allowed}, got {value!r}")


def check_inputs(inputs, n_in: int, lead: tuple = (), what: str = "inputs") -> None:
    """Refuse, in one line, inputs that do not fit a network with ``n_in`` inputs: ``[T, B, n_in]``, for
    an ensemble of members ``lead`` ``[T, *lead, B, n_in]``.  Checked before any product, so a wrong width
    is never a matmul error from inside torch (or an out-of-bounds read in a compiled kernel), and an
    ensemble's inputs without their member axis never pair time steps with members."""
    shape = tuple(getattr(inputs, "shape", ()))
    form = f"[T, {', '.join(map(str, lead))}, B, {n_in}] (one batch per member)" if lead else f"[T, B, {n_in}]"
    if not torch.is_tensor(inputs) or inputs.dim() < 3:
        raise ValueError(f"{what} must be a tensor {form}, got "
                         f"{f'shape {shape}' if torch.is_tensor(inputs) else type(inputs).__name__}")
    if shape[-1] != n_in:
        raise ValueError(f"{what} have width {shape[-1]} but the network has n_inputs = {n_in} "
                         f"({what} must be {form}, got shape {shape})")
    if lead and math.prod(lead) > 1:
        x_lead = shape[1:-2]
        try:
            fits = len(x_lead) >= len(lead) and torch.broadcast_shapes(x_lead, lead)[-len(lead):] == lead
        except RuntimeError:
            fits = False
        if not fits:
            raise ValueError(f"{what} of shape {shape} do not fit an ensemble of {math.prod(lead)} "
                             f"members ({what} must be {form})")

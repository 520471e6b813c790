"""Rate nonlinearities by name (torch); ``retanh`` is ``max(0, tanh(x))``."""
from __future__ import annotations

import torch


def _retanh(x: torch.Tensor) -> torch.Tensor:
    return torch.relu(torch.tanh(x))


ACTIVATION_FUNCTIONS = {
    "relu": torch.relu,
    "retanh": _retanh,
    "tanh": torch.tanh,
    "linear": lambda x: x,
    "softplus": torch.nn.functional.softplus,
}


def activation(name: str):
    try:
        return ACTIVATION_FUNCTIONS[name]
    except KeyError:
        raise ValueError(f"activation must be one of {sorted(ACTIVATION_FUNCTIONS)}, got {name!r}") from None

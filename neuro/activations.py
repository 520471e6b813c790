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


def _sech2(x):
    return 1.0 - torch.tanh(x) ** 2


# f'(x) in closed form, for hand-written backward passes and Jacobians
ACTIVATION_DERIVATIVES = {
    "relu": lambda x: (x > 0).to(x.dtype),
    "retanh": lambda x: (x > 0).to(x.dtype) * _sech2(x),
    "tanh": _sech2,
    "linear": torch.ones_like,
    "softplus": torch.sigmoid,
}


def derivative(name: str):
    return ACTIVATION_DERIVATIVES[name]

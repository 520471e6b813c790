"""The one trajectory type every backend returns: time-major tensors ``[T, B, N]``."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class Trajectory:
    """What a network did over one batch of inputs.

    ``states[t]`` is the hidden state after consuming ``inputs[t]`` (rate: ``h``;
    LIF: membrane voltage), ``rates[t]`` the unit activity that the readout sees
    (rate: ``f(h)``; LIF: filtered spikes), ``outputs[t] = W_out rates[t] + b_out``.
    """

    states: torch.Tensor
    rates: torch.Tensor
    outputs: torch.Tensor
    spikes: torch.Tensor | None = None
    extra: dict = field(default_factory=dict)   # backend-specific traces (currents, …)

    def detach(self) -> "Trajectory":
        d = lambda x: None if x is None else x.detach()
        return Trajectory(d(self.states), d(self.rates), d(self.outputs), d(self.spikes),
                          {k: d(v) for k, v in self.extra.items()})

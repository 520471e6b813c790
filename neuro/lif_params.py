"""The one place where LIF time constants become per-step decay constants.

Every spiking backend (snnTorch, Lava, Brian2, NIR) uses one discretization,
chosen so that Lava's floating-point LIF matches it exactly (Lava's
``lava/proc/lif/models.py``):

    a[t] = W_in x[t] + W_rec s[t-1] (+ W_slow s[t-1] into the slow current)
    u[t] = (1 - du) u[t-1] + a[t]                 synaptic current
    v[t] = (1 - dv) v[t-1] + u[t] + bias          membrane
    s[t] = v[t] > v_th   (strict)                 spike, then reset v (to 0, or by -v_th)

Decays are exact exponentials of the continuous time constants:
``1 - du = exp(-dt/τ_syn)``, ``1 - dv = exp(-dt/τ_mem)``.  In snnTorch's
``Synaptic`` neuron this is ``alpha = 1 - du`` and ``beta = 1 - dv``.

``LIFState`` and ``lif_step`` are this map as a typed state and a pure step function with
``dt`` explicit; the LIF backend runs on them and rules read state through them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch


@dataclass(frozen=True)
class LIFConstants:
    du: float            # synaptic (fast) current decay per step
    dv: float            # membrane decay per step
    du_slow: float       # slow synaptic current decay per step (0 when there is none)
    d_readout: float     # decay of the readout's exponential spike filter per step
    refractory_steps: int

    @property
    def alpha(self) -> float:
        """snnTorch's synaptic decay ``alpha = 1 - du``."""
        return 1.0 - self.du

    @property
    def beta(self) -> float:
        """snnTorch's membrane decay ``beta = 1 - dv``."""
        return 1.0 - self.dv


def decay(tau: float, dt: float) -> float:
    """Per-step decay fraction ``d = 1 - exp(-dt/τ)`` (0 for τ = 0: no such variable)."""
    return 0.0 if tau == 0 else 1.0 - math.exp(-dt / tau)


def lif_constants(neuron, dt: float) -> LIFConstants:
    """Decay constants of a spec's ``NeuronSpec`` (model ``lif``) at step ``dt`` (ms)."""
    return LIFConstants(du=decay(neuron.tau_syn, dt), dv=decay(neuron.tau_mem, dt),
                        du_slow=decay(neuron.tau_syn_slow, dt),
                        # tau_readout = 0: the readout reads the spikes themselves (r = s)
                        d_readout=1.0 if neuron.tau_readout == 0 else decay(neuron.tau_readout, dt),
                        refractory_steps=int(round(neuron.refractory / dt)))


class LIFState(NamedTuple):
    """The state of a current-based LIF population (Norse's ``LIFState`` in spirit), ``[..., B, N]``
    each: the synaptic current ``u``, the membrane ``v`` after the reset, the spikes ``s``, the
    readout's spike filter ``r``, the refractory steps left ``ref``, the slow current ``us`` (None
    without one) and the membrane before the reset ``v_pre`` (what trajectories record)."""

    u: torch.Tensor
    v: torch.Tensor
    s: torch.Tensor
    r: torch.Tensor
    ref: torch.Tensor
    us: torch.Tensor | None
    v_pre: torch.Tensor

    @classmethod
    def zeros(cls, shape, slow: bool, dtype=torch.float32, device="cpu") -> "LIFState":
        z = torch.zeros(shape, dtype=dtype, device=device)
        return cls(u=z, v=z, s=z, r=z, ref=z, us=z if slow else None, v_pre=z)

    def detach(self) -> "LIFState":
        return LIFState(*(None if x is None else x.detach() for x in self))


def heaviside(x: torch.Tensor) -> torch.Tensor:
    """The spike without a surrogate: ``x > 0`` in ``x``'s dtype."""
    return (x > 0).to(x.dtype)


def lif_step(state: LIFState, current: torch.Tensor, bias: torch.Tensor, neuron, dt: float,
             slow_current: torch.Tensor | None = None, spike_fn=heaviside) -> LIFState:
    """One step of the LIF map above, a pure function of its arguments.

    ``current`` is ``a[t]`` (input, recurrent spikes and any injected current), ``slow_current``
    the slow synapses' ``W_slow s[t-1]``, ``neuron`` the ``lif`` NeuronSpec (τ's in ms, ``v_th``,
    ``reset``, ``refractory``), ``dt`` the step (ms), ``spike_fn(v - v_th)`` the spike (a surrogate
    gradient function for training).  Refractory neurons are held at 0 and cannot spike; the reset
    uses the detached spike.
    """
    c = lif_constants(neuron, dt)
    u = (1 - c.du) * state.u + current
    v = (1 - c.dv) * state.v + u + bias
    us = None
    if state.us is not None:
        us = (1 - c.du_slow) * state.us + slow_current
        v = v + us
    free = None
    if c.refractory_steps > 0:
        free = (state.ref <= 0).to(v.dtype)
        v = v * free
    s = spike_fn(v - neuron.v_th)
    if free is not None:
        s = s * free
    sd = s.detach()
    v_post = v * (1 - sd) if neuron.reset == "zero" else v - neuron.v_th * sd
    r = (1 - c.d_readout) * state.r + s
    ref = torch.where(sd > 0, torch.full_like(v, c.refractory_steps), state.ref - 1) \
        if c.refractory_steps > 0 else state.ref
    return LIFState(u=u, v=v_post, s=s, r=r, ref=ref, us=us, v_pre=v)

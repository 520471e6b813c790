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
"""
from __future__ import annotations

import math
from dataclasses import dataclass


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

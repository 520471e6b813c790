"""Rate → spiking transfer (Kim, Li & Sejnowski 2019).

Kim R., Li Y., Sejnowski T. J. (2019) "Simple framework for constructing functional
spiking recurrent neural networks", PNAS 116(45):22811-22820: train a rate RNN, copy
its weights into a LIF network whose synaptic filter has the rate network's time
constant, scale the recurrent and readout weights down by one constant λ
(``W_spk = W_rate/λ``, ``w_out_spk = w_out/λ``) and pick λ by a grid search on task
performance (the paper searches λ in 20-75).

What is assumed, in this project's units (``backends/lif.py``'s discrete LIF, step
``lif_dt`` ms; ``d_x = 1 - exp(-lif_dt/τ_x)``):

* λ is "Hz per unit rate": a rate unit at ``r = f(h) >= 0`` becomes a LIF neuron firing
  at ``λ r`` Hz (spike probability ``λ r · lif_dt/1000`` per step).  With the paper's grid
  λ = 20-75 a ReLU unit at r = 1 fires 20-75 Hz; larger λ means more spikes per τ and
  less spike noise, until the one-spike-per-step ceiling (1000 Hz at 1 ms) saturates the
  most active units.  Only non-negative rates can be carried by spikes: ``relu`` is the
  exact target, ``retanh`` (saturation at 1 not reproduced) and ``softplus`` (its tail at
  h < 0 not reproduced) are approximated; ``tanh`` and ``linear`` have negative rates and
  raise ``ValueError``.
* ``tau_syn = τ_rate`` (the paper: the synaptic decay is the rate time constant), so the
  synaptic current is a τ-low-pass like the rate network's ``h``.  The readout filter
  ``tau_readout`` defaults to the rate network's *dt*, not τ: the rate readout reads
  ``f(h[t])`` without a filter, and a τ filter adds a τ lag across 2AF's 100 ms decision
  window: the outputs track the rate network's less closely (MSE 2.32 vs 1.65 on a 2AF
  network, ``tests/test_compare.py``).  What that costs in accuracy depends on the network:
  nothing on that one (0.835 either way), 0.745 → 0.455-0.60 over λ = 20-75 on another;
  pass ``tau_readout=τ`` for the paper's choice.  As in
  the paper, weights act on filtered spike trains normalized to a rate (Hz), which is
  ``λ r``: recurrent ``W_spk = W_rate/λ`` and readout ``w_out_spk = w_out/λ``.  This
  backend's traces count spikes instead (``s`` enters the current once per spike), so the
  stored matrices carry the filter's normalization ``1000·d/lif_dt ≈ 1000/τ`` (1/s):
  ``W_rec_lif = (W_rec/λ)·1000 d_syn/lif_dt``, ``W_out_lif = (W_out/λ)·1000 d_ro/lif_dt``;
  ``b_out`` is unchanged.
* Inputs are *not* scaled by λ — as in the paper, where the external input is a current
  in both networks.  They get only the unit conversion of the discrete synapse: a held
  input enters the current every step, so ``W_in_lif = W_in·d_syn`` gives the rate
  network's steady current ``W_in x``.  The bias ``b`` is a current, unchanged.
* The neuron turns current into spikes with gain ``λ lif_dt/1000`` per step: with the
  subtraction reset and no leak, ``p = (u + b)/v_th`` exactly, hence
  ``v_th = 1000/(λ lif_dt)``.  The membrane leak (``tau_mem``) costs ``≈ dv·v_th/2`` per
  step, added to the bias (``leak_compensation``) so that the f-I curve is ReLU-like
  through the origin.
* One rate step becomes ``rate dt / lif_dt`` LIF steps (a whole number); inputs are held
  over the substeps (``upsample``), outputs are read at the last substep of each rate
  step (``downsample``: the rate network's ``y[t]`` follows input ``x[t]``), so
  ``task.accuracy`` applies unchanged.  The rate network's Euler step (α = 1 - dt/τ) is
  approximated by the finer LIF grid.  ``tau_mem`` defaults to τ_rate: a 20 ms membrane
  leaks away the charge of neurons firing below ~1/τ_mem (measured under constant drive,
  λ = 50: correlation of LIF and rate activity 0.93 with 20 ms, 0.998 with 100 ms).
* Dale's law is kept (all scale factors are positive, the signs and masks are copied; not
  tested with a Dale network).
"""
from __future__ import annotations

import dataclasses
import math

import torch

from neuro.lif_params import decay
from neuro.spec import NetworkSpec
from neuro.weights import Weights

TRANSFERABLE = ("relu", "retanh", "softplus")   # non-negative rates
DEFAULT_LAMS = tuple(range(20, 80, 5))            # the paper's grid


def _check_lam(lam) -> float:
    if isinstance(lam, bool) or not isinstance(lam, (int, float)) or not math.isfinite(lam) or lam <= 0:
        raise ValueError(f"the scale lambda must be a finite number > 0, got {lam!r}")
    return float(lam)


def substeps(rate_dt: float, lif_dt: float) -> int:
    """LIF steps per rate step; ``ValueError`` unless ``rate_dt / lif_dt`` is a whole number >= 1."""
    if isinstance(lif_dt, bool) or not isinstance(lif_dt, (int, float)) or not math.isfinite(lif_dt) or lif_dt <= 0:
        raise ValueError(f"lif_dt must be a finite number > 0 (ms), got {lif_dt!r}")
    k = rate_dt / lif_dt
    if k < 1 or abs(k - round(k)) > 1e-9:
        raise ValueError(f"rate dt / lif_dt must be a whole number >= 1, got {rate_dt} / {lif_dt} = {k:g}")
    return int(round(k))


def rate_to_lif(rate_spec: NetworkSpec, weights: Weights, lam: float, lif_dt: float = 1.0,
                leak_compensation: bool = True, **lif_fields) -> tuple[NetworkSpec, Weights]:
    """Map a rate network's (spec, effective weights) to a LIF network (spec, weights).

    ``lam``: the scale λ (see the module docstring for the exact factors); ``lif_dt``:
    the LIF step in ms (a divisor of the rate dt); ``lif_fields``: LIF neuron fields to
    override (``tau_mem``, ``reset``, ``refractory``, ``surrogate``, ``surrogate_slope``,
    ``tau_syn``, ``tau_readout``, ``v_th`` — the defaults are the matched ones;
    overriding ``v_th`` breaks the match).  Returns ``(lif_spec, lif_weights)``.
    """
    lam = _check_lam(lam)
    n = rate_spec.neuron
    if n.model != "rate":
        raise ValueError(f"rate_to_lif needs a rate network (populations[0].neuron.model = 'rate'), got {n.model!r}")
    if n.activation not in TRANSFERABLE:
        raise ValueError(f"activation {n.activation!r} has negative rates that spikes cannot carry; "
                         f"transferable: {TRANSFERABLE}")
    substeps(rate_spec.dt, lif_dt)
    allowed = {"tau_mem", "tau_syn", "tau_readout", "v_th", "reset", "refractory", "surrogate", "surrogate_slope"}
    unknown = sorted(set(lif_fields) - allowed)
    if unknown:
        raise ValueError(f"{unknown[0]} is not a LIF field rate_to_lif can set; allowed: {sorted(allowed)}")
    tau = n.tau
    tau_syn = float(lif_fields.get("tau_syn", tau))
    tau_ro = float(lif_fields.get("tau_readout", rate_spec.dt))
    tau_mem = float(lif_fields.get("tau_mem", tau))
    d_syn = decay(tau_syn, lif_dt)
    d_ro = 1.0 if tau_ro == 0 else decay(tau_ro, lif_dt)
    per_step = lam * lif_dt / 1000.0           # spikes per step per unit rate
    v_th = float(lif_fields.get("v_th", 1.0 / per_step))
    reset = lif_fields.get("reset", "subtract")
    p = "populations[0].neuron."
    changes = {"dt": float(lif_dt), p + "model": "lif", p + "noise_std": 0.0, p + "tau_syn": tau_syn,
               p + "tau_readout": tau_ro, p + "tau_mem": tau_mem, p + "tau_syn_slow": 0.0, p + "v_th": v_th,
               p + "reset": reset}
    for k in ("refractory", "surrogate", "surrogate_slope"):
        if k in lif_fields:
            changes[p + k] = lif_fields[k]
    try:
        lif_spec = rate_spec.replace(**changes)
    except ValueError as e:
        raise ValueError(f"the LIF network is not valid: {e}") from None
    b = weights.b
    if leak_compensation:
        b = b + decay(tau_mem, lif_dt) * v_th / 2
    w = weights.copy()
    lif_weights = dataclasses.replace(
        w, W_in=w.W_in * d_syn, W_rec=w.W_rec * (d_syn / per_step), W_out=w.W_out * (d_ro / per_step),
        b=b, b_out=w.b_out.copy(), extra={})
    return lif_spec, lif_weights


def upsample(inputs: torch.Tensor, k: int) -> torch.Tensor:
    """Hold each of ``inputs [T, ...]`` over ``k`` substeps: ``[T·k, ...]``."""
    return inputs.repeat_interleave(k, dim=0)


def downsample(x: torch.Tensor, k: int) -> torch.Tensor:
    """The last substep of each rate step: ``[T·k, ...]`` → ``[T, ...]``."""
    return x[k - 1::k]


def transferred(rate_net, lam: float, lif_dt: float = 1.0, **lif_fields):
    """A compiled LIF network (same dtype as ``rate_net``) made from a compiled rate network."""
    from neuro.compiler import compile as _compile
    spec, w = rate_to_lif(rate_net.spec, rate_net.weights(), lam, lif_dt, **lif_fields)
    return _compile(spec, "lif", w, dtype=rate_net.W_rec.dtype)


def run_transferred(lif_net, inputs: torch.Tensor, rate_dt: float):
    """Run a transferred LIF network on rate-grid ``inputs [T, B, n_in]``; returns the LIF
    ``Trajectory`` on the fine grid and the outputs downsampled to the rate grid."""
    k = substeps(rate_dt, lif_net.spec.dt)
    with torch.no_grad():
        traj = lif_net.run(upsample(inputs, k))
    return traj, downsample(traj.outputs, k)


def choose_scale(rate_net, task, lams=DEFAULT_LAMS, lif_dt: float = 1.0, batch_size: int = 64, seed: int = 12345,
                 **lif_fields) -> tuple[float, dict]:
    """Kim et al.'s grid search: the λ whose transferred LIF network scores best on ``task``.

    Every λ is evaluated on the same batch of ``batch_size`` trials (``task.batch(.., seed)``),
    LIF inputs held over the substeps and outputs downsampled to the rate grid for
    ``task.accuracy``.  Ties go to the smaller λ (fewer spikes).  Returns
    ``(best_lam, {lam: accuracy})``.
    """
    lams = list(lams)
    if not lams:
        raise ValueError("lams must hold at least one scale")
    for lam in lams:
        _check_lam(lam)
    batch = task.batch(batch_size, seed=seed, dtype=rate_net.W_rec.dtype)
    table = {}
    for lam in lams:
        lif = transferred(rate_net, lam, lif_dt, **lif_fields)
        _, out = run_transferred(lif, batch.inputs, rate_net.spec.dt)
        table[lam] = float(task.accuracy(out, batch))
    best = max(lams, key=lambda l: (table[l], -l))
    return best, table

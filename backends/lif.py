"""LIF spiking backend (snnTorch's surrogate spike functions, our update order).

Per step, for every spiking backend alike (``neuro/lif_params.py``; Lava's
floating-point LIF is the same map):

    a[t]   = W_in x[t] + W_rec s[t-1]
    u[t]   = (1-du) u[t-1] + a[t]                        synaptic (fast) current
    u_s[t] = (1-du_s) u_s[t-1] + W_slow s[t-1]           slow current (tau_syn_slow > 0;
                                                         DePasquale et al. 2016, review Eq. 6-7)
    v[t]   = (1-dv) v[t-1] + u[t] (+ u_s[t]) + b         bias into the voltage
    s[t]   = v[t] > v_th (strict), then v ← 0 (reset "zero") or v ← v - v_th ("subtract");
             for ``refractory`` ms after a spike v is held at 0 and cannot spike
    r[t]   = (1-d_r) r[t-1] + s[t],   y[t] = W_out r[t] + b_out

The spike nonlinearity and its surrogate derivative are snnTorch's
(``snntorch.surrogate.FastSigmoid`` / ``ATan``, with a dtype-preserving forward).  snnTorch's ``Synaptic`` neuron
(α = 1-du, β = 1-dv, reset to zero, ``reset_delay=False``) has this update
order, but it adds a bias to the current rather than the voltage and has
neither refractoriness nor a second current; so the step is written out
(``neuro.lif_params.lif_step``, a pure function of a typed ``LIFState`` with ``dt``
explicit) and a test holds it equal to ``snntorch.Synaptic`` where that neuron applies.
Resets use the detached spike (the usual choice, and e-prop's).

Lyapunov analysis sees the state ``z = [u, v_pre (, u_s)]`` (``state_size`` = 2N or
3N) and the surrogate derivative in place of the spike's: a *surrogate* ("pseudo")
spectrum, which far below threshold reduces to log(1-du) and log(1-dv).
"""
from __future__ import annotations

import torch
import snntorch.surrogate as _surrogate

from neuro.checks import check_inputs
from neuro.connectivity import Connectivity
from neuro.contract import refuse_options
from neuro.lif_params import LIFState, lif_constants, lif_step
from neuro.readout import as_row as _vec, matvec as _matvec, readout as _readout
from neuro.spec import NetworkSpec
from neuro.surrogates import surrogate_derivative
from neuro.trajectory import Trajectory
from neuro.weights import Weights
from neuro.backends import lif_events


def _spike_input(W: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """``W s`` for spikes ``s [B, N]``.  Event-driven when nothing needs a gradient (one trial on
    the CPU, under a quarter of the neurons spiking): only the columns of the neurons that spiked
    are summed, N·k work instead of N² — the same sum in another order (equal spikes: tested)."""
    if (torch.is_grad_enabled() and (W.requires_grad or s.requires_grad)) or W.dim() != 2 or s.dim() != 2 \
            or s.shape[0] != 1 or s.device.type != "cpu":
        return _matvec(W, s)
    active = torch.nonzero(s[0]).squeeze(1)
    if 4 * active.numel() >= s.shape[1]:
        return _matvec(W, s)
    return (W.index_select(1, active) * s[0, active]).sum(1).unsqueeze(0)


def snntorch_parameters(neuron, dt: float) -> dict:
    """Our LIF parameters in the names of snnTorch's ``Synaptic`` neuron (the translation table for the
    simulator this backend uses, as PyNN keeps one per simulator): ``snn.Synaptic(**table)`` has our
    update where it applies (no bias, refractoriness or slow current)."""
    c = lif_constants(neuron, dt)
    return {"alpha": 1.0 - c.du, "beta": 1.0 - c.dv, "threshold": neuron.v_th,
            "reset_mechanism": "zero" if neuron.reset == "zero" else "subtract", "reset_delay": False}


class _FastSigmoid(_surrogate.FastSigmoid):
    """snnTorch's fast-sigmoid surrogate (its backward), with a forward that keeps the
    input's dtype — snnTorch's returns float32, which would round float64 gradients."""

    @staticmethod
    def forward(ctx, input_, slope):
        ctx.save_for_backward(input_)
        ctx.slope = slope
        return (input_ > 0).to(input_.dtype)


class _ATan(_surrogate.ATan):
    """snnTorch's arctan surrogate (its backward), dtype-preserving forward."""

    @staticmethod
    def forward(ctx, input_, alpha):
        ctx.save_for_backward(input_)
        ctx.alpha = alpha
        return (input_ > 0).to(input_.dtype)


_SURROGATES = {
    "fast_sigmoid": lambda slope: (lambda x: _FastSigmoid.apply(x, slope)),
    "atan": lambda slope: (lambda x: _ATan.apply(x, slope)),
}


class LIFNetwork(Connectivity):
    """A compiled LIF network: ``run`` for trajectories, ``init_state``/``advance`` on a typed
    ``LIFState`` for online rules, ``step``/``jacobian_vp`` on the packed state for analysis."""

    backend = "lif"
    neuron_model = "lif"
    provides = frozenset({"runs", "differentiable", "truncatable", "local", "steppable", "online", "lif_map"})

    def __init__(self, spec: NetworkSpec, weights: Weights, dtype=torch.float32, device="cpu"):
        n = spec.neuron
        if n.model != "lif":
            raise ValueError(f"backend 'lif' needs populations[0].neuron.model = 'lif', got {n.model!r}")
        self.slow = n.tau_syn_slow > 0
        super().__init__(spec, weights, dtype, device, extra_recurrent=("W_slow",) if self.slow else ())
        self.c = lif_constants(n, spec.dt)
        self.v_th = n.v_th
        self.reset_zero = n.reset == "zero"
        self.spike_fn = _SURROGATES[n.surrogate](n.surrogate_slope)
        self.extra_decay = 1.0 - self.c.du   # an ``advance`` extra current passes the synaptic filter u

    # -- state -------------------------------------------------------------------
    @property
    def state_size(self) -> int:
        return self.n_hidden * (3 if self.slow else 2)

    def init_state(self, batch_size: int) -> LIFState:
        return LIFState.zeros((batch_size, self.n_hidden), self.slow, self.W_rec.dtype, self.W_rec.device)

    def advance(self, state: LIFState, x: torch.Tensor, extra: torch.Tensor | None = None, params: dict | None = None,
                detach_recurrent: bool = False) -> LIFState:
        """One step (``lif_step``); ``extra`` is added to the input current a[t]; ``detach_recurrent``
        cuts the gradient through the recurrent spikes (e-prop's truncation)."""
        p = self.effective() if params is None else params
        s_prev = state.s.detach() if detach_recurrent else state.s
        a = _matvec(p["W_in"], x) + _spike_input(p["W_rec"], s_prev)
        if extra is not None:
            a = a + extra
        slow = _spike_input(p["W_slow"], s_prev) if self.slow else None
        return lif_step(state, a, _vec(p["b"]), self.spec.neuron, self.spec.dt, slow, self.spike_fn)

    def activity(self, state: LIFState) -> torch.Tensor:
        """What the readout reads: the filtered spikes ``r``."""
        return state.r

    def potential(self, state: LIFState) -> torch.Tensor:
        """The membrane potential before the reset."""
        return state.v_pre

    def online_start(self, batch_size: int, init_std: float, generator: torch.Generator):
        """A start for online rules: a resting network would stay silent, so one step of random input
        current spreads the voltages over about ``[0, 2·init_std·v_th]`` (Nicola & Clopath 2017 start
        from random voltages); returns ``(state, that current)``."""
        kick = self.c.du * 2 * init_std * self.v_th * torch.rand(batch_size, self.n_hidden, generator=generator,
                                                                 dtype=self.W_rec.dtype)
        return self.init_state(batch_size), kick

    def readout(self, rates, params=None, feedback=None):
        return _readout(rates, self.effective() if params is None else params, feedback)

    def sample_noise(self, shape, generator=None) -> None:
        """LIF networks are noise-free: no hidden noise is drawn."""
        return None

    def run(self, inputs: torch.Tensor, state: LIFState | None = None, generator=None, detach_recurrent: bool = False,
            detach_every: int | None = None, feedback: torch.Tensor | None = None,
            noise: torch.Tensor | None = None) -> Trajectory:
        """Run on ``inputs [T, B, n_in]``.  ``detach_recurrent`` cuts the gradient through the recurrent
        spikes (e-prop's truncation); ``detach_every=k`` detaches the whole state at t = 0, k, 2k, …
        (truncated BPTT); ``feedback`` replaces ``W_outᵀ`` in the readout's backward.  The network is
        noise-free: ``generator`` draws nothing and a ``noise`` tensor is refused.  From a resting state,
        one network on the CPU runs event-driven (``lif_events``; off with ``net.event_driven = False``)."""
        refuse_options(self, {"noise": noise}, "LIF networks are noise-free")
        check_inputs(inputs, self.W_in.shape[-1], tuple(self.W_rec.shape[:-2]))
        if detach_every is not None and not (isinstance(detach_every, int) and detach_every >= 1):
            raise ValueError(f"detach_every must be an integer >= 1 (or None), got {detach_every!r}")
        if state is None and detach_every is None and lif_events.handles(self, inputs):
            return lif_events.run(self, inputs, detach_recurrent, feedback, surrogate_derivative)
        inputs = inputs.to(dtype=self.W_rec.dtype, device=self.W_rec.device)
        p = self.effective()
        st = self.init_state(inputs.shape[1]) if state is None else state
        steps = []
        for t in range(inputs.shape[0]):
            if detach_every and t % detach_every == 0:
                st = st.detach()
            st = self.advance(st, inputs[t], params=p, detach_recurrent=detach_recurrent)
            steps.append(st)
        stack = lambda name: torch.stack([getattr(x, name) for x in steps])
        rates = stack("r")
        extra = {"current": stack("u")}
        if self.slow:
            extra["slow_current"] = stack("us")
        return Trajectory(states=stack("v_pre"), rates=rates, outputs=self.readout(rates, p, feedback),
                          spikes=stack("s"), extra=extra)

    # -- Lyapunov: packed state z = [u, v_pre (, u_s)] --------------------------------
    def initial_state(self, batch_size: int) -> torch.Tensor:
        """The packed resting state ``[B, state_size]``."""
        return torch.zeros(batch_size, self.state_size, dtype=self.W_rec.dtype, device=self.W_rec.device)

    def _unpack(self, z):
        n = self.n_hidden
        parts = {"u": z[..., :n], "v": z[..., n:2 * n]}
        if self.slow:
            parts["us"] = z[..., 2 * n:]
        return parts

    def step(self, z: torch.Tensor, x: torch.Tensor, params: dict | None = None) -> torch.Tensor:
        """The one-step map on the packed state (spikes and resets as in ``run``)."""
        p = self.effective() if params is None else params
        parts = self._unpack(z)
        v_pre = parts["v"]
        s = (v_pre > self.v_th).to(z.dtype)
        v_post = v_pre * (1 - s) if self.reset_zero else v_pre - self.v_th * s
        zero = torch.zeros_like(s)
        state = LIFState(u=parts["u"], v=v_post, s=s, r=zero, ref=zero, us=parts.get("us"), v_pre=v_pre)
        new = self.advance(state, x, params=p)
        packed = [new.u, new.v_pre] + ([new.us] if self.slow else [])
        return torch.cat(packed, -1)
    def jacobian_vp(self, z: torch.Tensor, V: torch.Tensor, params: dict | None = None) -> torch.Tensor:
        """Surrogate ``J V`` of ``step``: the spike's derivative is the surrogate ψ(v - v_th),
        resets are treated as fixed (as in e-prop)."""
        p = self.effective() if params is None else params
        n, c = self.n_hidden, self.c
        parts = self._unpack(z)
        v = parts["v"]
        s = (v > self.v_th).to(z.dtype)
        psi = surrogate_derivative(self.spec.neuron.surrogate, self.spec.neuron.surrogate_slope, v - self.v_th)
        Vu, Vv = V[..., :n, :], V[..., n:2 * n, :]
        keep = (1 - s).unsqueeze(-1) if self.reset_zero else 1.0
        dspike = psi.unsqueeze(-1) * Vv                                  # [.., N, k]
        du = (1 - c.du) * Vu + torch.matmul(p["W_rec"], dspike)
        dv = (1 - c.dv) * keep * Vv + du
        out = [du, dv]
        if self.slow:
            dus = (1 - c.du_slow) * V[..., 2 * n:, :] + torch.matmul(p["W_slow"], dspike)
            out[1] = out[1] + dus
            out.append(dus)
        return torch.cat(out, -2)

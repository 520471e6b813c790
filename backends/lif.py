# NOTE FOR HELPER SESSIONS: this backend is written and tested by the lead (tests/test_lif.py);
# build on it (add methods, fix bugs) rather than replacing it.  The contract is neuro/lif_params.py.
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
neither refractoriness nor a second current; so the step is written out here
and a test holds it equal to ``snntorch.Synaptic`` where that neuron applies.
Resets use the detached spike (the usual choice, and e-prop's).

Lyapunov analysis sees the state ``z = [u, v_pre (, u_s)]`` (``state_size`` = 2N or
3N) and the surrogate derivative in place of the spike's: a *surrogate* ("pseudo")
spectrum, which far below threshold reduces to log(1-du) and log(1-dv).
"""
from __future__ import annotations

import torch
import snntorch.surrogate as _surrogate

from neuro.connectivity import Connectivity
from neuro.lif_params import lif_constants
from neuro.spec import NetworkSpec
from neuro.trajectory import Trajectory
from neuro.weights import Weights
from neuro.backends.rate import _FeedbackReadout, _matvec, _vec

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


def surrogate_derivative(name: str, slope: float, x: torch.Tensor) -> torch.Tensor:
    """dS/dv of snnTorch's surrogates at ``x = v - v_th`` (for traces and Jacobians)."""
    if name == "fast_sigmoid":
        return 1.0 / (slope * x.abs() + 1.0) ** 2
    return (slope / 2) / (1 + (torch.pi / 2 * slope * x) ** 2)   # atan, snnTorch's scaling


class LIFNetwork(Connectivity):
    backend = "lif"

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

    # -- state -------------------------------------------------------------------
    @property
    def state_size(self) -> int:
        return self.n_hidden * (3 if self.slow else 2)

    def init_state(self, batch_size: int) -> dict:
        z = torch.zeros(batch_size, self.n_hidden, dtype=self.W_rec.dtype, device=self.W_rec.device)
        state = {"u": z, "v": z, "s": z, "r": z, "ref": z}
        if self.slow:
            state["us"] = z
        return state

    def _spike(self, v: torch.Tensor) -> torch.Tensor:
        return self.spike_fn(v - self.v_th)

    def advance(self, state: dict, x: torch.Tensor, extra: torch.Tensor | None = None, params: dict | None = None,
                detach_recurrent: bool = False) -> dict:
        """One step of the contract; ``extra`` is added to the input current a[t]."""
        p = self.effective() if params is None else params
        c = self.c
        s_prev = state["s"].detach() if detach_recurrent else state["s"]
        a = _matvec(p["W_in"], x) + _spike_input(p["W_rec"], s_prev)
        if extra is not None:
            a = a + extra
        u = (1 - c.du) * state["u"] + a
        v = (1 - c.dv) * state["v"] + u + _vec(p["b"])
        new = {"u": u}
        if self.slow:
            new["us"] = (1 - c.du_slow) * state["us"] + _spike_input(p["W_slow"], s_prev)
            v = v + new["us"]
        free = None
        if c.refractory_steps > 0:
            free = (state["ref"] <= 0).to(v.dtype)
            v = v * free
        s = self._spike(v)
        if free is not None:
            s = s * free
        sd = s.detach()
        new["v_pre"] = v
        new["v"] = v * (1 - sd) if self.reset_zero else v - self.v_th * sd
        new["s"] = s
        new["r"] = (1 - c.d_readout) * state["r"] + s
        new["ref"] = torch.where(sd > 0, torch.full_like(v, c.refractory_steps), state["ref"] - 1) \
            if c.refractory_steps > 0 else state["ref"]
        return new

    def activity(self, state: dict) -> torch.Tensor:
        return state["r"]

    def readout(self, rates, params=None, feedback=None):
        p = self.effective() if params is None else params
        if feedback is not None:
            return _FeedbackReadout.apply(rates, p["W_out"], p["b_out"], feedback)
        return _matvec(p["W_out"], rates) + _vec(p["b_out"])

    def run(self, inputs: torch.Tensor, state: dict | None = None, generator=None, detach_recurrent: bool = False,
            feedback: torch.Tensor | None = None, **_) -> Trajectory:
        """Run on ``inputs [T, B, n_in]``; ``detach_recurrent`` cuts the gradient through the
        recurrent spikes (e-prop's truncation); ``feedback`` replaces ``W_outᵀ`` in the backward."""
        inputs = inputs.to(dtype=self.W_rec.dtype, device=self.W_rec.device)
        p = self.effective()
        st = self.init_state(inputs.shape[1]) if state is None else state
        keys = ("v_pre", "s", "r", "u") + (("us",) if self.slow else ())
        out = {k: [] for k in keys}
        for t in range(inputs.shape[0]):
            st = self.advance(st, inputs[t], params=p, detach_recurrent=detach_recurrent)
            for k in keys:
                out[k].append(st[k])
        out = {k: torch.stack(v) for k, v in out.items()}
        extra = {"current": out["u"]}
        if self.slow:
            extra["slow_current"] = out["us"]
        return Trajectory(states=out["v_pre"], rates=out["r"], outputs=self.readout(out["r"], p, feedback),
                          spikes=out["s"], extra=extra)

    # -- Lyapunov: packed state z = [u, v_pre (, u_s)] --------------------------------
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
        state = {"u": parts["u"], "v": v_post, "s": s, "r": torch.zeros_like(s), "ref": torch.zeros_like(s)}
        if self.slow:
            state["us"] = parts["us"]
        new = self.advance(state, x, params=p)
        packed = [new["u"], new["v_pre"]] + ([new["us"]] if self.slow else [])
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

    # -- e-prop (Bellec et al. 2020) ------------------------------------------------------
    def eprop_gradients(self, batch, task, form: str = "autograd", generator=None):
        from neuro.rules.eprop_lif import eprop_lif_gradients
        return eprop_lif_gradients(self, batch, task, form)

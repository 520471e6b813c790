"""Event-driven LIF runs for batches of trials (pure torch).

The same per-step map as ``backends/lif.py`` (``neuro/lif_params.py``), written for speed at the
firing rates of cortical networks (a few to a few tens of Hz, i.e. 0.1–3 % of the neurons spiking
in a 1 ms step):

- **recurrent input by events**: the spikes of one step, over all trials of the batch, become a
  sparse CSR matrix ``S [B, N]`` and the input is ``S @ Wᵀ`` with ``Wᵀ`` stored transposed and
  contiguous, so each spike adds one contiguous row of its neuron's outgoing weights — work in
  proportion to the number of spikes, not to N² per trial.  Above ``DENSE_FRACTION`` of the
  entries spiking, a dense product is cheaper and is used instead;
- **one fused loop** writing into preallocated ``[T, B, N]`` buffers, in place, without autograd;
- **training through the same path**: a ``torch.autograd.Function`` whose backward is the
  adjoint recurrence of the map written out (surrogate derivative in place of the spike's,
  detached resets and refractory clamp, as the autograd path treats them).  Per step it costs
  one dense product ``g_a W`` (none with ``detach_recurrent``: e-prop's truncation); the weight
  gradient ``Σ_t g_a[t]ᵀ s[t-1]`` is one product at the end, sparse in the spikes.

The sums run in another order than the dense matmul's, so voltages agree to rounding and spikes
are identical unless a voltage lands within rounding of the threshold (tested in float64 at
several rates, batch 1 and 32, with refractoriness, both resets and a slow current).
"""
from __future__ import annotations

import warnings

import torch

from neuro.trajectory import Trajectory

DENSE_FRACTION = 0.1
"""Above this fraction of the ``B × N`` entries spiking in a step, the recurrent input is a dense
product (``benchmarks/bench_lif_rates.py --crossover`` measures where the two cost the same)."""


DENSE_BELOW = 2 ** 19
"""Below this many multiply-adds per step (``B × N_pre × N_post``) a dense product costs less than
building the sparse matrix (``benchmarks/bench_lif_rates.py crossover``)."""


def handles(net, inputs: torch.Tensor) -> bool:
    """Whether ``run`` below applies: one network (2-D weights) on the CPU, inputs ``[T, B, n_in]``,
    and ``net.event_driven`` not switched off."""
    return (getattr(net, "event_driven", True) and net.W_rec.dim() == 2 and inputs.dim() == 3
            and net.W_rec.device.type == "cpu")


def _recurrent(s: torch.Tensor, WT: torch.Tensor, out: torch.Tensor) -> None:
    """``out += s @ WT`` for spikes ``s [B, N_pre]`` and transposed weights ``WT [N_pre, N_post]``."""
    if s.shape[0] * WT.numel() < DENSE_BELOW:
        out.addmm_(s, WT)
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # "sparse CSR support is in beta"
        csr = s.to_sparse_csr()
    k = csr._nnz()
    if k == 0:
        return
    if k > DENSE_FRACTION * s.numel():
        out.addmm_(s, WT)
    else:
        out.add_(torch.sparse.mm(csr, WT))


def _forward(I, W, b, Ws, c, v_th, reset_zero):
    """The map without autograd.  ``I [T, B, N]`` is the input current ``W_in x``; returns
    ``(v_pre, s, u, us, r, free)`` with ``free`` the refractory mask (None without refractoriness)."""
    T, B, N = I.shape
    dt = I.dtype
    WT = W.t().contiguous()
    WsT = Ws.t().contiguous() if Ws is not None else None
    V, S, U, R = (torch.empty(T, B, N, dtype=dt) for _ in range(4))
    US = torch.empty(T, B, N, dtype=dt) if Ws is not None else None
    nref = c.refractory_steps
    F = torch.empty(T, B, N, dtype=torch.bool) if nref > 0 else None
    zero = torch.zeros(B, N, dtype=dt)
    v_post = torch.zeros(B, N, dtype=dt)
    ref = torch.zeros(B, N, dtype=dt)
    spiked = torch.empty(B, N, dtype=torch.bool)
    au, av, ar = 1 - c.du, 1 - c.dv, 1 - c.d_readout
    aus = 1 - c.du_slow if Ws is not None else 0.0
    for t in range(T):
        u_prev = U[t - 1] if t else zero
        a = U[t]
        a.copy_(I[t])
        if t:
            _recurrent(S[t - 1], WT, a)                        # a[t] = W_in x[t] + W s[t-1]
        a.add_(u_prev, alpha=au)                               # u[t] = (1-du) u[t-1] + a[t]
        v = V[t]
        torch.add(a, v_post, alpha=av, out=v)
        if b is not None:
            v.add_(b)
        if US is not None:
            us = US[t]
            us.zero_()
            if t:
                _recurrent(S[t - 1], WsT, us)
                us.add_(US[t - 1], alpha=aus)
            v.add_(us)
        if F is not None:
            free = F[t]
            torch.le(ref, 0, out=free)
            v.mul_(free)                                       # held at 0 (v_th > 0: no spike)
        torch.gt(v, v_th, out=spiked)
        s = S[t]
        s.copy_(spiked)
        if reset_zero:
            v_post.copy_(v).masked_fill_(spiked, 0.0)
        else:
            torch.sub(v, s, alpha=v_th, out=v_post)
        torch.add(s, R[t - 1] if t else zero, alpha=ar, out=R[t])
        if F is not None:
            ref.sub_(1).masked_fill_(spiked, float(nref))
    return V, S, U, US, R, F


class _EventRun(torch.autograd.Function):
    """The event-driven run with its adjoint backward (BPTT through the surrogate)."""

    @staticmethod
    def forward(ctx, I, W, b, Ws, c, v_th, reset_zero, detach_recurrent, psi):
        V, S, U, US, R, F = _forward(I.detach(), W.detach(), None if b is None else b.detach(),
                                     None if Ws is None else Ws.detach(), c, v_th, reset_zero)
        ctx.c, ctx.v_th, ctx.reset_zero, ctx.detach_recurrent, ctx.psi = c, v_th, reset_zero, detach_recurrent, psi
        ctx.has_b, ctx.has_slow, ctx.has_free = b is not None, Ws is not None, F is not None
        ctx.save_for_backward(V, S, W, Ws if Ws is not None else torch.empty(0),
                              F if F is not None else torch.empty(0))
        outs = (V, S, U, R) + ((US,) if US is not None else ())
        return outs

    @staticmethod
    def backward(ctx, gV, gS, gU, gR, *rest):
        V, S, W, Ws, F = ctx.saved_tensors
        c = ctx.c
        gUS = rest[0] if ctx.has_slow else None
        T, B, N = V.shape
        au, av, ar = 1 - c.du, 1 - c.dv, 1 - c.d_readout
        aus = 1 - c.du_slow if ctx.has_slow else 0.0
        with torch.no_grad():
            psi = ctx.psi(V - ctx.v_th)                        # dS/dv: the surrogate
            if ctx.has_free:
                psi.mul_(F)
            GA = torch.empty_like(V)                           # dL/da[t], also dL/dI[t]
            GUS = torch.empty_like(V) if ctx.has_slow else None
            gb = torch.zeros(N, dtype=V.dtype) if ctx.has_b else None
            gr = torch.zeros(B, N, dtype=V.dtype)
            gq_next = torch.zeros(B, N, dtype=V.dtype)
            gu_next = torch.zeros(B, N, dtype=V.dtype)
            gus_next = torch.zeros(B, N, dtype=V.dtype) if ctx.has_slow else None
            rec = torch.zeros(B, N, dtype=V.dtype)            # W-weighted adjoint reaching s[t]
            gv = torch.empty(B, N, dtype=V.dtype)
            for t in range(T - 1, -1, -1):
                gr.mul_(ar).add_(gR[t])                        # r[t] = (1-d_r) r[t-1] + s[t]
                gs = gS[t] + gr
                if t < T - 1 and not ctx.detach_recurrent:
                    gs.add_(rec)
                # v_pre[t] feeds s[t] (surrogate), v_post[t] -> v_pre[t+1] (reset detached)
                torch.mul(gq_next, (1 - S[t]) * av if ctx.reset_zero else av, out=gv)
                gv.add_(gV[t]).addcmul_(gs, psi[t])
                if ctx.has_free:
                    gv.mul_(F[t])                              # the refractory clamp
                gq = gv
                if gb is not None:
                    gb.add_(gq.sum(0))
                gu = GA[t]
                torch.add(gq, gu_next, alpha=au, out=gu).add_(gU[t])
                if ctx.has_slow:
                    gus = GUS[t]
                    torch.add(gq, gus_next, alpha=aus, out=gus).add_(gUS[t])
                    gus_next = gus
                if t and not ctx.detach_recurrent:
                    torch.mm(gu, W, out=rec)                   # a[t] = ... + W s[t-1]
                    if ctx.has_slow:
                        rec.addmm_(gus, Ws)
                gu_next = gu
                gq_next = gq.clone()
            gW = _weight_grad(GA, S) if ctx.needs_input_grad[1] else None
            gWs = _weight_grad(GUS, S) if ctx.has_slow and ctx.needs_input_grad[3] else None
        return GA, gW, gb, gWs, None, None, None, None, None


def _weight_grad(G: torch.Tensor, S: torch.Tensor) -> torch.Tensor:
    """``Σ_t G[t]ᵀ S[t-1]`` (the gradient of ``W`` in ``a[t] = W s[t-1]``), sparse in the spikes."""
    T, B, N = S.shape
    G = G[1:].reshape(-1, G.shape[-1])
    Sp = S[:-1].reshape(-1, N)
    if int(torch.count_nonzero(Sp)) > DENSE_FRACTION * Sp.numel():
        return G.t() @ Sp
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.sparse.mm(Sp.t().to_sparse_csr(), G).t()


def run(net, inputs: torch.Tensor, detach_recurrent: bool, feedback, surrogate_derivative) -> Trajectory:
    """``net.run(inputs)`` on this path (``handles`` must hold); differentiable where the weights
    or inputs require grad."""
    inputs = inputs.to(dtype=net.W_rec.dtype, device=net.W_rec.device)
    p = net.effective()
    n = net.spec.neuron
    I = torch.matmul(inputs, p["W_in"].transpose(-1, -2))
    Ws = p.get("W_slow") if net.slow else None
    b = p["b"]
    args = (I, p["W_rec"], b, Ws)
    if torch.is_grad_enabled() and any(a is not None and a.requires_grad for a in args):
        psi = lambda x: surrogate_derivative(n.surrogate, n.surrogate_slope, x)
        outs = _EventRun.apply(*args, net.c, net.v_th, net.reset_zero, detach_recurrent, psi)
        V, S, U, R = outs[:4]
        US = outs[4] if net.slow else None
    else:
        with torch.no_grad():
            V, S, U, US, R, _ = _forward(I, p["W_rec"], b, Ws, net.c, net.v_th, net.reset_zero)
    extra = {"current": U}
    if net.slow:
        extra["slow_current"] = US
    return Trajectory(states=V, rates=R, outputs=net.readout(R, p, feedback), spikes=S, extra=extra)

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


def _recurrent(base: torch.Tensor, s: torch.Tensor, WT: torch.Tensor, out: torch.Tensor) -> None:
    """``out = base + s @ WT`` for spikes ``s [B, N_pre]`` and transposed weights ``WT [N_pre, N_post]``."""
    if s.shape[0] * WT.numel() >= DENSE_BELOW:
        k = int(torch.count_nonzero(s))
        if k == 0:
            out.copy_(base)
            return
        if k <= DENSE_FRACTION * s.numel():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")          # "sparse CSR support is in beta"
                torch.add(base, torch.sparse.mm(s.to_sparse_csr(), WT), out=out)
            return
    torch.addmm(base, s, WT, out=out)


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
        a = U[t]
        if t:
            _recurrent(I[t], S[t - 1], WT, a)                  # a[t] = W_in x[t] + W s[t-1]
            a.add_(U[t - 1], alpha=au)                         # u[t] = (1-du) u[t-1] + a[t]
        else:
            a.copy_(I[t])
        v = V[t]
        torch.add(a, v_post, alpha=av, out=v)
        if b is not None:
            v.add_(b)
        if US is not None:
            us = US[t]
            if t:
                _recurrent(zero, S[t - 1], WsT, us)
                us.add_(US[t - 1], alpha=aus)
            else:
                us.zero_()
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
            # what reaches s[t] from outside the recurrence: its own gradient and the readout filter's
            A = torch.empty_like(V)
            for t in range(T - 1, -1, -1):
                torch.add(gR[t], A[t + 1] if t < T - 1 else torch.zeros_like(A[t]), alpha=ar, out=A[t])
            A.add_(gS).mul_(psi).add_(gV)                      # dL/dv_pre[t] but for the recurrence
            # v_post[t] = v_pre[t] (1 - s[t]) (or v_pre[t] - v_th s[t]), detached spikes: feeds v_pre[t+1]
            keep = (1 - S).mul_(av) if ctx.reset_zero else None
            if ctx.has_free:                                   # the refractory clamp
                A.mul_(F)
                keep = F.to(V.dtype).mul_(av) if keep is None else keep.mul_(F)
            GQ = torch.empty_like(V)                           # dL/dv_pre[t] through everything
            GA = torch.empty_like(V)                           # dL/da[t], also dL/dI[t]
            GUS = torch.empty_like(V) if ctx.has_slow else None
            with_gU = bool(gU.any())
            rec = torch.empty(B, N, dtype=V.dtype)            # W-weighted adjoint reaching s[t]
            recurrent = not ctx.detach_recurrent
            for t in range(T - 1, -1, -1):
                gq, gu = GQ[t], GA[t]
                if t == T - 1:
                    gq.copy_(A[t])
                    gu.copy_(gq)
                else:
                    if keep is None:
                        torch.add(A[t], GQ[t + 1], alpha=av, out=gq)
                    else:
                        torch.addcmul(A[t], keep[t], GQ[t + 1], out=gq)
                    if recurrent:
                        gq.addcmul_(psi[t], rec)
                    torch.add(gq, GA[t + 1], alpha=au, out=gu)
                if with_gU:
                    gu.add_(gU[t])
                if ctx.has_slow:
                    gus = GUS[t]
                    if t == T - 1:
                        torch.add(gq, gUS[t], out=gus)
                    else:
                        torch.add(gq, GUS[t + 1], alpha=aus, out=gus).add_(gUS[t])
                if t and recurrent:
                    torch.mm(gu, W, out=rec)                   # a[t] = ... + W s[t-1]
                    if ctx.has_slow:
                        rec.addmm_(gus, Ws)
            gb = GQ.sum((0, 1)) if ctx.has_b else None
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

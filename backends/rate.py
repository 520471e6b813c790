"""Rate RNN backend (PyTorch).

    h[t+1] = α h[t] + (1-α) (W_rec f(h[t]) + W_in x[t] + b) + sqrt(2(1-α)) σ ξ[t]
    y[t]   = W_out f(h[t+1]) + b_out,           α = 1 - dt/τ

(Liu, Zhang & Liu, Eq. 1; noise scaling as in Song, Yang & Wang 2016, where the
recurrent noise σ enters inside the (1-α) term as sqrt(2/(1-α)) σ ξ.)

The one-step map ``rate_step`` is a pure function of (state, input, parameters):
no in-place updates and no Python branching on tensor values, so it can be
batched over an ensemble (leading dimensions broadcast through ``matmul``) and
differentiated with ``torch.func.jvp`` for Lyapunov analysis.
"""
from __future__ import annotations

import math

import torch

from neuro.activations import activation, derivative
from neuro.connectivity import Connectivity
from neuro.spec import NetworkSpec
from neuro.trajectory import Trajectory
from neuro.weights import Weights


def _matvec(W: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``W v`` for batched row vectors: W ``[..., M, K]``, v ``[..., B, K]`` → ``[..., B, M]``."""
    return torch.matmul(v, W.transpose(-1, -2))


def _vec(b: torch.Tensor) -> torch.Tensor:
    """A bias ``[..., N]`` broadcastable against ``[..., B, N]``."""
    return b.unsqueeze(-2) if b.dim() > 1 else b


def rate_step(h, x_drive, W_rec, alpha: float, f, noise=None, detach_recurrent: bool = False):
    """One step of the rate RNN given the precomputed input drive ``W_in x + b``.

    ``detach_recurrent`` cuts the gradient through ``f(h)`` in the recurrent input
    only, keeping the leak path α·h: exactly e-prop's / RFLO's truncation
    (Bellec et al. 2020; Murray 2019; Liu, Zhang & Liu Eq. 6).
    """
    r = f(h)
    if detach_recurrent:
        r = r.detach()
    h_new = alpha * h + (1.0 - alpha) * (_matvec(W_rec, r) + x_drive)
    if noise is not None:
        h_new = h_new + noise
    return h_new


class _FusedRecurrence(torch.autograd.Function):
    """The whole recurrence ``h[t+1] = α h[t] + (1-α)(W f(h[t]) + d[t]) + n[t]`` as one op.

    Forward runs without building an autograd graph; backward is the adjoint
    recursion written out (BPTT):  λ[t] = ∂L/∂h[t+1] = G[t] + α λ[t+1]
    + (1-α) f'(h[t+1]) ⊙ Wᵀλ[t+1], then ``∂L/∂W = (1-α) Σ_t λ[t] f(h[t])ᵀ`` as one
    matrix product and ``∂L/∂d[t] = (1-α) λ[t]``.  ``truncate="eprop"`` drops the
    ``Wᵀ`` term (e-prop / RFLO: only the leak carries credit back in time);
    ``detach_every=k`` cuts the recursion at t = k, 2k, … (truncated BPTT).  It
    gives the same numbers as autograd through ``rate_step`` (a test holds this)
    at about half the cost, since the per-step autograd bookkeeping disappears.
    """

    @staticmethod
    def forward(ctx, drive, W, h0, noise, alpha, f, fprime, eprop, detach_every):
        T = drive.shape[0]
        states = torch.empty((T,) + tuple(h0.shape), dtype=drive.dtype, device=drive.device)
        inject = (1.0 - alpha) * drive if noise is None else (1.0 - alpha) * drive + noise
        Wt = (1.0 - alpha) * W.transpose(-1, -2)
        h = h0.expand_as(states[0]) if h0.dim() < states.dim() - 1 else h0
        two_d = Wt.dim() == 2 and h.dim() == 2
        for t in range(T):          # three fused ops per step: f, axpy, (add)mm
            base = torch.add(inject[t], h, alpha=alpha)
            if two_d:
                h = torch.addmm(base, f(h), Wt, out=states[t])
            else:
                states[t] = base + torch.matmul(f(h), Wt)
                h = states[t]
        ctx.save_for_backward(W, h0, states)
        ctx.alpha, ctx.f, ctx.fprime, ctx.eprop, ctx.detach_every = alpha, f, fprime, eprop, detach_every
        return states

    @staticmethod
    def backward(ctx, G):
        W, h0, states = ctx.saved_tensors
        a, k = ctx.alpha, ctx.detach_every
        T = states.shape[0]
        prev = torch.cat([h0.unsqueeze(0).expand_as(states[:1]), states[:-1]])      # h[t] for t = 0..T-1
        fp = None if ctx.eprop else ctx.fprime(prev)
        lam = torch.empty_like(states)
        carry = torch.zeros_like(states[0])
        fps = None if fp is None else (1.0 - a) * fp
        rates = ctx.f(prev)
        batched = W.dim() > 2          # an ensemble: W [E, N, N]
        grad_W = torch.zeros_like(W) if batched else None
        for t in range(T - 1, -1, -1):
            lam_t = torch.add(G[t], carry, out=lam[t])
            if batched:               # Σ_t λ[t]ᵀ f(h[t]) per member, accumulated in place (no big copies)
                grad_W.baddbmm_(lam_t.transpose(-1, -2), rates[t])
            if k and t % k == 0:          # the state entering step t was detached: no credit flows further back
                carry = torch.zeros_like(carry)
            elif ctx.eprop:
                carry = a * lam_t
            else:
                carry = torch.addcmul(a * lam_t, fps[t], torch.matmul(lam_t, W))
        if not batched:           # Σ_t λ[t]ᵀ f(h[t]) as one [N, T·B] × [T·B, N] product (views, no copies)
            grad_W = torch.matmul(lam.flatten(0, -2).T, rates.flatten(0, -2))
        grad_W = (1.0 - a) * grad_W
        grad_W = grad_W.sum_to_size(W.shape)
        grad_h0 = carry if ctx.needs_input_grad[2] else None
        return (1.0 - a) * lam, grad_W, grad_h0, None, None, None, None, None, None


class _FeedbackReadout(torch.autograd.Function):
    """``y = r W_outᵀ + b_out`` whose backward sends the error to ``r`` through a fixed
    matrix ``B`` instead of ``W_outᵀ`` (feedback alignment); weight gradients exact."""

    @staticmethod
    def forward(ctx, r, W_out, b_out, B):
        ctx.save_for_backward(r, B)
        return _matvec(W_out, r) + _vec(b_out)

    @staticmethod
    def backward(ctx, grad_y):
        r, B = ctx.saved_tensors
        grad_r = torch.matmul(grad_y, B.transpose(-1, -2))
        if B.dim() == 2:
            gy, rr = grad_y.reshape(-1, grad_y.shape[-1]), r.reshape(-1, r.shape[-1])
            grad_W, grad_b = gy.T @ rr, gy.sum(0)
        else:  # ensemble: [..., E, B, ·] with weights [E, ·, ·]
            grad_W = torch.einsum("...ebo,...ebn->eon", grad_y, r)
            grad_b = torch.einsum("...ebo->eo", grad_y)
        return grad_r, grad_W, grad_b, None


class RateNetwork(Connectivity):
    """A compiled rate network (connectivity, masks and Dale signs: ``neuro.connectivity``)."""

    backend = "rate"

    def __init__(self, spec: NetworkSpec, weights: Weights, dtype=torch.float32, device="cpu"):
        if spec.neuron.model != "rate":
            raise ValueError(f"backend 'rate' needs populations[0].neuron.model = 'rate', got "
                             f"{spec.neuron.model!r}; use backend='lif' for spiking neurons")
        super().__init__(spec, weights, dtype, device)
        self.alpha = spec.alpha
        self.f = activation(spec.neuron.activation)
        self.fprime = derivative(spec.neuron.activation)
        self.fused = True   # hand-written backward for run(); False = plain autograd through rate_step
        self.noise_scale = math.sqrt(2.0 * (1.0 - self.alpha)) * spec.neuron.noise_std

    # -- dynamics --------------------------------------------------------------
    def initial_state(self, batch_size: int) -> torch.Tensor:
        lead = self.W_rec.shape[:-2]
        return torch.zeros(*lead, batch_size, self.n_hidden, dtype=self.W_rec.dtype, device=self.W_rec.device)

    def step(self, h: torch.Tensor, x: torch.Tensor, params: dict | None = None) -> torch.Tensor:
        """The noise-free one-step map ``h[t] → h[t+1]`` (for Lyapunov analysis)."""
        p = self.effective() if params is None else params
        drive = _matvec(p["W_in"], x) + _vec(p["b"])
        return rate_step(h, drive, p["W_rec"], self.alpha, self.f)

    def jacobian_vp(self, h: torch.Tensor, v: torch.Tensor, params: dict | None = None) -> torch.Tensor:
        """Analytic ``J v`` with ``J = α I + (1-α) W_rec diag f'(h)``; v ``[..., B, N, k]``."""
        p = self.effective() if params is None else params
        fprime = self.fprime(h)
        return self.alpha * v + (1 - self.alpha) * torch.matmul(p["W_rec"].unsqueeze(-3), fprime.unsqueeze(-1) * v)

    # -- online protocol (FORCE, full-FORCE, reward-modulated Hebbian) ----------
    def init_state(self, batch_size: int) -> torch.Tensor:
        """The state an online rule carries from step to step (here: ``h``)."""
        return self.initial_state(batch_size)

    def advance(self, state: torch.Tensor, x: torch.Tensor, extra: torch.Tensor | None = None,
                params: dict | None = None) -> torch.Tensor:
        """One step; ``extra [.., B, N]`` is added to the recurrent input current
        (``W_rec f(h) + W_in x + b + extra``), e.g. FORCE's output feedback ``W_fb z``."""
        p = self.effective() if params is None else params
        drive = _matvec(p["W_in"], x) + _vec(p["b"])
        if extra is not None:
            drive = drive + extra
        return rate_step(state, drive, p["W_rec"], self.alpha, self.f)

    def activity(self, state: torch.Tensor) -> torch.Tensor:
        """What the readout reads from a state: ``f(h)``."""
        return self.f(state)

    def readout(self, rates: torch.Tensor, params: dict | None = None, feedback: torch.Tensor | None = None):
        p = self.effective() if params is None else params
        if feedback is not None:
            return _FeedbackReadout.apply(rates, p["W_out"], p["b_out"], feedback)
        return _matvec(p["W_out"], rates) + _vec(p["b_out"])

    def sample_noise(self, shape, generator: torch.Generator | None = None) -> torch.Tensor | None:
        if self.noise_scale == 0:
            return None
        return self.noise_scale * torch.randn(shape, generator=generator, dtype=self.W_rec.dtype,
                                              device=self.W_rec.device)

    def run(self, inputs: torch.Tensor, h0: torch.Tensor | None = None, noise: torch.Tensor | None = None,
            generator: torch.Generator | None = None, detach_recurrent: bool = False,
            detach_every: int | None = None, feedback: torch.Tensor | None = None) -> Trajectory:
        """Run on ``inputs [T, B, n_in]`` (ensembles: ``[T, E, B, n_in]``).

        ``detach_recurrent``: e-prop truncation; ``detach_every=k``: truncated BPTT
        (the state's graph is cut every k steps); ``feedback``: a fixed matrix that
        replaces ``W_outᵀ`` in the backward pass of the readout.
        """
        inputs = inputs.to(dtype=self.W_rec.dtype, device=self.W_rec.device)
        p = self.effective()
        T, batch = inputs.shape[0], inputs.shape[-2]
        h = self.initial_state(batch) if h0 is None else h0
        if noise is None:
            noise = self.sample_noise((T,) + tuple(h.shape), generator)
        drive = _matvec(p["W_in"], inputs) + _vec(p["b"])
        if self.fused and torch.is_grad_enabled():
            states = _FusedRecurrence.apply(drive, p["W_rec"], h, noise, self.alpha, self.f, self.fprime,
                                            detach_recurrent, detach_every)
            rates = self.f(states)
            return Trajectory(states=states, rates=rates, outputs=self.readout(rates, p, feedback),
                              extra={"noise": noise} if noise is not None else {})
        # unbind, not drive[t]: indexing's backward would zero-fill a full [T, B, N] tensor every step
        drives = drive.unbind(0)
        states = []
        for t in range(T):
            if detach_every and t % detach_every == 0:
                h = h.detach()
            h = rate_step(h, drives[t], p["W_rec"], self.alpha, self.f,
                          None if noise is None else noise[t], detach_recurrent)
            states.append(h)
        states = torch.stack(states)
        rates = self.f(states)
        return Trajectory(states=states, rates=rates, outputs=self.readout(rates, p, feedback),
                          extra={"noise": noise} if noise is not None else {})

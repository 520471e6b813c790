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
from neuro.checks import check_inputs
from neuro.backends import rate_kernel
from neuro.connectivity import Connectivity
from neuro.readout import as_row as _vec, matvec as _matvec, readout as _readout
from neuro.spec import NetworkSpec
from neuro.trajectory import Trajectory
from neuro.weights import Weights


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


def _rollout_forward(x, W, W_in, b, W_out, b_out, h0, noise, alpha: float, f):
    """The whole forward pass on the fused path's shapes: ``x [T, E, B, n_in]``, weights ``[E, ·, ·]``,
    ``h0 [E, B, N]``; the compiled kernel (``rate_kernel``) where it applies, else per step three
    BLAS calls and one elementwise pass, all writing in place:

        h[t+1] = α h[t] + [x[t] | 1] (1-α)[W_in | b]ᵀ      (baddbmm, β = α)
        h[t+1] += r[t] (1-α) W_recᵀ (+ noise[t]),  r[t+1] = f(h[t+1]),  y[t] = r[t+1] W_outᵀ + b_out

    Returns ``states [T, E, B, N]``, ``rates [T+1, E, B, N]`` (``rates[0] = f(h0)``) and ``outputs``."""
    if rate_kernel.usable(x, W, f):
        return rate_kernel.forward(x, W, W_in, b, W_out, b_out, h0, noise, alpha)
    T, E, B, n_in = x.shape
    N, O = W.shape[-1], W_out.shape[-2]
    xe = _with_ones(x)
    drive_w = ((1.0 - alpha) * torch.cat([W_in, b.unsqueeze(-1)], -1)).transpose(-1, -2)   # [E, n_in+1, N]
    rec_w = ((1.0 - alpha) * W).transpose(-1, -2)
    out_w, out_b = W_out.transpose(-1, -2), b_out.unsqueeze(-2)
    states = x.new_empty((T, E, B, N))
    rates = x.new_empty((T + 1, E, B, N))
    outputs = x.new_empty((T, E, B, O))
    relu = f is torch.relu
    rates[0] = f(h0)
    h = h0
    for t in range(T):
        h = torch.baddbmm(h, xe[t], drive_w, beta=alpha, out=states[t])
        h.baddbmm_(rates[t], rec_w)
        if noise is not None:
            h.add_(noise[t])
        if relu:
            torch.clamp_min(h, 0.0, out=rates[t + 1])
        else:
            rates[t + 1] = f(h)
        torch.baddbmm(out_b, rates[t + 1], out_w, out=outputs[t])
    return states, rates, outputs


def _check_width(x, W_in) -> None:
    """One step's input ``[.., B, n_inputs]`` must have the network's width (a one-line ValueError,
    not a matmul error from inside torch)."""
    if x.shape[-1:] != W_in.shape[-1:]:
        raise ValueError(f"an input of width {x.shape[-1] if x.dim() else 0} reached a network with n_inputs = "
                         f"{W_in.shape[-1]} (one step takes [B, {W_in.shape[-1]}], got shape {tuple(x.shape)})")


def _with_ones(x: torch.Tensor) -> torch.Tensor:
    """``[x | 1]``: the input with the bias's constant column."""
    return torch.cat([x, torch.ones_like(x[..., :1])], -1)


def _adjoint(x, states, rates, back_w, read_w, g_outputs, g_states, g_rates, alpha, eprop, k, f, fprime):
    """λ[t] and the unscaled sums ``Σ λᵀ r``, ``Σ λᵀ [x | 1]``, ``Σ g_yᵀ r`` by PyTorch ops
    (the recursion of ``_Rollout``'s docstring, one step at a time)."""
    relu = f is torch.relu
    T = states.shape[0]
    xe = _with_ones(x)
    lam = torch.empty_like(states)
    g_rec = states.new_zeros(back_w.shape)
    g_drive = states.new_zeros(back_w.shape[:-1] + (xe.shape[-1],))
    g_out = states.new_zeros(read_w.shape)
    nxt = None
    for t in range(T - 1, -1, -1):
        linked = nxt is not None and not (k and (t + 1) % k == 0)
        g = None if g_outputs is None else torch.bmm(g_outputs[t], read_w)
        if linked and not eprop:
            g = torch.bmm(nxt, back_w) if g is None else g.baddbmm_(nxt, back_w)
        if g_rates is not None:
            g = g_rates[t] if g is None else g.add_(g_rates[t])
        lam_t = lam[t]
        if g is None:
            lam_t.zero_()
        elif relu:
            torch.ops.aten.threshold_backward.grad_input(g, states[t], 0, grad_input=lam_t)
        else:
            torch.mul(g, fprime(states[t]), out=lam_t)
        if linked:
            lam_t.add_(nxt, alpha=alpha)
        if g_states is not None:
            lam_t.add_(g_states[t])
        g_rec.baddbmm_(lam_t.transpose(-1, -2), rates[t])
        g_drive.baddbmm_(lam_t.transpose(-1, -2), xe[t])
        if g_outputs is not None:
            g_out.baddbmm_(g_outputs[t].transpose(-1, -2), rates[t + 1])
        nxt = lam_t
    return lam, g_rec, g_drive, g_out


class _Rollout(torch.autograd.Function):
    """A whole run — recurrence and readout — as one op with the adjoint written out (BPTT).

    With ``λ[t] = ∂L/∂h[t+1]`` and ``g[t] = ∂L/∂r[t+1]`` from outside the recurrence
    (the readout, through ``W_out`` or a fixed feedback matrix; any use of the rates):

        λ[t] = ∂L/∂states[t] + f'(h[t+1]) ⊙ (g[t] + (1-α) λ[t+1] W_rec) + α λ[t+1]
        ∂L/∂W_rec = (1-α) Σ_t λ[t]ᵀ r[t],   ∂L/∂[W_in | b] = (1-α) Σ_t λ[t]ᵀ [x[t] | 1]

    ``eprop`` drops the ``λ W_rec`` term (e-prop / RFLO: only the leak carries credit
    back in time; Bellec et al. 2020, Murray 2019); ``detach_every = k`` cuts both
    terms where the state entering step t = k, 2k, … was detached (truncated BPTT).
    Weight gradients accumulate per step in place, so nothing of size ``T·E·B·N`` is
    copied or reshaped.  Runs in the compiled kernel (``rate_kernel``) where it applies,
    else on PyTorch ops; both equal autograd through ``rate_step`` (tests hold this for
    single networks and ensembles) at a fraction of its cost.
    """

    @staticmethod
    def forward(ctx, x, W, W_in, b, W_out, b_out, h0, noise, feedback, alpha, f, fprime, eprop, detach_every):
        states, rates, outputs = _rollout_forward(x, W, W_in, b, W_out, b_out, h0, noise, alpha, f)
        ctx.set_materialize_grads(False)       # unused outputs get None, not a zero-filled [T, E, B, N]
        # states is an output: saved as one (holding it on ctx would make a reference cycle through
        # its grad_fn, and each iteration's buffers would wait for the garbage collector)
        ctx.save_for_backward(x, W, W_in, W_out, h0, feedback, states)
        ctx.rates = rates
        ctx.alpha, ctx.f, ctx.fprime, ctx.eprop, ctx.detach_every = alpha, f, fprime, eprop, detach_every
        return states, rates[1:], outputs

    @staticmethod
    def backward(ctx, g_states, g_rates, g_outputs):
        x, W, W_in, W_out, h0, feedback, states = ctx.saved_tensors
        a, k, eprop = ctx.alpha, ctx.detach_every, ctx.eprop
        back_w = (1.0 - a) * W
        read_w = W_out if feedback is None else feedback.transpose(-1, -2)      # [E, O, N]
        if rate_kernel.usable(x, W, ctx.f):
            lam, g_rec, g_drive, g_out = rate_kernel.adjoint(x, states, ctx.rates, back_w, read_w, g_outputs,
                                                             g_states, g_rates, a, eprop, k)
        else:
            lam, g_rec, g_drive, g_out = _adjoint(x, states, ctx.rates, back_w, read_w, g_outputs, g_states,
                                                  g_rates, a, eprop, k, ctx.f, ctx.fprime)
        grad_h0 = None
        if ctx.needs_input_grad[6] and not k:
            grad_h0 = a * lam[0]
            if not eprop:
                fp = ctx.fprime(h0)
                grad_h0 = grad_h0 + fp * torch.bmm(lam[0], back_w)
        grad_x = torch.matmul(lam, W_in) * (1.0 - a) if ctx.needs_input_grad[0] else None
        grad_noise = lam if ctx.needs_input_grad[7] else None
        g_drive = (1.0 - a) * g_drive
        grad_b_out = None if g_outputs is None else g_outputs.sum((0, 2))
        return (grad_x, (1.0 - a) * g_rec, g_drive[..., :-1], g_drive[..., -1], g_out, grad_b_out, grad_h0,
                grad_noise, None, None, None, None, None, None)


class RateNetwork(Connectivity):
    """A compiled rate network (connectivity, masks and Dale signs: ``neuro.connectivity``)."""

    backend = "rate"
    neuron_model = "rate"
    provides = frozenset({"runs", "differentiable", "truncatable", "local", "steppable", "online", "rate_map"})
    extra_decay = 0.0     # an ``advance`` extra current enters the state directly

    def __init__(self, spec: NetworkSpec, weights: Weights, dtype=torch.float32, device="cpu"):
        if spec.neuron.model != "rate":
            raise ValueError(f"backend 'rate' needs populations[0].neuron.model = 'rate', got "
                             f"{spec.neuron.model!r}; use backend='lif' for spiking neurons")
        super().__init__(spec, weights, dtype, device)
        self.alpha = spec.alpha
        self.f = activation(spec.neuron.activation)
        self.fprime = derivative(spec.neuron.activation)
        self.fused = True   # run() through _Rollout (hand-written backward); False = step-by-step autograd
        self.noise_scale = math.sqrt(2.0 * (1.0 - self.alpha)) * spec.neuron.noise_std
        self.noise_source = None   # a callable (shape, generator) -> noise replacing the Gaussian draw

    @property
    def state_size(self) -> int:
        return self.n_hidden

    # -- dynamics --------------------------------------------------------------
    def initial_state(self, batch_size: int) -> torch.Tensor:
        lead = self.W_rec.shape[:-2]
        return torch.zeros(*lead, batch_size, self.n_hidden, dtype=self.W_rec.dtype, device=self.W_rec.device)

    def step(self, h: torch.Tensor, x: torch.Tensor, params: dict | None = None) -> torch.Tensor:
        """The noise-free one-step map ``h[t] → h[t+1]`` (for Lyapunov analysis)."""
        p = self.effective() if params is None else params
        _check_width(x, p["W_in"])
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
        _check_width(x, p["W_in"])
        drive = _matvec(p["W_in"], x) + _vec(p["b"])
        if extra is not None:
            drive = drive + extra
        return rate_step(state, drive, p["W_rec"], self.alpha, self.f)

    def activity(self, state: torch.Tensor) -> torch.Tensor:
        """What the readout reads from a state: ``f(h)``."""
        return self.f(state)

    def potential(self, state: torch.Tensor) -> torch.Tensor:
        """The unit's potential (here ``h``), whose fluctuations reward-modulated Hebbian rules use."""
        return state

    def online_start(self, batch_size: int, init_std: float, generator: torch.Generator):
        """A random start for online rules: ``h ~ N(0, init_std²)`` (Sussillo & Abbott 2009's code),
        and no extra current for the first step."""
        shape = self.init_state(batch_size).shape
        return init_std * torch.randn(shape, generator=generator, dtype=self.W_rec.dtype), None

    def readout(self, rates: torch.Tensor, params: dict | None = None, feedback: torch.Tensor | None = None):
        return _readout(rates, self.effective() if params is None else params, feedback)

    def sample_noise(self, shape, generator: torch.Generator | None = None) -> torch.Tensor | None:
        """Hidden noise of ``shape`` (None for a noise-free network); ``noise_source``, when set,
        draws it instead (an ensemble gives each member its own generator)."""
        if self.noise_source is not None:
            return self.noise_source(shape, generator)
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
        self.check_inputs(inputs)
        inputs = inputs.to(dtype=self.W_rec.dtype, device=self.W_rec.device)
        p = self.effective()
        T, batch = inputs.shape[0], inputs.shape[-2]
        h = self.initial_state(batch) if h0 is None else h0
        if noise is None:
            noise = self.sample_noise((T,) + tuple(h.shape), generator)
        extra = {"noise": noise} if noise is not None else {}
        if self.fused:
            fused = self._run_fused(inputs, h, noise, p, detach_recurrent, detach_every, feedback)
            if fused is not None:
                return Trajectory(*fused, extra=extra)
        drive = _matvec(p["W_in"], inputs) + _vec(p["b"])
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
        return Trajectory(states=states, rates=rates, outputs=self.readout(rates, p, feedback), extra=extra)

    def check_inputs(self, inputs, what: str = "inputs") -> None:
        """Refuse, in one line, inputs that do not fit (``neuro.checks.check_inputs``)."""
        check_inputs(inputs, self.W_in.shape[-1], tuple(self.W_rec.shape[:-2]), what)

    def _run_fused(self, inputs, h, noise, p, detach_recurrent, detach_every, feedback):
        """``run`` through ``_Rollout`` on ``[T, E, B, ·]`` views (a single network is E = 1, and
        extra leading input dimensions of a single network join the batch); None where the
        shapes do not fit that form (the step-by-step loop handles them)."""
        lead = tuple(p["W_rec"].shape[:-2])
        T, B, N = inputs.shape[0], inputs.shape[-2], self.n_hidden
        x_lead = tuple(inputs.shape[1:-2])
        if lead and x_lead != lead:
            return None
        E = math.prod(lead)
        rows = math.prod(x_lead) * B if not lead else B                       # batch rows per member
        try:
            h = h.expand(*(lead or x_lead), B, N)
        except RuntimeError:
            return None
        view = lambda w, *tail: w.reshape(E, *tail)
        x = inputs.reshape(T, E, rows, inputs.shape[-1])
        args = (view(p["W_rec"], N, N), view(p["W_in"], N, -1), view(p["b"], N), view(p["W_out"], -1, N),
                view(p["b_out"], -1), h.reshape(E, rows, N),
                None if noise is None else noise.reshape(T, E, rows, N))
        fb = None if feedback is None else feedback.expand(*lead, *feedback.shape[-2:]).reshape(E, N, -1)
        if torch.is_grad_enabled():
            states, rates, outputs = _Rollout.apply(x, *args, fb, self.alpha, self.f, self.fprime,
                                                    detach_recurrent, detach_every)
        else:
            states, rates, outputs = _rollout_forward(x, *args, self.alpha, self.f)
            rates = rates[1:]
        shape = (T,) + (lead or x_lead) + (B,)
        return states.view(*shape, N), rates.view(*shape, N), outputs.view(*shape, -1)

"""ModProp (Liu, Ghosh, Yang, Shea-Brown & Dale-Lab, NeurIPS 2022, "Biologically-plausible
backpropagation through arbitrary timespans via local neuromodulators") on the rate RNN.

e-prop keeps only the local (leak) path of the credit; ModProp restores the
truncated non-local terms with two approximations (the data-similarity paper's Eq. 9):

    ΔW_ij ∝ I_i e_ij + (Σ_α (Σ_{l∈α} I_l h'_l) F_αβ) ∗ e_ij,     F_αβ,s = μ^{s-1} (W^s)_αβ,

1. credit travels between *cell types*, not cells: the recurrent weights in the
   backward pass are replaced by their type-averaged blocks ``W_ab`` (the mean of
   ``W_rec`` over each (postsynaptic type, presynaptic type) block; types = Dale's
   E and I populations, the authors' ``MDGLpp_mode = 3``), so a cell receives the
   summed signal of each type (a neuromodulator) weighted per type pair;
2. the activation derivative of every *intermediate* cell along a multi-step path
   is replaced by the constant ``μ`` (0.25), so the signal can be processed by
   fixed temporal filter taps ``μ^{s-1} W_ab^s``; the receiving cell's own
   derivative ``h'_i`` (in its eligibility trace) stays exact.

We use all filter taps (the authors' default ``MDGL_buflen = -1``) and write the
sum over taps as a recursion.  With the adjoint ``λ[t] = ∂L/∂h[t+1]``, readout
error ``G[t] = f'(h[t+1]) ⊙ B δ[t]`` and ``M(v) = W_abᵀ v``:

    ν[t] = G[t] + α ν[t+1] + (1-α) μ M(ν[t+1])               (the modulatory signal)
    λ[t] = G[t] + α λ[t+1] + (1-α) f'(h[t+1]) ⊙ M(ν[t+1])    (what reaches unit i)

and ``∂L/∂W_rec ≈ (1-α) Σ_t λ[t] f(h[t])ᵀ`` (likewise ``W_in``, ``b``).  With
``weights="cell"`` (``W_ab = W_rec``) and ``mu=None`` (exact derivatives) the
recursions coincide and give BPTT exactly — a test holds this.  As in the paper,
ModProp needs Dale's law (types with signs) and ReLU units; it refuses otherwise.
"""
from __future__ import annotations

import torch

from .base import GradientRule, autograd_gradients, feedback_matrix


def type_matrix(signs: torch.Tensor) -> torch.Tensor:
    """One-hot cell types ``[N, 2]`` (excitatory, inhibitory) from Dale's signs."""
    return torch.stack([(signs > 0), (signs < 0)], -1).to(signs.dtype)


class _ModPropRecurrence(torch.autograd.Function):
    """``h[t+1] = α h[t] + (1-α)(W f(h[t]) + d[t]) + n[t]`` forward; ModProp's backward."""

    @staticmethod
    def forward(ctx, drive, W, h0, noise, alpha, f, fprime, mu, types):
        T = drive.shape[0]
        h = h0.expand(drive.shape[1:-1] + h0.shape[-1:])
        states = []
        for t in range(T):
            h = alpha * h + (1 - alpha) * (torch.matmul(f(h), W.transpose(-1, -2)) + drive[t])
            if noise is not None:
                h = h + noise[t]
            states.append(h)
        states = torch.stack(states)
        ctx.save_for_backward(W, h, states, types)
        ctx.h0 = h0
        ctx.alpha, ctx.f, ctx.fprime, ctx.mu = alpha, f, fprime, mu
        return states

    @staticmethod
    def backward(ctx, G):
        W, _, states, types = ctx.saved_tensors
        a, mu = ctx.alpha, ctx.mu
        h0 = ctx.h0.expand_as(states[0])
        prev = torch.cat([h0.unsqueeze(0), states[:-1]])               # h[t] entering step t
        if types.numel():                                              # W_ab: type-averaged blocks
            counts = types.sum(0)
            block = types.T @ W @ types / (counts.unsqueeze(-1) * counts)   # [.., K_post, K_pre]
            modulate = lambda v: torch.matmul(torch.matmul(v, types), block) @ types.T
        else:                                                          # cell-specific: W itself
            modulate = lambda v: torch.matmul(v, W)
        lam = torch.zeros_like(states)
        carry_lam, carry_nu = torch.zeros_like(states[0]), torch.zeros_like(states[0])
        for t in range(states.shape[0] - 1, -1, -1):
            lam[t] = G[t] + carry_lam
            nu = G[t] + carry_nu
            m = (1 - a) * modulate(nu)
            fp = ctx.fprime(prev[t])
            carry_lam = a * lam[t] + fp * m
            carry_nu = a * nu + (fp * m if mu is None else mu * m)
        rates = ctx.f(prev)
        grad_W = (1 - a) * torch.einsum("t...bi,t...bj->...ij", lam, rates)
        return (1 - a) * lam, grad_W.sum_to_size(W.shape), None, None, None, None, None, None, None


class ModProp(GradientRule):
    """``modprop``: ``mu`` = the intermediate activation-derivative constant (None: exact,
    for ablations); ``weights`` = ``"type"`` (cell-type averaged, ModProp) or ``"cell"``."""

    name = "modprop"
    needs = ("differentiable", "rate_map")

    def __init__(self, mu: float | None = 0.25, weights: str = "type"):
        if mu is not None and not (isinstance(mu, (int, float)) and mu >= 0):
            raise ValueError(f"modprop mu must be a number >= 0 (or None for exact derivatives), got {mu!r}")
        if weights not in ("type", "cell"):
            raise ValueError(f"modprop weights must be 'type' (cell-type averaged) or 'cell', got {weights!r}")
        self.mu, self.weights = (None if mu is None else float(mu)), weights

    def loss_and_gradients(self, net, batch, task, generator=None):
        self.require(net)
        spec = net.spec
        if not spec.dale.enabled or spec.neuron.activation != "relu":
            raise ValueError(f"modprop needs dale.enabled = true and activation 'relu' (Liu et al. 2022), got "
                             f"dale.enabled = {spec.dale.enabled}, activation {spec.neuron.activation!r}")
        inputs = batch.inputs.to(dtype=net.W_rec.dtype, device=net.W_rec.device)
        p = net.effective()
        h0 = net.initial_state(inputs.shape[-2])
        noise = net.sample_noise((inputs.shape[0],) + tuple(h0.shape), generator)
        drive = torch.matmul(inputs, p["W_in"].transpose(-1, -2)) + (p["b"].unsqueeze(-2) if p["b"].dim() > 1
                                                                     else p["b"])
        types = type_matrix(net.signs.reshape(-1)[: net.n_hidden]) if self.weights == "type" \
            else torch.zeros(0, dtype=inputs.dtype)
        states = _ModPropRecurrence.apply(drive, p["W_rec"], h0, noise, net.alpha, net.f, net.fprime, self.mu,
                                          types)
        outputs = net.readout(net.f(states), p, feedback_matrix(net))
        loss = task.loss(outputs, batch)
        return loss, outputs, autograd_gradients(loss.sum(), net)

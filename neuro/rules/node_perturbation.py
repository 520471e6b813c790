"""Node perturbation (Williams 1992; Fiete & Seung 2006) on the rate RNN.

The data-similarity paper's Eq. 10 (Liu, Yang & Cueva, Appendix B.4):

    ΔW_ij ∝ Σ_t Î_i[t] e_ij[t],      Î[t] = (L(h + ξ) - L(h)) ξ[t] / σ²,

with ξ[t] ~ N(0, σ² I) added to every hidden unit's state at every step.  ``Î[t]``
is an unbiased (to O(σ)) estimate of ``∂L/∂h[t+1]``; since ``h[t+1]`` depends on
``W_rec`` through ``(1-α) W_rec r[t]``, the weight update is
``(1-α) Σ_t Î[t] r[t]ᵀ`` (and likewise for ``W_in`` with ``x[t]``, for ``b`` with 1).

Each trial gets its own perturbation and its own loss difference (the task's
masked loss is a weighted sum of per-trial losses), so a batch of B trials gives B
independent estimates.  Clean and perturbed runs share the hidden-noise sample
(common random numbers).  Readout weights get their exact, local gradient, as in
the paper ("local learning rule approximations were applied to input and
recurrent weights", Appendix B.5).
"""
from __future__ import annotations

import torch

from neuro.connectivity import raw_gradients

from .base import GradientRule, autograd_gradients, feedback_matrix

HIDDEN = ("W_in", "W_rec", "b")


def per_trial_loss(task, outputs: torch.Tensor, batch) -> torch.Tensor:
    """Per-trial losses ``[..., B]`` whose sum is ``task.loss(outputs, batch)``.

    Each trial becomes its own ensemble member of batch size 1 (the Task loss keeps
    leading dimensions), weighted by its share of the scored steps.
    """
    targets, mask = batch.targets.to(outputs.device), batch.mask.to(outputs)
    lead = outputs.shape[1:-2]                                   # ensemble / sample dimensions
    while mask.dim() < 2 + len(lead):                            # mask [T, B] → [T, ..., B]
        mask = mask.unsqueeze(1)
    mask = mask.expand(outputs.shape[:-1])
    tshape = outputs.shape[:-1] + ((outputs.shape[-1],) if targets.is_floating_point() else ())
    if targets.dim() < len(tshape):
        extra = len(tshape) - targets.dim()
        targets = targets.reshape(targets.shape[:1] + (1,) * extra + targets.shape[1:])
    targets = targets.expand(tshape)
    split = type(batch)(batch.inputs, targets.unsqueeze(-1 if not targets.is_floating_point() else -2),
                        mask.unsqueeze(-1), batch.info)
    losses = task.loss(outputs.unsqueeze(-2), split)             # [T, ..., B, 1, o] → [..., B]
    share = mask.sum(0) / mask.sum(0).sum(-1, keepdim=True)
    return losses * share


def readout_gradients(net, rates: torch.Tensor, batch, task):
    """Loss, outputs and the exact readout gradients given (detached) hidden rates."""
    outputs = net.readout(rates.detach(), feedback=feedback_matrix(net))
    loss = task.loss(outputs, batch)
    return loss, outputs, autograd_gradients(loss.sum(), net)


def to_raw(net, effective_grads: dict, grads: dict) -> dict:
    """Chain gradients of effective (masked, Dale-signed) hidden weights to the raw parameters."""
    return raw_gradients(net, effective_grads, grads)


def hidden_outer(signal: torch.Tensor, pre: torch.Tensor) -> torch.Tensor:
    """``Σ_{t,b} signal[t, …, b, i] pre[t, …, b, j]`` → ``[…, i, j]``."""
    return torch.einsum("t...bi,t...bj->...ij", signal, pre)


class NodePerturbation(GradientRule):
    """``np``: node perturbation with perturbation size ``sigma`` (state units) and
    ``samples`` independent perturbations per trial averaged (the paper: 1)."""

    name = "np"
    needs = ("differentiable", "rate_map")

    def __init__(self, sigma: float = 0.01, samples: int = 1):
        if not (isinstance(sigma, (int, float)) and sigma > 0):
            raise ValueError(f"np sigma must be a number > 0, got {sigma!r}")
        if not isinstance(samples, int) or samples < 1:
            raise ValueError(f"np samples must be an integer >= 1, got {samples!r}")
        self.sigma, self.samples = float(sigma), samples

    def loss_and_gradients(self, net, batch, task, generator=None):
        self.require(net)
        inputs = batch.inputs.to(dtype=net.W_rec.dtype, device=net.W_rec.device)
        lead = net.W_rec.shape[:-2]
        shape = (inputs.shape[0],) + tuple(lead) + (inputs.shape[-2], net.n_hidden)
        noise = net.sample_noise(shape, generator)
        base = torch.zeros(shape, dtype=inputs.dtype, device=inputs.device) if noise is None else noise
        with torch.no_grad():
            clean = net.run(inputs, noise=base)
            clean_loss = per_trial_loss(task, clean.outputs, batch)
            estimate = torch.zeros(shape, dtype=inputs.dtype, device=inputs.device)
            for _ in range(self.samples):
                xi = self.sigma * torch.randn(shape, generator=generator, dtype=inputs.dtype, device=inputs.device)
                perturbed = net.run(inputs, noise=base + xi).outputs
                delta = per_trial_loss(task, perturbed, batch) - clean_loss          # [..., B]
                estimate += delta.unsqueeze(-1) * xi / self.sigma ** 2
            estimate /= self.samples                                             # Î[t] ≈ ∂L/∂h[t+1]
            prev = torch.cat([net.initial_state(inputs.shape[-2]).unsqueeze(0), clean.states[:-1]])
            c = 1.0 - net.alpha
            effective = {"W_rec": c * hidden_outer(estimate, net.f(prev)),
                         "W_in": c * hidden_outer(estimate, inputs.expand(shape[:-1] + inputs.shape[-1:])),
                         "b": c * estimate.sum(0).sum(-2)}
        loss, outputs, grads = readout_gradients(net, clean.rates, batch, task)
        return loss, outputs, to_raw(net, {k: v for k, v in effective.items() if k in HIDDEN}, grads)

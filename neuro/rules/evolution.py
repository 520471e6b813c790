"""Evolution strategies (Salimans et al. 2017) on the rate RNN.

The data-similarity paper's Eq. 11 (Liu, Yang & Cueva, Appendix B.4):

    ΔW ∝ 1/(σ S) Σ_s L⁽ˢ⁾ ε⁽ˢ⁾,      ε⁽ˢ⁾ ~ N(0, I),

where ``L⁽ˢ⁾`` is the loss with the parameters perturbed by ``σ ε⁽ˢ⁾``; S = 50.
We use antithetic (mirrored) sampling, ``S/2`` pairs ``±ε``:
``g = 1/(σ S) Σ_pairs (L(θ + σε) - L(θ - σε)) ε``, the same estimator in
expectation with far less variance.  The S perturbed networks run as one batched
forward pass (a leading sample dimension on the weights); all share the task
batch and the hidden-noise sample.  The perturbed parameters are the effective
input and recurrent weights (and bias), with perturbations confined to existing
synapses (the sparsity mask); the estimate is chained to the raw parameters (Dale's
magnitudes).  Readout weights get their exact, local gradient (Appendix B.5).
"""
from __future__ import annotations

import torch

from .base import GradientRule
from .node_perturbation import HIDDEN, readout_gradients, to_raw


def _expand_batch(batch, samples: int):
    """The batch with a sample dimension after time, so ``task.loss`` returns one loss per sample."""
    exp = lambda x: x.unsqueeze(1).expand((x.shape[0], samples) + tuple(x.shape[1:]))
    return type(batch)(exp(batch.inputs), exp(batch.targets), exp(batch.mask), batch.info)


def perturbed_outputs(net, inputs: torch.Tensor, params: dict, noise: torch.Tensor | None) -> torch.Tensor:
    """Outputs ``[T, S, …, B, n_out]`` of the networks whose parameters carry a leading sample
    dimension (``params`` as ``net.effective()`` gives them); no graph is built."""
    S = params["W_rec"].shape[0]
    state = net.initial_state(inputs.shape[-2]).expand((S,) + net.initial_state(inputs.shape[-2]).shape)
    outputs = []
    with torch.no_grad():
        for t in range(inputs.shape[0]):
            state = net.advance(state, inputs[t], params=params)
            if noise is not None:
                state = state + noise[t]
            outputs.append(net.readout(net.activity(state), params))
    return torch.stack(outputs)


class EvolutionStrategies(GradientRule):
    """``es``: ``samples`` perturbations (even: ``samples/2`` antithetic pairs) of size ``sigma``."""

    name = "es"
    needs = ("differentiable", "rate_map")

    def __init__(self, samples: int = 50, sigma: float = 0.01):
        if not isinstance(samples, int) or samples < 2 or samples % 2:
            raise ValueError(f"es samples must be an even integer >= 2 (antithetic pairs), got {samples!r}")
        if not (isinstance(sigma, (int, float)) and sigma > 0):
            raise ValueError(f"es sigma must be a number > 0, got {sigma!r}")
        self.samples, self.sigma = samples, float(sigma)

    def loss_and_gradients(self, net, batch, task, generator=None):
        self.require(net)
        inputs = batch.inputs.to(dtype=net.W_rec.dtype, device=net.W_rec.device)
        lead = tuple(net.W_rec.shape[:-2])
        noise = net.sample_noise((inputs.shape[0],) + lead + (inputs.shape[-2], net.n_hidden), generator)
        trainable = net.trainable()
        names = [k for k in HIDDEN if k in trainable]
        masks = {"W_rec": net.mask_rec, "W_in": net.mask_in}
        pairs = self.samples // 2
        with torch.no_grad():
            eff = {k: v.detach() for k, v in net.effective().items()}
            eps = {}
            for k in names:
                e = torch.randn((pairs,) + tuple(eff[k].shape), generator=generator, dtype=eff[k].dtype,
                                device=eff[k].device)
                eps[k] = e * masks[k] if k in masks else e
            params = {}
            for k, v in eff.items():
                if k in eps:
                    params[k] = torch.cat([v + self.sigma * eps[k], v - self.sigma * eps[k]])
                else:
                    params[k] = v.expand((self.samples,) + tuple(v.shape))
            outputs = perturbed_outputs(net, inputs, params, noise)
            losses = task.loss(outputs, _expand_batch(batch, self.samples))        # [S, …]
            diff = losses[:pairs] - losses[pairs:]                                  # [pairs, …]
            effective = {}
            for k in names:
                d = diff.reshape(diff.shape + (1,) * (eps[k].dim() - diff.dim()))
                effective[k] = (d * eps[k]).sum(0) / (self.sigma * self.samples)
            clean = net.run(inputs, noise=noise)
        loss, outputs, grads = readout_gradients(net, clean.rates, batch, task)
        return loss, outputs, to_raw(net, effective, grads)

"""The learning-rule interface.

Gradient rules implement ``loss_and_gradients(net, batch, task)`` and get
``gradients`` for free; they only use the model's public surface (``run``,
``effective``, ``trainable``, ``readout``), never backend internals, and declare the
capabilities of ``neuro.contract`` they use in ``needs``.  Online
rules (FORCE, full-FORCE, reward-modulated Hebbian) implement ``fit`` instead
and drive the step loop themselves.
"""
from __future__ import annotations

import torch

from neuro.contract import require_rule


class GradientRule:
    name = "gradient"
    online = False
    needs: tuple = ("differentiable",)     # capabilities of ``neuro.contract`` the rule uses

    def require(self, net) -> None:
        """Refuse, in one line naming both, a network that does not provide what this rule needs."""
        require_rule(self, net)

    def loss_and_gradients(self, net, batch, task, generator=None):
        """Return ``(loss tensor, outputs, {param name: gradient})``."""
        raise NotImplementedError

    def gradients(self, net, batch, task, generator=None) -> dict[str, torch.Tensor]:
        return self.loss_and_gradients(net, batch, task, generator)[2]

    def __repr__(self):
        opts = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({opts})"


def autograd_gradients(loss: torch.Tensor, net) -> dict[str, torch.Tensor]:
    """Gradients of ``loss`` for every trainable parameter (zeros where it does not depend on one)."""
    params = net.trainable()
    grads = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
    return {k: (torch.zeros_like(p) if g is None else g) for (k, p), g in zip(params.items(), grads)}


def feedback_matrix(net):
    """The fixed random feedback matrix if the spec asks for one, else None (use W_outᵀ)."""
    return net.B if net.spec.feedback.kind == "random" else None

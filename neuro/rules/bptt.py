"""Backpropagation through time, full and truncated."""
from __future__ import annotations

from .base import GradientRule, autograd_gradients


class BPTT(GradientRule):
    """Exact gradient of the task loss by reverse-mode autodiff through all time steps."""

    name = "bptt"
    needs = ("differentiable",)

    def loss_and_gradients(self, net, batch, task, generator=None):
        self.require(net)
        traj = net.run(batch.inputs, generator=generator)
        loss = task.loss(traj.outputs, batch)
        return loss, traj.outputs, autograd_gradients(loss.sum(), net)


class TruncatedBPTT(GradientRule):
    """BPTT whose backward pass is cut every ``k`` steps (the state is detached at
    ``t = 0, k, 2k, …``), as in Williams & Peng 1990's TBPTT(k, k)."""

    name = "tbptt"
    needs = ("truncatable",)

    def __init__(self, k: int = 10):
        if not isinstance(k, int) or k < 1:
            raise ValueError(f"tbptt window k must be an integer >= 1, got {k!r}")
        self.k = k

    def loss_and_gradients(self, net, batch, task, generator=None):
        self.require(net)
        traj = net.run(batch.inputs, generator=generator, detach_every=self.k)
        loss = task.loss(traj.outputs, batch)
        return loss, traj.outputs, autograd_gradients(loss.sum(), net)

"""The linear readout every backend shares, ``y = W_out r + b_out``, and its feedback-alignment form."""
from __future__ import annotations

import torch


def matvec(W: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``W v`` for batched row vectors: W ``[..., M, K]``, v ``[..., B, K]`` → ``[..., B, M]``."""
    return torch.matmul(v, W.transpose(-1, -2))


def as_row(b: torch.Tensor) -> torch.Tensor:
    """A bias ``[..., N]`` broadcastable against ``[..., B, N]``."""
    return b.unsqueeze(-2) if b.dim() > 1 else b


class FeedbackReadout(torch.autograd.Function):
    """``y = r W_outᵀ + b_out`` whose backward sends the error to ``r`` through a fixed
    matrix ``B`` instead of ``W_outᵀ`` (feedback alignment); weight gradients exact."""

    @staticmethod
    def forward(ctx, r, W_out, b_out, B):
        ctx.save_for_backward(r, B)
        return matvec(W_out, r) + as_row(b_out)

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


def readout(rates: torch.Tensor, params: dict, feedback: torch.Tensor | None = None) -> torch.Tensor:
    """``W_out r + b_out`` from effective ``params``; with ``feedback`` the error reaches ``r``
    through that fixed matrix (``FeedbackReadout``)."""
    if feedback is not None:
        return FeedbackReadout.apply(rates, params["W_out"], params["b_out"], feedback)
    return matvec(params["W_out"], rates) + as_row(params["b_out"])

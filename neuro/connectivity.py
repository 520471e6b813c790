"""Trainable connectivity shared by every torch backend (rate, LIF).

Parameters hold raw values; ``effective()`` applies the fixed sparsity masks and
Dale's signs (``W = |W̃| · diag(signs)``, Song, Yang & Wang 2016), so both hold
through any training.  Optional extra recurrent matrices (the LIF backend's slow
current ``W_slow``) follow the recurrent connection's mask, signs and flag.
"""
from __future__ import annotations

import numpy as np
import torch

from .spec import NetworkSpec
from .weights import Weights


class Connectivity(torch.nn.Module):
    def __init__(self, spec: NetworkSpec, weights: Weights, dtype=torch.float32, device="cpu",
                 extra_recurrent: tuple[str, ...] = ()):
        super().__init__()
        self.spec = spec
        self.dale = spec.dale.enabled
        t = lambda a: torch.as_tensor(np.asarray(a), dtype=dtype, device=device)
        mag = (lambda a: np.abs(a)) if self.dale else (lambda a: a)
        P = torch.nn.Parameter
        self.W_in = P(t(mag(weights.W_in)), requires_grad=spec.input.trainable)
        self.W_rec = P(t(mag(weights.W_rec)), requires_grad=spec.recurrent.trainable)
        self.W_out = P(t(mag(weights.W_out)), requires_grad=spec.readout.trainable)
        self.b = P(t(weights.b), requires_grad=spec.input.bias and spec.input.trainable)
        self.b_out = P(t(weights.b_out), requires_grad=spec.readout.bias and spec.readout.trainable)
        self.extra_recurrent = extra_recurrent
        for name in extra_recurrent:
            if name not in weights.extra:
                raise ValueError(f"weights.extra[{name!r}] is missing; this spec needs it "
                                 f"(init_weights draws it for such specs)")
            setattr(self, name, P(t(mag(weights.extra[name])), requires_grad=spec.recurrent.trainable))
        self.register_buffer("mask_in", t(weights.mask_in))
        self.register_buffer("mask_rec", t(weights.mask_rec))
        self.register_buffer("mask_out", t(weights.mask_out))
        self.register_buffer("signs", None if weights.signs is None else t(weights.signs))
        self.register_buffer("B", None if weights.B is None else t(weights.B))

    def trainable(self) -> dict[str, torch.nn.Parameter]:
        return {k: p for k, p in self.named_parameters() if p.requires_grad}

    def _recurrent(self, W: torch.Tensor) -> torch.Tensor:
        return (W.abs() * self.signs.unsqueeze(-2) if self.dale else W) * self.mask_rec

    def effective(self) -> dict[str, torch.Tensor]:
        """Signed, masked weights as the dynamics use them (differentiable in the raw ones)."""
        if self.dale:
            W_in, W_out = self.W_in.abs() * self.mask_in, self.W_out.abs() * self.mask_out
        else:
            W_in, W_out = self.W_in * self.mask_in, self.W_out * self.mask_out
        out = {"W_in": W_in, "W_rec": self._recurrent(self.W_rec), "W_out": W_out, "b": self.b, "b_out": self.b_out}
        for name in self.extra_recurrent:
            out[name] = self._recurrent(getattr(self, name))
        return out

    def weights(self) -> Weights:
        """The current effective weights as numpy arrays (to move to another backend)."""
        e = {k: v.detach().cpu().double().numpy() for k, v in self.effective().items()}
        n = lambda x: None if x is None else x.detach().cpu().double().numpy()
        return Weights(W_in=e["W_in"], W_rec=e["W_rec"], W_out=e["W_out"], b=e["b"], b_out=e["b_out"],
                       mask_in=n(self.mask_in), mask_rec=n(self.mask_rec), mask_out=n(self.mask_out),
                       signs=n(self.signs), B=n(self.B), extra={k: e[k] for k in self.extra_recurrent})

    def set_weight(self, name: str, value: torch.Tensor) -> None:
        """Write an *effective* weight (``W_in``, ``W_rec``, ``W_out``, ``b``, ``b_out``, extras);
        masks and Dale signs are re-imposed (entries of the wrong sign become 0)."""
        param = getattr(self, name)
        value = torch.as_tensor(value, dtype=param.dtype, device=param.device)
        recurrent = name == "W_rec" or name in self.extra_recurrent
        mask = self.mask_rec if recurrent else {"W_in": self.mask_in, "W_out": self.mask_out}.get(name)
        if mask is not None:
            value = value * mask
        if self.dale and mask is not None:
            sign = self.signs.unsqueeze(-2) if recurrent else 1.0
            value = torch.clamp(value * sign, min=0.0)
        with torch.no_grad():
            param.copy_(value)

    @property
    def n_hidden(self) -> int:
        return self.W_rec.shape[-1]


def raw_gradients(net, effective_grads: dict, grads: dict | None = None) -> dict:
    """Chain gradients of the effective (masked, Dale-signed) weights to the raw parameters of
    ``net.trainable()``; parameters without an entry keep ``grads``' value (or get none)."""
    grads = {} if grads is None else grads
    params, eff = net.trainable(), net.effective()
    keys = [k for k in params if k in effective_grads]
    if keys:
        raw = torch.autograd.grad([eff[k] for k in keys], [params[k] for k in keys],
                                  grad_outputs=[effective_grads[k] for k in keys], allow_unused=True)
        for k, g in zip(keys, raw):
            grads[k] = torch.zeros_like(params[k]) if g is None else g
    return grads

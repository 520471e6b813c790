"""Gradient flossing (Engelken, NeurIPS 2023): push Lyapunov exponents toward 0.

The flossing loss ``Σ_{i≤k} λ_i²`` is differentiated through the QR decompositions
of the tangent dynamics: ``J_t(W) Q_t = Q_{t+1} R_{t+1}``, ``λ_i = (1/T) Σ_t log|R_t,ii|``
(QR every step, as in Engelken's code; his code averages over k instead of summing,
which only rescales the learning rate; his minimal PyTorch example applies 1/cosh²
to a value that is already tanh'd and does not divide λ by T — neither flaw is here).

``local=True`` is the locality constraint of e-prop that the initialization paper
uses for flossing pretraining (``hidden.detach()``): the state trajectory h_t is
computed without gradient, so W is credited only through each step's explicit
Jacobian ``J_t = α I + (1-α) W diag f'(h_t)`` at the fixed states h_t (and through the
chain of tangent vectors Q_t, which are the Jacobians' own products).  What is
truncated is exactly the dependence of the states h_t — hence of f'(h_t) — on W.
``local=False`` keeps it: the full gradient.
"""
from __future__ import annotations

import torch
from tqdm.auto import tqdm

from .lyapunov import _input, _setup
from .rules.base import GradientRule


def _jvp(model, h, x, V, params):
    if hasattr(model, "jacobian_vp"):
        return model.jacobian_vp(h, V, params)
    step = lambda hh: model.step(hh, x, params)
    return torch.func.vmap(lambda v: torch.func.jvp(step, (h,), (v,))[1], in_dims=-1, out_dims=-1)(V)


def flossing_loss(model, inputs=None, k: int | None = 16, local: bool = True, steps: int | None = None,
                  batch_size: int = 1, h0=None, warmup: int = 0, seed: int = 0):
    """Differentiable ``Σ_{i≤k} λ_i²`` (mean over trajectories) and the exponents ``λ [B, k]``."""
    n = model.n_hidden
    k = min(16, n) if k is None else k
    params = model.effective()
    inputs, T, h, Q = _setup(model, inputs, steps, batch_size, h0, k, seed, None)
    if warmup >= T:
        raise ValueError(f"warmup ({warmup}) must be shorter than the trajectory ({T} steps)")
    logs = 0.0
    for t in range(T):
        x = _input(model, inputs, t, h)
        if t < warmup:          # align the tangent vectors; no credit
            with torch.no_grad():
                Q = torch.linalg.qr(_jvp(model, h, x, Q, params))[0]
                h = model.step(h, x, params)
            continue
        Q, R = torch.linalg.qr(_jvp(model, h, x, Q, params))
        logs = logs + torch.log(torch.diagonal(R, dim1=-2, dim2=-1).abs())
        if local:
            with torch.no_grad():
                h = model.step(h, x, params)
        else:
            h = model.step(h, x, params)
    lam = logs / (T - warmup)
    return (lam ** 2).sum(-1).mean(), lam


def _inputs_for(inputs, it: int, batch_size: int, seed: int):
    """Fixed inputs, or a fresh batch from a Task each iteration."""
    if inputs is None or torch.is_tensor(inputs):
        return inputs
    return inputs.batch(batch_size, seed=(seed, 77_777 + it)).inputs


def floss(model, steps: int = 100, k: int | None = 16, local: bool = True, lr: float = 1e-3, inputs=None,
          T: int = 100, batch_size: int = 8, warmup: int = 0, seed: int = 0, progress: bool = True) -> dict:
    """Flossing pretraining: ``steps`` Adam updates of the model's trainable parameters on the
    flossing loss.  ``inputs``: a tensor ``[T, B, n_in]``, a Task (a fresh batch every step),
    or None (autonomous runs of ``T`` steps from random states).  Returns the history of the
    loss and of the max exponent (per time step)."""
    if not (isinstance(steps, int) and steps >= 0):
        raise ValueError(f"flossing steps must be an integer >= 0, got {steps!r}")
    params = [p for p in model.trainable().values()]
    opt = torch.optim.Adam(params, lr=lr)
    history = {"loss": [], "max_exponent": []}
    for it in tqdm(range(steps), disable=not progress, desc="flossing", leave=False, mininterval=1.0):
        x = _inputs_for(inputs, it, batch_size, seed)
        loss, lam = flossing_loss(model, x, k=k, local=local, steps=T, batch_size=batch_size, warmup=warmup,
                                  seed=seed * 1_000_003 + it)
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        for p, g in zip(params, grads):
            p.grad = None if g is None else g
        opt.step()
        history["loss"].append(float(loss.detach()))
        history["max_exponent"].append(float(lam.detach().max(-1).values.mean()))
    return history


class FlossingRegularized(GradientRule):
    """Any gradient rule plus ``weight ×`` the flossing gradient every ``every`` iterations
    (flossing interleaved with task training, Engelken 2023), local or not."""

    def __init__(self, rule, weight: float = 1.0, every: int = 1, k: int | None = 16, local: bool = True):
        if every < 1:
            raise ValueError(f"every must be an integer >= 1, got {every!r}")
        self.rule, self.weight, self.every, self.k, self.local = rule, weight, every, k, local
        self.name = f"{getattr(rule, 'name', 'rule')}+floss"
        self._count = 0

    def loss_and_gradients(self, net, batch, task, generator=None):
        loss, outputs, grads = self.rule.loss_and_gradients(net, batch, task, generator)
        self._count += 1
        if self._count % self.every == 0:
            fl, _ = flossing_loss(net, batch.inputs, k=self.k, local=self.local)
            params = net.trainable()
            extra = torch.autograd.grad(fl, list(params.values()), allow_unused=True)
            for (name, _), g in zip(params.items(), extra):
                if g is not None:
                    grads[name] = grads[name] + self.weight * g
        return loss, outputs, grads

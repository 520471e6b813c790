"""Gradient flossing (Engelken, NeurIPS 2023): push Lyapunov exponents toward 0.

The flossing loss is ``L = Σ_{i≤k} λ_i²`` (the initialization paper's Appendix
equation; ``reduction="mean"`` gives ``(1/k) Σ λ_i²`` as in Engelken's code —
with Adam the two differ only in the regularizer's effective weight), with
``λ_i = (1/T) Σ_t log |R_t,ii|`` from the QR decompositions of the tangent
dynamics ``J_t(W) Q_t = Q_{t+1} R_{t+1}`` (QR every step), differentiated
through ``torch.linalg.qr``.  The loss is averaged over the batch of
trajectories and summed over ensemble members (whose parameters are separate).

Jacobians are taken in state coordinates, ``J_t = α I + (1-α) W_rec diag f'(h_t)``
for the rate network; Engelken's code flosses the rate-coordinate Jacobian,
which has the same exponents for long T.  Two flaws of his minimal PyTorch
example are absent here: it applies 1/cosh² to a value that is already tanh'd
(so f' is evaluated at the wrong point), and it does not divide Σ log|R_ii| by T.

What ``local`` truncates
------------------------
``local=True`` is the locality constraint of the initialization paper (Liu,
Zhang & Liu, Appendix: ``hidden.detach()`` "also applied when pretraining via
gradient flossing"): the states h_t are computed without autograd, so the loss
reaches W only through each step's explicit Jacobian ``J_t(W)`` evaluated at the
fixed states h_t — including the tangent vectors Q_t, which are products of
earlier Jacobians and keep their graph.  Dropped is exactly the dependence of
the states h_t (hence of f'(h_t)) on W, W_in and b: ``∂L/∂h_t · ∂h_t/∂W``.  So
W_in and b get no flossing gradient in local mode.  ``local=False`` keeps it: the
exact gradient of L.  For piecewise-linear f (ReLU, the paper's networks) f'
is piecewise constant, that dropped term is 0 almost everywhere, and the two
modes give the same gradient; they differ for smooth f such as tanh.
"""
from __future__ import annotations

import torch
from neuro.progress import tqdm

from .contract import require, require_rule
from .lyapunov import BoundMap, _check_int, prepare, tangent_dynamics
from .rules.base import GradientRule

__all__ = ["flossing_loss", "floss", "FlossingRegularized"]

_REDUCTIONS = ("sum", "mean")


def flossing_loss(model, inputs=None, k: int | None = 16, local: bool = True, steps: int | None = None,
                  batch_size: int = 1, h0=None, warmup: int = 0, seed: int = 0, reduction: str = "sum",
                  return_exponents: bool = False):
    """Differentiable ``Σ_{i≤k} λ_i²`` (``reduction="mean"``: divided by k) along trajectories
    driven by ``inputs [T, B, n_in]`` (or autonomous for ``steps`` steps), mean over the B
    trajectories.  The gradient flows to the tensors of ``model.effective()``, hence to its
    parameters; ``local`` as in the module docstring.  With ``return_exponents`` also returns
    the (unsorted) exponents ``λ [..., B, k]`` per time step.  Warm-up steps stay in the graph
    (they shape Q and, with ``local=False``, the states).  Ensemble members' losses add."""
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    if hasattr(model, "provides"):
        require("flossing", ("steppable", "differentiable"), model)
    if not hasattr(model, "effective"):
        raise ValueError(f"flossing needs a model with differentiable parameters (effective()), "
                         f"got {type(model).__name__}")
    warmup = _check_int("warmup", warmup, 0)
    m = BoundMap(model, params=model.effective(), h0=h0, inputs=inputs)
    k = min(16, m.n) if k is None else k
    with torch.no_grad():
        inputs, T, h, Q = prepare(m, inputs, steps, batch_size, h0, k, seed)
    if warmup >= T:
        raise ValueError(f"warmup must be shorter than the trajectory ({T} steps), got {warmup}")
    logs, counted, _, _ = tangent_dynamics(m, inputs, T, h, Q, warmup, 1, detach_states=bool(local))
    lam = logs / counted
    per_traj = (lam ** 2).sum(-1) if reduction == "sum" else (lam ** 2).mean(-1)
    loss = per_traj.mean(-1).sum()
    return (loss, lam) if return_exponents else loss


def _draw_inputs(inputs, it: int, batch_size: int, seed: int, T, dtype):
    """Fixed inputs, a fresh batch from a Task each iteration, or None (autonomous)."""
    if inputs is None:
        return None
    if hasattr(inputs, "batch"):
        inputs = inputs.batch(batch_size, seed=(seed, 77_777 + it), dtype=dtype).inputs
    inputs = torch.as_tensor(inputs)
    return inputs if T is None else inputs[:T]


def _scalar_or_array(t: torch.Tensor):
    return float(t) if t.dim() == 0 else t.cpu().numpy()


def floss(model, steps: int = 100, k: int | None = 16, local: bool = True, lr: float = 1e-3, inputs=None,
          T: int | None = None, batch_size: int = 8, warmup: int = 0, seed: int = 0, reduction: str = "sum",
          progress: bool = True) -> dict:
    """Flossing pretraining: ``steps`` Adam updates (lr) of ``model.trainable()`` on the flossing
    loss, in place (Engelken 2023; the initialization paper: 100 steps, ``local=True``).

    inputs: a tensor ``[T, B, n_in]`` (the same every step), a Task (a fresh batch of
        ``batch_size`` trials every step, seeded by ``seed``), or None (autonomous runs of
        ``T`` steps, default 100, from ``batch_size`` random states).  ``T`` also cuts given
        or drawn inputs to their first T steps.
    Returns ``{"loss": [...], "max_exponent": [...]}`` per step (before that step's update;
    the max exponent per time step, batch mean); for an ensemble model each entry is an
    array over its members, which are flossed independently (their losses add).
    """
    if hasattr(model, "provides"):
        require("flossing", ("steppable", "differentiable"), model)
    steps = _check_int("flossing steps", steps, 0)
    if not (isinstance(lr, (int, float)) and lr > 0):
        raise ValueError(f"lr must be a number > 0, got {lr!r}")
    if T is not None:
        T = _check_int("T", T, 1)
    params = list(model.trainable().values())
    if not params:
        raise ValueError("flossing needs trainable parameters; the model has none (recurrent.trainable = false?)")
    dtype = params[0].dtype
    opt = torch.optim.Adam(params, lr=lr)
    history = {"loss": [], "max_exponent": []}
    for it in tqdm(range(steps), disable=not progress, desc="flossing", leave=False, mininterval=1.0):
        x = _draw_inputs(inputs, it, batch_size, seed, T, dtype)
        loss, lam = flossing_loss(model, x, k=k, local=local, steps=T or 100, batch_size=batch_size,
                                  warmup=warmup, seed=seed * 1_000_003 + it, reduction=reduction,
                                  return_exponents=True)
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        for p, g in zip(params, grads):
            p.grad = g
        opt.step()
        lam = lam.detach()
        per_member = ((lam ** 2).sum(-1) if reduction == "sum" else (lam ** 2).mean(-1)).mean(-1)
        history["loss"].append(_scalar_or_array(per_member))
        history["max_exponent"].append(_scalar_or_array(lam.max(-1).values.mean(-1)))
        if not torch.isfinite(loss):
            raise FloatingPointError(f"flossing diverged at step {it} (loss {float(loss)}); lower lr")
    for p in params:
        p.grad = None
    return history


class FlossingRegularized(GradientRule):
    """Any gradient rule plus ``weight ×`` the flossing gradient every ``every`` iterations
    (flossing interleaved with task training, Engelken 2023), on the batch's inputs cut to
    their first ``T`` steps (default: all), local or not:

        neuro.train(net, task, FlossingRegularized(neuro.rules.get("eprop"), weight=0.1))
    """

    def __init__(self, rule, weight: float = 1.0, every: int = 1, k: int | None = 16, local: bool = True,
                 T: int | None = None, reduction: str = "sum"):
        from . import rules
        rule = rules.resolve(rule)
        if not hasattr(rule, "loss_and_gradients"):
            raise ValueError(f"FlossingRegularized wraps a gradient rule, got {type(rule).__name__}")
        if not (isinstance(weight, (int, float)) and weight >= 0):
            raise ValueError(f"weight must be a number >= 0, got {weight!r}")
        self.rule, self.weight, self.k, self.local, self.reduction = rule, float(weight), k, local, reduction
        self.every = _check_int("every", every, 1)
        self.T = None if T is None else _check_int("T", T, 1)
        self.name = f"{getattr(rule, 'name', 'rule')}+floss"
        self._count = 0

    def needs_for(self, net) -> tuple:
        inner = self.rule.needs_for(net) if hasattr(self.rule, "needs_for") else getattr(self.rule, "needs", ())
        return tuple(inner) + ("steppable",)

    def loss_and_gradients(self, net, batch, task, generator=None):
        require_rule(self, net)
        loss, outputs, grads = self.rule.loss_and_gradients(net, batch, task, generator)
        self._count += 1
        if self.weight > 0 and (self._count - 1) % self.every == 0:
            inputs = batch.inputs if self.T is None else batch.inputs[:self.T]
            fl = flossing_loss(net, inputs, k=self.k, local=self.local, reduction=self.reduction)
            params = net.trainable()
            extra = torch.autograd.grad(fl, list(params.values()), allow_unused=True)
            for (name, p), g in zip(params.items(), extra):
                if g is not None:
                    grads[name] = grads.get(name, torch.zeros_like(p)) + self.weight * g
        return loss, outputs, grads

"""Two more RLS rules on the rate backend, sharing ``neuro.rules.rls`` with FORCE and full-FORCE.

``reservoir`` — readout-only training of a fixed random network (echo-state / liquid-state
style; Jaeger 2001, Maass et al. 2002): the network runs on the task's trials without feedback
and RLS fits ``W_out`` to the targets over every scored (masked) time step, so after one pass
the readout is the ridge regression of the targets on the rates (the RLS oracle).
Classification targets become one-hot vectors.

``innate`` — Laje & Buonomano 2013 ("Robust timing and motor patterns by taming chaos in
recurrent neural networks"): a chaotic network (g ≈ 1.5) is driven by the trial's input from a
fixed initial state, and its own noise-free trajectory ``r*(t)`` (the "innate" trajectory) is
recorded.  Then, over ``iterations`` trials started from perturbed states and run with noise,
RLS trains every row of ``W_rec`` so that ``r_i(t)`` follows ``r*_i(t)`` (the error is
``r(t) - r*(t)``, one shared P since every row sees the same presynaptic rates), which turns
the innate trajectory into a stable, reproducible transient.  Finally ``readout_iterations``
trials fit the readout to the task's target with RLS.  Laje & Buonomano train a subset of
presynaptic inputs per unit; here all of them (density 1), as full-FORCE does.
"""
from __future__ import annotations

import math
import time

import torch
from neuro.progress import tqdm

from neuro.checks import check as _check
from neuro.contract import require_rule
from neuro.training import History

from .rls import RLS


def _targets(task, batch, n_out: int, dtype) -> torch.Tensor:
    """Regression targets, or one-hot vectors for class indices: ``[T, B, n_out]``."""
    if task.kind == "regression":
        return batch.targets.to(dtype)
    return torch.nn.functional.one_hot(batch.targets, n_out).to(dtype)


class Reservoir:
    """``neuro.rules.get("reservoir", alpha=1, batch_size=16)``: RLS on the readout only."""

    name = "reservoir"
    online = True
    needs = ("differentiable", "rate_map")

    def __init__(self, alpha: float = 1.0, batch_size: int = 16):
        _check(isinstance(alpha, (int, float)) and math.isfinite(alpha) and alpha > 0, "reservoir alpha",
               "a finite number > 0 (the RLS prior P(0) = I/alpha)", alpha)
        _check(isinstance(batch_size, int) and batch_size >= 1, "reservoir batch_size", "an integer >= 1", batch_size)
        self.alpha, self.batch_size = float(alpha), batch_size

    def fit(self, net, task, iterations: int = 10, seed: int = 0, progress: bool = True, run_dir=None) -> History:
        """Each iteration: score the current readout on a fresh batch (held out), then learn from it."""
        require_rule(self, net)
        p = dict(net.effective())
        W, b_out = p["W_out"].detach().clone(), p["b_out"].detach()
        dtype = W.dtype
        rls = RLS(W.shape[1], self.alpha, dtype=dtype)
        history = History()
        for it in tqdm(range(iterations), desc="reservoir", disable=not progress, leave=False):
            batch = task.batch(self.batch_size, seed=seed * 1_000_003 + it, dtype=dtype)
            with torch.no_grad():
                rates = net.run(batch.inputs).rates
                outputs = rates @ W.T + b_out
                history.append(it, float(task.loss(outputs, batch)), float(task.accuracy(outputs, batch)))
                y = _targets(task, batch, W.shape[0], dtype)
                for t, b in torch.nonzero(batch.mask > 0).tolist():
                    r = rates[t, b]
                    W = rls.step(W, r, W @ r + b_out - y[t, b])
        net.set_weight("W_out", W)
        return history


class Innate:
    """``neuro.rules.get("innate", alpha=1, every=2, noise_std=0.05)``: Laje & Buonomano 2013."""

    name = "innate"
    online = True
    needs = ("differentiable", "rate_map")

    def __init__(self, alpha: float = 1.0, every: int = 2, noise_std: float = 0.05, init_std: float = 0.5,
                 perturbation_std: float = 0.5, readout_iterations: int = 5):
        for opt, v, positive in (("alpha", alpha, True), ("noise_std", noise_std, False),
                                 ("init_std", init_std, False), ("perturbation_std", perturbation_std, False)):
            ok = isinstance(v, (int, float)) and math.isfinite(v) and (v > 0 if positive else v >= 0)
            _check(ok, f"innate {opt}", "a finite number " + ("> 0" if positive else ">= 0"), v)
        _check(isinstance(every, int) and every >= 1, "innate every", "an integer >= 1 (steps per RLS update)", every)
        _check(isinstance(readout_iterations, int) and readout_iterations >= 1, "innate readout_iterations",
               "an integer >= 1 (trials)", readout_iterations)
        self.alpha, self.every, self.noise_std = float(alpha), every, float(noise_std)
        self.init_std, self.perturbation_std, self.readout_iterations = float(init_std), float(perturbation_std), \
            readout_iterations

    def _trial(self, task, seed: int, dtype):
        batch = task.batch(1, seed=seed, dtype=dtype)
        return batch.inputs[:, 0], batch

    def innate_trajectory(self, net, x, h0, params=None) -> torch.Tensor:
        """The noise-free rates ``[T, N]`` from ``h0`` under inputs ``x [T, n_in]``."""
        h, rates = h0, []
        with torch.no_grad():
            for t in range(x.shape[0]):
                h = net.advance(h, x[t:t + 1], params=params)
                rates.append(net.activity(h)[0])
        return torch.stack(rates)

    def perturbed_run(self, net, x, h0, gen, params=None, train=None) -> torch.Tensor:
        """Rates ``[T, N]`` from ``h0 + perturbation`` with noise; ``train = (rls, target, p)`` learns W_rec."""
        h = h0 + self.perturbation_std * torch.randn(h0.shape, generator=gen, dtype=h0.dtype)
        rates = []
        scale = self.noise_std * math.sqrt(net.spec.dt / net.spec.neuron.tau)
        with torch.no_grad():
            for t in range(x.shape[0]):
                noise = scale * torch.randn(h.shape, generator=gen, dtype=h.dtype)
                h = net.advance(h, x[t:t + 1], extra=noise / (1 - net.alpha), params=params)
                r = net.activity(h)[0]
                if train is not None and t % self.every == 0:
                    rls, target, p = train
                    p["W_rec"] = rls.step(p["W_rec"], r, r - target[t])
                rates.append(r)
        return torch.stack(rates)

    def fit(self, net, task, iterations: int = 20, seed: int = 0, progress: bool = True, run_dir=None,
            ) -> History:
        """``iterations`` recurrent-training trials, then ``readout_iterations`` readout trials.

        History: per recurrent trial, ``loss`` = mean squared distance of the perturbed run from the
        innate trajectory; per readout trial, the task's loss and accuracy (before that trial's update).
        ``history.innate`` holds the innate trajectory, ``history.h0`` its initial state.
        """
        require_rule(self, net)
        _check(net.spec.recurrent.density == 1.0, "innate: recurrent.density", "1 (every weight is trained)",
               net.spec.recurrent.density)
        _check(not net.spec.dale.enabled, "innate: dale.enabled", "false (RLS weights change sign)", True)
        t0 = time.perf_counter()
        gen = torch.Generator().manual_seed(seed)
        p = {k: v.detach().clone() for k, v in net.effective().items()}
        dtype = p["W_out"].dtype
        x, _ = self._trial(task, seed, dtype)
        h0 = self.init_std * torch.randn(1, p["W_rec"].shape[0], generator=gen, dtype=dtype)
        innate = self.innate_trajectory(net, x, h0, p)
        rls = RLS(p["W_rec"].shape[0], self.alpha, dtype=dtype)
        history = History()
        bar = tqdm(range(iterations + self.readout_iterations), desc="innate", disable=not progress, leave=False)
        readout = RLS(p["W_rec"].shape[0], self.alpha, dtype=dtype)
        for k in bar:
            if k < iterations:
                rates = self.perturbed_run(net, x, h0, gen, p, train=(rls, innate, p))
                history.append(k, float(((rates - innate) ** 2).mean()), float("nan"))
                continue
            xk, batch = self._trial(task, seed * 1_000_003 + k, dtype)
            rates = self.perturbed_run(net, xk, h0, gen, p)
            outputs = rates @ p["W_out"].T + p["b_out"]
            history.append(k, float(task.loss(outputs[:, None], batch)), float(task.accuracy(outputs[:, None], batch)))
            y = _targets(task, batch, p["W_out"].shape[0], dtype)[:, 0]
            with torch.no_grad():
                for t in torch.nonzero(batch.mask[:, 0] > 0)[:, 0].tolist():
                    p["W_out"] = readout.step(p["W_out"], rates[t], p["W_out"] @ rates[t] + p["b_out"] - y[t])
        net.set_weight("W_rec", p["W_rec"])
        net.set_weight("W_out", p["W_out"])
        history.innate, history.h0, history.seconds = innate.numpy(), h0, time.perf_counter() - t0
        return history

"""FORCE (Sussillo & Abbott 2009; spiking: Nicola & Clopath 2017) and full-FORCE
(DePasquale et al. 2018; spiking: DePasquale, Churchland & Abbott 2016), online rules
that share one RLS (``neuro.rules.rls``) and drive any backend through its online protocol
(``neuro.contract.OnlineModel``): ``online_start``, ``advance(state, x, extra, params)``,
``activity(state)``, ``extra_decay``, and ``effective()``, ``set_weight(name, value)``.

Both run the network continuously (no resets between segments of the target, which the
task hands out with ``task.segment(k)``; other Tasks give ``batch(1, seed)``), in three
phases: ``warmup`` segments with the target clamped in (no learning), ``iterations``
segments of learning, ``test`` segments with learning off.  The scores are the test NMSE
(MSE over the target's variance) and DePasquale et al.'s error ``100·Σ(z-f)²/Σf²``.

FORCE.  The readout ``z = W_out r`` is fed back as the input current ``W_fb z``
(``W_fb = feedback_scale · U(-1, 1)``, fixed, from the rule's seed) and RLS corrects
``W_out`` every ``every`` steps (or with probability ``1/every``) so that z follows the
target f from the start (Sussillo & Abbott Eqs. 1-5; their code's update order: advance
with the previous z, read r, z; update; feed back the pre-update z).  The test error is
measured with the output still fed back, as they report it.

full-FORCE.  A target-generating rate network (the teacher: ``J_D = g·N(0,1)/√N``,
dense, plus ``u_out f(t)`` with ``u_out ~ U(-1, 1)``, and the learner's own input
weights, all from the rule's seed) is driven by the target.  RLS trains *every row* of the
learner's recurrent matrix ``J`` (one shared P, the readout rows stacked on top) so that
its recurrent current ``J r`` reproduces the teacher's ``J_D r_D + u_out f``, and the
readout so that ``W_out r = f``.  The learner gets no output feedback.  On the LIF backend
the trained matrix is the slow current ``W_slow`` when the spec has one (else ``W_rec``);
its presynaptic factor is the previous step's readout filter, exact when the trained
current's time constant equals ``tau_readout`` (checked), and the teacher's current is
mapped to a per-step voltage drive by ``current_scale`` (default ``v_th · dv``).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from neuro.progress import tqdm

from neuro.checks import check as _check
from neuro.compiler import compile as _compile
from neuro.contract import provides, require_rule
from neuro.lif_params import lif_constants
from neuro.spec import NetworkSpec, NeuronSpec, PopulationSpec
from neuro.training import History
from neuro.weights import Weights

from .rls import RLS


@dataclass
class ForceHistory(History):
    """Per learning segment ``iteration``/``loss`` (NMSE)/``accuracy`` (1 - NMSE), as
    ``neuro.train``'s History, plus the test scores and traces."""

    test_nmse: float = float("nan")
    test_error_pct: float = float("nan")          # DePasquale et al.: 100 Σ(z - f)² / Σ f²
    test_outputs: np.ndarray | None = None        # [T_test, n_out]
    test_targets: np.ndarray | None = None
    train_outputs: np.ndarray | None = None       # the last learning segment
    train_targets: np.ndarray | None = None
    seconds: float = 0.0
    rule_weights: dict = field(default_factory=dict)   # rule-owned matrices (W_fb, J_D, u_out)

    @property
    def train_nmse(self) -> list:
        return self.loss


def _nmse(z: torch.Tensor, f: torch.Tensor) -> float:
    var = float(((f - f.mean(0)) ** 2).mean())
    return float(((z - f) ** 2).mean()) / var if var > 0 else float("nan")


def _segment(task, index: int, seed: int, dtype):
    """Inputs ``[T, n_in]`` and targets ``[T, n_out]`` of the task's k-th consecutive segment."""
    if hasattr(task, "segment"):
        x, f = task.segment(index, dtype=dtype)
    else:
        batch = task.batch(1, seed=seed * 1_000_003 + index, dtype=dtype)
        x, f = batch.inputs, batch.targets
    return x[:, 0], f[:, 0]


def _start(net, gen, init_std: float, dtype):
    """The state to start from and a one-step extra current (or None): the backend's
    ``online_start`` (rate: ``h ~ N(0, init_std²)``; LIF: a random kick of input current)."""
    return net.online_start(1, init_std, gen)


def _record(history, bar, phase: str, outputs, targets, outs: list, tgts: list) -> None:
    """Keep a segment's outputs and targets; a learning segment adds its NMSE to the history."""
    outs.append(outputs)
    tgts.append(targets)
    if phase == "learn":
        nmse = _nmse(outputs, targets)
        history.append(len(history), nmse, 1.0 - nmse)
        bar.set_postfix(nmse=f"{nmse:.3g}")


class _Schedule:
    """RLS every ``every`` steps (Sussillo & Abbott, Nicola & Clopath) or, with
    ``random_updates``, with probability ``1/every`` per step (DePasquale et al.'s demo)."""

    def __init__(self, every: int, random_updates: bool, gen: torch.Generator):
        self.every, self.random, self.gen = every, random_updates, gen

    def __call__(self, step: int) -> bool:
        if self.random:
            return float(torch.rand((), generator=self.gen)) < 1.0 / self.every
        return step % self.every == 0


class _OnlineRule:
    name = "online"
    online = True
    needs = ("online", "differentiable")

    def __init__(self, alpha: float, every: int, random_updates: bool, warmup: int, test: int, init_std: float):
        _check(isinstance(alpha, (int, float)) and math.isfinite(alpha) and alpha > 0, f"{self.name} alpha",
               "a finite number > 0 (the RLS prior P(0) = I/alpha)", alpha)
        _check(isinstance(every, int) and every >= 1, f"{self.name} every", "an integer >= 1 (steps per RLS update)",
               every)
        for opt, v in (("warmup", warmup), ("test", test)):
            _check(isinstance(v, int) and v >= 0, f"{self.name} {opt}", "an integer >= 0 (segments)", v)
        _check(isinstance(init_std, (int, float)) and init_std >= 0, f"{self.name} init_std", "a number >= 0", init_std)
        self.alpha, self.every, self.random_updates = float(alpha), every, random_updates
        self.warmup, self.test, self.init_std = warmup, test, float(init_std)

    def _phases(self, iterations: int):
        _check(isinstance(iterations, int) and iterations >= 0, "iterations", "an integer >= 0 (segments)", iterations)
        return ["warmup"] * self.warmup + ["learn"] * iterations + ["test"] * self.test

    @staticmethod
    def _finish(history: ForceHistory, phases: list, outs: list, tgts: list, t0: float) -> ForceHistory:
        test = [i for i, ph in enumerate(phases) if ph == "test"]
        if test:
            z = torch.cat([outs[i] for i in test])
            f = torch.cat([tgts[i] for i in test])
            history.test_nmse = _nmse(z, f)
            history.test_error_pct = float(100 * ((z - f) ** 2).sum() / (f ** 2).sum())
            history.test_outputs, history.test_targets = z.numpy(), f.numpy()
        learn = [i for i, ph in enumerate(phases) if ph == "learn"]
        if learn:
            history.train_outputs, history.train_targets = outs[learn[-1]].numpy(), tgts[learn[-1]].numpy()
        history.seconds = time.perf_counter() - t0
        return history


class FORCE(_OnlineRule):
    """``neuro.rules.get("force", alpha=1, every=2, feedback_scale=1)``: RLS on the readout with
    the output fed back.  ``fit(net, task, iterations, seed)`` -> ``ForceHistory``."""

    name = "force"

    def __init__(self, alpha: float = 1.0, every: int = 2, feedback_scale: float = 1.0, init_std: float = 0.5,
                 warmup: int = 0, test: int = 1, random_updates: bool = False):
        super().__init__(alpha, every, random_updates, warmup, test, init_std)
        _check(isinstance(feedback_scale, (int, float)) and math.isfinite(feedback_scale), "force feedback_scale",
               "a finite number", feedback_scale)
        self.feedback_scale = float(feedback_scale)

    def fit(self, net, task, iterations: int = 10, seed: int = 0, progress: bool = True, run_dir=None,
            ) -> ForceHistory:
        require_rule(self, net)
        t0 = time.perf_counter()
        phases = self._phases(iterations)
        gen = torch.Generator().manual_seed(seed)
        p = dict(net.effective())
        dtype = p["W_out"].dtype
        n_out, n = p["W_out"].shape
        W_fb = self.feedback_scale * (2 * torch.rand(n, n_out, generator=gen, dtype=dtype) - 1)
        W, b_out = p["W_out"].detach().clone(), p["b_out"].detach()
        rls = RLS(n, self.alpha, dtype=dtype)
        update = _Schedule(self.every, self.random_updates, gen)
        state, kick = _start(net, gen, self.init_std, dtype)
        z = W @ net.activity(state)[0] + b_out
        history, outs, tgts, step = ForceHistory(), [], [], 0
        bar = tqdm(phases, desc="FORCE", disable=not progress, leave=False, dynamic_ncols=True)
        with torch.no_grad():
            for k, phase in enumerate(bar):
                x, f = _segment(task, k, seed, dtype)
                zs = torch.empty_like(f)
                for t in range(x.shape[0]):
                    fed = f[t - 1] if phase == "warmup" and t > 0 else z     # warmup: the target is fed back
                    extra = (W_fb @ fed).unsqueeze(0)
                    if kick is not None:
                        extra, kick = extra + kick, None
                    state = net.advance(state, x[t:t + 1], extra=extra, params=p)
                    r = net.activity(state)[0]
                    z = W @ r + b_out
                    if phase == "learn" and update(step):
                        W = rls.step(W, r, z - f[t])          # z stays the pre-update output, as in S&A
                    zs[t] = z
                    step += 1
                _record(history, bar, phase, zs, f, outs, tgts)
        net.set_weight("W_out", W)
        history.rule_weights = {"W_fb": W_fb.numpy()}
        return self._finish(history, phases, outs, tgts, t0)


class FullFORCE(_OnlineRule):
    """``neuro.rules.get("full_force", alpha=1, every=2, random_updates=True, teacher_gain=1.5)``:
    RLS trains the learner's recurrent matrix on a target-driven teacher's currents, and its
    readout.  ``fit(net, task, iterations, seed)`` -> ``ForceHistory``."""

    name = "full_force"

    def __init__(self, alpha: float = 1.0, every: int = 2, random_updates: bool = True, teacher_gain: float = 1.5,
                 target_scale: float = 1.0, teacher_tau: float | None = None, current_scale: float | None = None,
                 zero_init: bool = True, init_std: float = 1.0, warmup: int = 0, test: int = 1):
        super().__init__(alpha, every, random_updates, warmup, test, init_std)
        for opt, v in (("teacher_gain", teacher_gain), ("target_scale", target_scale)):
            _check(isinstance(v, (int, float)) and math.isfinite(v) and v >= 0, f"full_force {opt}",
                   "a finite number >= 0", v)
        _check(teacher_tau is None or (isinstance(teacher_tau, (int, float)) and teacher_tau > 0),
               "full_force teacher_tau", "None (the trained current's time constant) or a number > 0 (ms)", teacher_tau)
        _check(current_scale is None or (isinstance(current_scale, (int, float)) and current_scale > 0),
               "full_force current_scale", "None (v_th·dv on LIF, 1 on rate) or a number > 0", current_scale)
        self.teacher_gain, self.target_scale = float(teacher_gain), float(target_scale)
        self.teacher_tau, self.current_scale, self.zero_init = teacher_tau, current_scale, zero_init

    # -- the learner's trained recurrent matrix ---------------------------------------
    def _trained_matrix(self, net) -> tuple[str, float]:
        """Name of the trained recurrent matrix and the scale from teacher current to its units."""
        spec = net.spec
        _check(spec.recurrent.density == 1.0, "full_force: recurrent.density",
               "1 (full-FORCE trains every recurrent weight)", spec.recurrent.density)
        _check(not spec.dale.enabled, "full_force: dale.enabled", "false (RLS weights change sign)", True)
        if not provides(net, "lif_map"):
            return "W_rec", self.current_scale or 1.0
        neuron = spec.neuron
        name, tau = ("W_slow", neuron.tau_syn_slow) if neuron.tau_syn_slow > 0 else ("W_rec", neuron.tau_syn)
        _check(tau == neuron.tau_readout, f"full_force on LIF: populations[0].neuron.tau_readout",
               f"equal to the trained current's time constant ({tau} ms), so its presynaptic factor is the "
               f"readout filter", neuron.tau_readout)
        return name, self.current_scale or neuron.v_th * lif_constants(neuron, spec.dt).dv

    def _teacher(self, net, gen, dtype, n: int, n_out: int):
        """The target-generating rate network (compiled on the rate backend) and its drive ``u_out``."""
        spec = net.spec
        # a spiking learner's teacher runs at the trained current's time constant: with a faster teacher
        # (50 ms for a 100 ms slow current) its currents change faster than the slow synapse can follow
        # and the training error grows from segment to segment (measured: NMSE 0.005 -> 0.67 in 10 s)
        neuron = spec.neuron
        trained_tau = (neuron.tau_syn_slow or neuron.tau_syn) if provides(net, "lif_map") else neuron.tau
        tau = self.teacher_tau or trained_tau
        _check(tau >= spec.dt, "full_force teacher_tau", f"a number >= dt = {spec.dt} ms", tau)
        tspec = NetworkSpec(dt=spec.dt, n_inputs=spec.n_inputs, n_outputs=n_out, populations=[
            PopulationSpec(size=n, neuron=NeuronSpec(model="rate", tau=tau, activation="tanh"))])
        J_D = self.teacher_gain * torch.randn(n, n, generator=gen, dtype=dtype) / math.sqrt(n)
        u_out = self.target_scale * (2 * torch.rand(n, n_out, generator=gen, dtype=dtype) - 1)
        W_in = net.effective()["W_in"].detach().double().numpy()
        w = Weights(W_in=W_in, W_rec=J_D.double().numpy(), W_out=np.zeros((n_out, n)), b=np.zeros(n),
                    b_out=np.zeros(n_out), mask_in=np.ones_like(W_in), mask_rec=np.ones((n, n)),
                    mask_out=np.ones((n_out, n)))
        teacher = _compile(tspec, "rate", w, dtype=dtype)
        return teacher, teacher.effective(), J_D, u_out

    def fit(self, net, task, iterations: int = 10, seed: int = 0, progress: bool = True, run_dir=None,
            ) -> ForceHistory:
        require_rule(self, net)
        t0 = time.perf_counter()
        phases = self._phases(iterations)
        name, scale = self._trained_matrix(net)
        gen = torch.Generator().manual_seed(seed)
        p = {k: v.detach().clone() for k, v in net.effective().items()}
        dtype = p["W_out"].dtype
        n_out, n = p["W_out"].shape
        teacher, tp, J_D, u_out = self._teacher(net, gen, dtype, n, n_out)
        if self.zero_init:                     # DePasquale et al.'s demo: J and W_out start at 0
            p[name], p["W_out"] = torch.zeros_like(p[name]), torch.zeros_like(p["W_out"])
        learned = torch.cat([p[name], p["W_out"]])          # [N + n_out, N]: one RLS, one P
        p[name], p["W_out"] = learned[:n], learned[n:]
        rls = RLS(n, self.alpha, dtype=dtype)
        update = _Schedule(self.every, self.random_updates, gen)
        state, kick = _start(net, gen, self.init_std, dtype)
        teacher_state = self.init_std * torch.randn(1, n, generator=gen, dtype=dtype)
        # on LIF the injected current passes the fast synaptic filter u; sending c[t] - (1-du) c[t-1]
        # makes u carry exactly c[t] (rate: the current enters the step directly)
        decay = net.extra_decay
        forced = dict(p, **{name: torch.zeros_like(p[name])})
        current = scale * (J_D @ teacher.activity(teacher_state)[0])
        previous = torch.zeros_like(current)
        history, outs, tgts, step = ForceHistory(), [], [], 0
        bar = tqdm(phases, desc="full-FORCE", disable=not progress, leave=False, dynamic_ncols=True)
        with torch.no_grad():
            for k, phase in enumerate(bar):
                x, f = _segment(task, k, seed, dtype)
                zs = torch.empty_like(f)
                for t in range(x.shape[0]):
                    xt = x[t:t + 1]
                    extra = kick
                    if phase == "warmup":       # the learned current is replaced by the teacher's
                        extra = (current - decay * previous).unsqueeze(0) if decay else current.unsqueeze(0)
                        previous = current
                    kick = None
                    state = net.advance(state, xt, extra=extra, params=forced if phase == "warmup" else p)
                    r = net.activity(state)[0]          # J r is the learned current of the next step
                    z = p["W_out"] @ r + p["b_out"]
                    zs[t] = z
                    if phase != "test":
                        teacher_state = teacher.advance(teacher_state, xt, extra=(u_out @ f[t]).unsqueeze(0),
                                                        params=tp)
                        current = scale * (J_D @ teacher.activity(teacher_state)[0] + u_out @ f[t])
                    if phase == "learn" and update(step):
                        err = torch.cat([learned[:n] @ r - current, z - f[t]])
                        learned = rls.step(learned, r, err)
                        p[name], p["W_out"] = learned[:n], learned[n:]
                    step += 1
                _record(history, bar, phase, zs, f, outs, tgts)
        net.set_weight(name, p[name])
        net.set_weight("W_out", p["W_out"])
        history.rule_weights = {"J_D": J_D.numpy(), "u_out": u_out.numpy()}
        return self._finish(history, phases, outs, tgts, t0)

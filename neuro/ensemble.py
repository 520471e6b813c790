# NOTE FOR HELPER SESSIONS: ensembles are written and tested by the lead (tests/test_ensemble.py) and
# the initialization study uses them; build on this module (sweeps, executors) rather than replacing it.
"""Train E independent rate networks as one batched model.

The members of a sweep (seeds × gains × learning rates) share the shapes and the
dynamics of one spec, so their weights stack into ``[E, N, N]`` tensors and the
rate backend — whose step broadcasts over leading dimensions — runs them all in
one Python loop over time with batched matmuls.  Each member keeps its own task
batches (seeded as ``neuro.train`` seeds them), its own hidden noise, its own
Adam state and learning rate; the results equal training each member alone
(a test holds this for BPTT and e-prop).  Works on CPU or CUDA (``device``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from .spec import NetworkSpec, to_dict
from .training import History
from .weights import Weights, init_weights

_WEIGHT_FIELDS = ("input.", "recurrent.", "readout.", "feedback.", "dale.excitatory_fraction")


@dataclass
class Member:
    """One network of an ensemble: its seed, learning rate and spec overrides (e.g. the gain).
    ``weights`` starts it from given weights instead of ``init_weights(spec, seed)``."""

    seed: int = 0
    lr: float = 1e-3
    overrides: dict = field(default_factory=dict)
    weights: Weights | None = None

    @classmethod
    def coerce(cls, m) -> "Member":
        return m if isinstance(m, cls) else cls(**m)


def _check_overrides(spec: NetworkSpec, member: Member) -> NetworkSpec:
    for key in member.overrides:
        if not key.startswith(_WEIGHT_FIELDS):
            raise ValueError(f"ensemble member override {key!r} changes the dynamics; members may differ only "
                             f"in how weights are drawn ({', '.join(_WEIGHT_FIELDS)}), seed and lr")
    return spec.replace(**member.overrides)


def _stack(weights: list[Weights]) -> Weights:
    def st(name):
        vals = [getattr(w, name) for w in weights]
        if any(v is None for v in vals):
            if not all(v is None for v in vals):
                raise ValueError(f"ensemble members disagree on whether {name} exists (Dale / feedback settings)")
            return None
        shapes = {v.shape for v in vals}
        if len(shapes) > 1:
            raise ValueError(f"ensemble members must share shapes; {name} has shapes {sorted(shapes)}")
        return np.stack(vals)
    return Weights(**{k: st(k) for k in Weights.ARRAYS})


class Ensemble:
    """E rate networks of one spec as a single ``RateNetwork`` with stacked parameters."""

    def __init__(self, spec: NetworkSpec, members: list, dtype=torch.float32, device="cpu"):
        from neuro.compiler import compile as compile_
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.spec = spec
        self.members = [Member.coerce(m) for m in members]
        specs = [_check_overrides(spec, m) for m in self.members]
        self.member_specs = specs
        weights = [m.weights if m.weights is not None else init_weights(s, m.seed)
                   for m, s in zip(self.members, specs)]
        # dynamics come from the shared spec; a member's flags (trainable, bias) must agree
        flags = {(s.input.trainable, s.recurrent.trainable, s.readout.trainable, s.input.bias, s.readout.bias,
                  s.dale.enabled, s.feedback.kind) for s in specs}
        if len(flags) > 1:
            raise ValueError("ensemble members must agree on trainable/bias/Dale/feedback settings")
        self.net = compile_(specs[0], "rate", _stack(weights), dtype=dtype, device=device)
        self.size = len(self.members)

    def network(self, e: int):
        """Member ``e`` as a stand-alone ``RateNetwork`` with its current weights."""
        from neuro.compiler import compile as compile_
        return compile_(self.member_specs[e], "rate", self.weights(e), dtype=self.net.W_rec.dtype)

    def weights(self, e: int) -> Weights:
        stacked = self.net.weights()
        return Weights(**{k: (None if getattr(stacked, k) is None else getattr(stacked, k)[e])
                          for k in Weights.ARRAYS})


class _BatchedAdam:
    """Adam with one learning rate per member, equal to ``torch.optim.Adam`` member by member
    (same update formula: ``p -= lr/(1-β1^t) · m / (sqrt(v)/sqrt(1-β2^t) + eps)``)."""

    def __init__(self, params: dict, lrs: torch.Tensor, betas=(0.9, 0.999), eps=1e-8):
        self.params, self.lrs, self.betas, self.eps = params, lrs, betas, eps
        self.m = {k: torch.zeros_like(p) for k, p in params.items()}
        self.v = {k: torch.zeros_like(p) for k, p in params.items()}
        self.t = 0

    @torch.no_grad()
    def step(self, grads: dict, active: torch.Tensor) -> None:
        b1, b2 = self.betas
        self.t += 1
        bc1, bc2 = 1 - b1 ** self.t, 1 - b2 ** self.t
        for k, p in self.params.items():
            g = torch.where(active.view(-1, *[1] * (p.dim() - 1)), grads[k], torch.zeros_like(grads[k]))
            self.m[k].mul_(b1).add_(g, alpha=1 - b1)
            self.v[k].mul_(b2).addcmul_(g, g, value=1 - b2)
            denom = self.v[k].sqrt() / math.sqrt(bc2) + self.eps
            lr = (self.lrs * active).view(-1, *[1] * (p.dim() - 1)) / bc1
            p.sub_(lr * self.m[k] / denom)


def _stack_batches(task, batch_size: int, seeds: list, it: int, dtype):
    from neuro.tasks.base import Batch
    batches = [task.batch(batch_size, seed=(s, it), dtype=dtype) for s in seeds]
    T = max(b.inputs.shape[0] for b in batches)
    pad = lambda x: torch.nn.functional.pad(x, [0, 0] * (x.dim() - 1) + [0, T - x.shape[0]])
    inputs = torch.stack([pad(b.inputs) for b in batches], 1)            # [T, E, B, n_in]
    targets = torch.stack([pad(b.targets) for b in batches], 1)
    mask = torch.stack([pad(b.mask) for b in batches], 1)                # [T, E, B]
    return Batch(inputs, targets, mask, {"members": batches}), batches


class _MemberNoise:
    """Each member's hidden noise from its own generator, as ``neuro.train`` would draw it."""

    def __init__(self, net, seeds, device):
        self.net = net
        self.gens = [torch.Generator(device=device).manual_seed(s * 1_000_003) for s in seeds]

    def __call__(self, shape, generator=None):
        if self.net.noise_scale == 0:
            return None
        T, E, B, N = shape
        return torch.stack([self.net.noise_scale * torch.randn((T, B, N), generator=g, dtype=self.net.W_rec.dtype,
                                                               device=self.net.W_rec.device) for g in self.gens], 1)


@dataclass
class EnsembleResult:
    histories: list
    ensemble: Ensemble
    diverged: list

    def network(self, e: int):
        return self.ensemble.network(e)

    def weights(self, e: int) -> Weights:
        return self.ensemble.weights(e)


def train_ensemble(spec: NetworkSpec, task, rule, members: list, iterations: int = 500, batch_size: int = 32,
                   device="cpu", dtype=torch.float32, progress: bool = True, desc: str = "ensemble",
                   eval_every: int = 1) -> EnsembleResult:
    """Train every member of ``members`` (dicts or ``Member``) at once; see the module docstring.

    A member whose loss or gradient becomes non-finite is frozen at its last good
    weights and reported in ``diverged``; the others train on undisturbed.
    """
    if isinstance(rule, str):
        from neuro import rules as rules_
        rule = rules_.get(rule)
    ens = Ensemble(spec, members, dtype=dtype, device=device)
    net = ens.net
    net.sample_noise = _MemberNoise(net, [m.seed for m in ens.members], device)
    params = net.trainable()
    lrs = torch.tensor([m.lr for m in ens.members], dtype=dtype, device=device)
    opt = _BatchedAdam(params, lrs)
    active = torch.ones(ens.size, dtype=torch.bool, device=device)
    histories = [History() for _ in ens.members]
    seeds = [m.seed for m in ens.members]
    bar = tqdm(range(iterations), desc=desc, disable=not progress, leave=False, dynamic_ncols=True, mininterval=1.0)
    good = {k: p.detach().clone() for k, p in params.items()}
    for it in bar:
        batch, per_member = _stack_batches(task, batch_size, seeds, it, dtype)
        batch = batch.to(device=device) if str(device) != "cpu" else batch
        loss, outputs, grads = rule.loss_and_gradients(net, batch, task)
        finite = torch.isfinite(loss)
        for g in grads.values():
            finite &= torch.isfinite(g.flatten(1)).all(1)
        newly_bad = active & ~finite
        if newly_bad.any():          # freeze at the last good weights
            with torch.no_grad():
                for k, p in params.items():
                    p[newly_bad] = good[k][newly_bad]
            active &= ~newly_bad
        for e in torch.nonzero(active).flatten().tolist():
            acc = task.accuracy(outputs[:, e, : per_member[e].inputs.shape[1]][: per_member[e].inputs.shape[0]],
                                per_member[e]) if (it % eval_every == 0 or it == iterations - 1) else float("nan")
            histories[e].append(it, float(loss[e].detach()), acc)
        good = {k: p.detach().clone() for k, p in params.items()}
        opt.step({k: torch.nan_to_num(g) for k, g in grads.items()}, active)
        if progress:
            live = loss.detach()[active]     # median: one exploding member should not hide the others
            bar.set_postfix(median_loss=f"{float(live.median()) if len(live) else float('nan'):.4f}",
                            active=f"{int(active.sum())}/{ens.size}", refresh=False)
        if not active.any():
            break
    return EnsembleResult(histories, ens, (~active).tolist())

"""Train E independent rate networks as one batched model.

The members of a sweep (seeds × gains × learning rates) share the shapes and the
dynamics of one spec, so their weights stack into ``[E, N, N]`` tensors and the
rate backend — whose step broadcasts over leading dimensions — runs them all in
one Python loop over time with batched matmuls.  Each member keeps its own task
batches (seeded as ``neuro.train`` seeds them), its own hidden noise, its own
Adam state and learning rate; the results equal training each member alone
(a test holds this for BPTT and e-prop).  Works on CPU or CUDA (``device``).

With a ``run_dir`` the whole training state — stacked weights, Adam moments, every
member's noise-generator state and history — is checkpointed atomically, and a
rerun continues from it with the same numbers an uninterrupted run gives.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from neuro.progress import tqdm

from .io import CheckpointError, atomic_torch_save, load_checkpoint
from .spec import NetworkSpec
from .training import History, check_run_memory
from .weights import Weights, init_weights

_WEIGHT_FIELDS = ("input.", "recurrent.", "readout.", "feedback.", "dale.excitatory_fraction")
_SHAPE_FIELDS = ("n_inputs", "n_outputs", "populations[0].size")


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
        if key in _SHAPE_FIELDS:
            raise ValueError(f"ensemble members must share shapes; override {key!r} changes the network's size "
                             f"(train differently sized networks as separate ensembles)")
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


def check_device(device) -> torch.device:
    """``device`` as a ``torch.device``, refused in one line if it is not one or is not present here."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but this machine (or this torch build) has no CUDA "
                         f"device; use device='cpu'")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(f"device {device!r} asked for, but only {torch.cuda.device_count()} CUDA device(s) exist")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
    return dev


class Ensemble:
    """E rate networks of one spec as a single ``RateNetwork`` with stacked parameters."""

    def __init__(self, spec: NetworkSpec, members: list, dtype=torch.float32, device="cpu"):
        from neuro.compiler import compile as compile_
        check_device(device)
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

    @classmethod
    def from_members(cls, spec: NetworkSpec, members: list, dtype=torch.float32, device="cpu") -> "Ensemble":
        """The ensemble of ``members`` (dicts like ``{"seed": 0, "lr": 1e-3, "overrides": {"recurrent.gain": 0.2}}``
        or ``Member``); member e starts from ``init_weights(spec.replace(**overrides), seed)``."""
        return cls(spec, members, dtype=dtype, device=device)

    def network(self, e: int):
        """Member ``e`` as a stand-alone ``RateNetwork`` with its current weights."""
        from neuro.compiler import compile as compile_
        return compile_(self.member_specs[e], "rate", self.weights(e), dtype=self.net.W_rec.dtype,
                        device=self.net.W_rec.device)

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

    def state(self) -> dict:
        return {"m": self.m, "v": self.v, "t": self.t}

    def load_state(self, state: dict) -> None:
        for k in self.params:
            self.m[k].copy_(state["m"][k])
            self.v[k].copy_(state["v"][k])
        self.t = state["t"]

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


class _MemberNoise:
    """Each member's hidden noise from its own generator, as ``neuro.train`` would draw it: the
    generator is seeded ``seed · 1_000_003`` and draws ``[T_e, B, N]`` for the member's own trial
    length ``T_e`` (zeros pad it to the ensemble's longest trial, whose extra steps are unscored)."""

    def __init__(self, net, seeds, device):
        self.net = net
        self.gens = [torch.Generator(device=device).manual_seed(s * 1_000_003) for s in seeds]
        self.lengths = None

    def __call__(self, shape, generator=None):
        if self.net.noise_scale == 0:
            return None
        T, E, B, N = shape
        lengths = self.lengths or [T] * E
        noise = torch.zeros(shape, dtype=self.net.W_rec.dtype, device=self.net.W_rec.device)
        for e, (g, t_e) in enumerate(zip(self.gens, lengths)):
            noise[:t_e, e] = self.net.noise_scale * torch.randn((t_e, B, N), generator=g, dtype=noise.dtype,
                                                                device=noise.device)
        return noise

    def state(self) -> list:
        return [g.get_state() for g in self.gens]

    def load(self, states: list) -> None:
        for g, st in zip(self.gens, states):
            g.set_state(st)


DIVERGENCE_FACTOR = 100.0   # a final loss this many times the starting loss counts as diverged
DIVERGENCE_WINDOW = 10      # iterations averaged at the start and at the end


def divergence(history, nonfinite: bool = False, silent_loss: float | None = None,
               factor: float = DIVERGENCE_FACTOR, window: int = DIVERGENCE_WINDOW) -> str | None:
    """Why a run diverged, or None.

    Diverged: its loss became non-finite (training froze it), or the mean loss of its last ``window``
    iterations exceeds ``factor`` times a reference — the smaller of the mean loss of its first
    ``window`` iterations and ``silent_loss``, the task's loss for a readout that outputs zeros
    (a network that starts exploded, at 1e26, is not measured against its own start).
    """
    loss = [float(v) for v in history.loss]
    if nonfinite:
        return f"loss became non-finite after iteration {history.iteration[-1] if len(history) else 0}"
    if not loss:
        return None
    w = min(window, max(1, len(loss) // 2))
    start, end = sum(loss[:w]) / w, sum(loss[-w:]) / w
    ref, what = start, "the starting loss"
    if silent_loss is not None and math.isfinite(silent_loss) and 0 < silent_loss < start:
        ref, what = silent_loss, "the loss of a silent readout"
    if not math.isfinite(end) or end > factor * ref:
        return f"final loss {end:.3g} > {factor:g} x {what} {ref:.3g}"
    return None


@dataclass
class EnsembleResult:
    """``histories[e]`` equals ``neuro.train``'s History for member e.

    ``diverged[e]``: member e diverged — its loss became non-finite (``nonfinite[e]``: training froze it
    at its last finite weights) or its final loss exceeds ``DIVERGENCE_FACTOR`` times its starting loss
    (see ``divergence``); ``reasons[e]`` says which, None for a member that did not diverge.
    """

    histories: list
    ensemble: Ensemble
    nonfinite: list
    silent_loss: float | None = None     # the task's loss for all-zero outputs (a reference scale)
    reasons: list = None

    def __post_init__(self):
        if self.reasons is None:
            self.reasons = [divergence(h, bad, self.silent_loss) for h, bad in zip(self.histories, self.nonfinite)]

    @property
    def diverged(self) -> list:
        return [r is not None for r in self.reasons]

    def network(self, e: int):
        """Member ``e`` as a stand-alone ``RateNetwork`` with its trained weights."""
        return self.ensemble.network(e)

    def weights(self, e: int) -> Weights:
        return self.ensemble.weights(e)


CHECKPOINT = "ensemble.pt"
_HEAP_RETAINED = False


def retain_freed_memory() -> None:
    """Keep freed memory in this process's heap (glibc ``mallopt``; a no-op elsewhere).

    An ensemble iteration allocates and frees tensors of ``T·E·B·N`` floats (28 MB at
    E = 25, N = 64 on Romo); glibc hands blocks that large back to the kernel on free,
    so every iteration page-faults them in afresh — about half the wall time on CPU
    (50 000 minor faults and 90 ms of system time per iteration, measured).  Raising
    the mmap and trim thresholds makes the allocator reuse them instead.
    """
    global _HEAP_RETAINED
    if _HEAP_RETAINED:
        return
    _HEAP_RETAINED = True
    try:
        import ctypes
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 1 << 30)     # M_MMAP_THRESHOLD: serve blocks up to 1 GiB from the heap
        libc.mallopt(-1, 2**31 - 1)   # M_TRIM_THRESHOLD (a C int): do not give the heap top back to the kernel
    except (OSError, AttributeError):
        pass


def _member_key(m: Member) -> dict:
    return {"seed": m.seed, "lr": m.lr, "overrides": dict(m.overrides), "own_weights": m.weights is not None}


def _load_checkpoint(path: Path, ens: Ensemble, opt: _BatchedAdam, noise: _MemberNoise, iterations: int):
    # on the CPU: generator states must stay CPU byte tensors; copy_ moves the rest to the device
    state = load_checkpoint(path)
    missing = [k for k in ("iteration", "members", "params", "adam", "generators", "histories", "active")
               if k not in state]
    if missing:
        raise CheckpointError(f"{path} is not an ensemble checkpoint (no {missing[0]!r}); delete it to start afresh")
    if state["members"] != [_member_key(m) for m in ens.members]:
        raise ValueError(f"{path} holds a different ensemble (its members differ from the ones given); "
                         f"use another run_dir or delete it")
    if state["iteration"] > iterations:
        raise ValueError(f"{path} is at iteration {state['iteration']}, beyond iterations={iterations}")
    with torch.no_grad():
        for k, p in opt.params.items():
            p.copy_(state["params"][k])
    opt.load_state(state["adam"])
    noise.load(state["generators"])
    return state["iteration"], [History(**h) for h in state["histories"]], state["active"].to(ens.net.W_rec.device)


def train_ensemble(spec: NetworkSpec, task, rule, members: list, iterations: int = 500, batch_size: int = 32,
                   device="cpu", dtype=torch.float32, progress: bool = True, desc: str = "ensemble",
                   eval_every: int = 1, run_dir=None, checkpoint_every: int = 100) -> EnsembleResult:
    """Train every member of ``members`` (dicts or ``Member``) at once; see the module docstring.

    A member whose loss or gradient becomes non-finite is frozen at its last good
    weights and reported in ``diverged``; the others train on undisturbed.  With
    ``run_dir``, ``run_dir/ensemble.pt`` is written every ``checkpoint_every``
    iterations and at the end, and training resumes from it.
    """
    from .training import check_dt
    check_dt(spec, task)
    if isinstance(rule, str):
        from neuro import rules as rules_
        rule = rules_.get(rule)
    if not hasattr(rule, "loss_and_gradients"):
        raise ValueError(f"ensembles train with gradient rules (bptt, tbptt, eprop, …), got {rule!r}")
    if not isinstance(iterations, int) or iterations < 0:
        raise ValueError(f"iterations must be an integer >= 0, got {iterations!r}")
    if not members:
        raise ValueError("an ensemble needs at least one member")
    check_device(device)
    if iterations > 0:
        check_run_memory(spec, task, batch_size, len(members), dtype, "this ensemble")
    if str(device) == "cpu":
        retain_freed_memory()
    ens = Ensemble(spec, members, dtype=dtype, device=device)
    for m in ens.members:
        if not (isinstance(m.lr, (int, float)) and m.lr > 0 and math.isfinite(m.lr)):
            raise ValueError(f"member lr must be a finite number > 0, got {m.lr!r}")
    net = ens.net
    noise = _MemberNoise(net, [m.seed for m in ens.members], device)
    net.noise_source = noise
    params = net.trainable()
    lrs = torch.tensor([m.lr for m in ens.members], dtype=dtype, device=device)
    opt = _BatchedAdam(params, lrs)
    active = torch.ones(ens.size, dtype=torch.bool, device=device)
    histories = [History() for _ in ens.members]
    start = 0
    ckpt = Path(run_dir) / CHECKPOINT if run_dir is not None else None
    if ckpt is not None and ckpt.exists():
        start, histories, active = _load_checkpoint(ckpt, ens, opt, noise, iterations)

    def save(iteration: int) -> None:
        if ckpt is not None:
            atomic_torch_save({"iteration": iteration, "members": [_member_key(m) for m in ens.members],
                               "params": {k: p.detach() for k, p in params.items()}, "adam": opt.state(),
                               "generators": noise.state(), "histories": [h.state() for h in histories],
                               "active": active}, ckpt)

    seeds = [m.seed for m in ens.members]
    # perturbation rules (NP, ES) draw from a generator seeded by the members and the iteration, so a
    # sweep's numbers do not depend on what ran before it in the process, and a resumed run draws the same
    perturbation_seed = sum((i + 1) * s for i, s in enumerate(seeds)) * 1_000_003
    bar = tqdm(range(start, iterations), desc=desc, disable=not progress, leave=False, dynamic_ncols=True,
               mininterval=1.0)
    good = {k: p.detach().clone() for k, p in params.items()}
    silent_loss = None
    for it in bar:
        if not active.any():
            break
        batch, per_member = task.member_batches(batch_size, [(s, it) for s in seeds], dtype=dtype)
        noise.lengths = [b.inputs.shape[0] for b in per_member]
        batch = batch.to(device=device) if str(device) != "cpu" else batch
        generator = torch.Generator(device=device).manual_seed(perturbation_seed + it)
        loss, outputs, grads = rule.loss_and_gradients(net, batch, task, generator=generator)
        if silent_loss is None:
            b0 = per_member[0]
            silent_loss = float(task.loss(torch.zeros(*b0.inputs.shape[:2], task.n_outputs, dtype=dtype), b0))
        finite = torch.isfinite(loss)
        for g in grads.values():
            finite &= torch.isfinite(g.flatten(1)).all(1)
        newly_bad = active & ~finite
        if newly_bad.any():          # freeze at the last good weights
            with torch.no_grad():
                for k, p in params.items():
                    p[newly_bad] = good[k][newly_bad]
            active &= ~newly_bad
        evaluate = it % eval_every == 0 or it == iterations - 1
        losses = loss.detach().cpu().tolist()
        accs = task.member_accuracies(outputs.detach(), per_member) if evaluate else [float("nan")] * ens.size
        for e in torch.nonzero(active).flatten().tolist():
            histories[e].append(it, losses[e], accs[e])
        good = {k: p.detach().clone() for k, p in params.items()}
        opt.step({k: torch.nan_to_num(g) for k, g in grads.items()}, active)
        if progress:
            live = loss.detach()[active]     # median: one exploding member should not hide the others
            bar.set_postfix(median_loss=f"{float(live.median()) if len(live) else float('nan'):.4f}",
                            active=f"{int(active.sum())}/{ens.size}", refresh=False)
        if (it + 1) % checkpoint_every == 0 and it + 1 < iterations:
            save(it + 1)
    if ckpt is not None and start < iterations:
        save(iterations)
    result = EnsembleResult(histories, ens, (~active).tolist(), silent_loss)
    bad = [f"member {e}: {r}" for e, r in enumerate(result.reasons) if r is not None]
    if bad:
        import warnings
        warnings.warn(f"{len(bad)} of {ens.size} members diverged ({'; '.join(bad)})", RuntimeWarning, stacklevel=2)
    return result

"""``neuro.train``: the training loop for gradient rules (Adam by default).

Each iteration draws a fresh batch seeded by ``(seed, iteration)`` and hidden
noise (and a rule's perturbations) from a generator seeded by ``seed``, so the
same spec, seed and rule give the same loss history on the CPU.  With a
``run_dir`` it writes the history (``history.csv``) and checkpoints
(``checkpoint.pt``: weights, optimizer state, the generator's state, history —
tensors and plain data only) and resumes from them; a resumed run continues with
the numbers the uninterrupted run gives.

Training stops with ``TrainingError`` when it diverges: a non-finite loss,
gradient or weight, or a loss ``max_loss_growth`` times the first iteration's.
"""
from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from neuro.progress import tqdm

from .io import CheckpointError, atomic_torch_save, load_checkpoint


class TrainingError(RuntimeError):
    """Training stopped (e.g. the loss became NaN/Inf); the message says where the last good weights are.
    ``history`` holds the iterations that completed."""

    def __init__(self, message: str, history: "History | None" = None):
        super().__init__(message)
        self.history = history


@dataclass
class History:
    iteration: list[int] = field(default_factory=list)
    loss: list = field(default_factory=list)          # float, or a list per ensemble member
    accuracy: list = field(default_factory=list)

    def append(self, iteration: int, loss, accuracy) -> None:
        self.iteration.append(iteration)
        self.loss.append(loss)
        self.accuracy.append(accuracy)

    def __len__(self) -> int:
        return len(self.iteration)

    def to_csv(self, path) -> None:
        path = Path(path)
        tmp = path.with_suffix(".tmp")
        with open(tmp, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["iteration", "loss", "accuracy"])
            w.writerows(zip(self.iteration, self.loss, self.accuracy))
        tmp.replace(path)

    def state(self) -> dict:
        return {"iteration": self.iteration, "loss": self.loss, "accuracy": self.accuracy}


class MemoryEstimateError(ValueError):
    """A run would need more memory than the limit; the message gives the estimate and the limit."""


def _parse_bytes(text: str) -> int:
    text = text.strip().upper().removesuffix("B")
    scale = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
    try:
        if text and text[-1] in scale:
            return int(float(text[:-1]) * scale[text[-1]])
        return int(float(text))
    except ValueError:
        raise ValueError(f"NEURO_MEMORY_LIMIT must be a number of bytes (e.g. 8G, 512M), got {text!r}") from None


def memory_limit() -> int | None:
    """The memory a run may plan to use: ``NEURO_MEMORY_LIMIT`` (bytes, or 8G / 512M; ``0`` or
    ``none`` = no limit), else the memory the system has available now."""
    env = os.environ.get("NEURO_MEMORY_LIMIT")
    if env is not None:
        if env.strip().lower() in ("0", "none", "off", ""):
            return None
        return _parse_bytes(env)
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def estimate_memory(n_hidden: int, n_inputs: int, n_outputs: int, steps: int, batch_size: int, members: int = 1,
                    bytes_per_value: int = 4) -> int:
    """Bytes a training run needs, roughly: weights with their gradients, Adam moments and the last
    good copy (plus their float64 draw), and the ``[T, E, B, N]`` activations a rollout and its
    adjoint keep (states, rates, noise, adjoint, gradients)."""
    n, e = int(n_hidden), int(members)
    weights = e * (n * n + n * (n_inputs + n_outputs + 2)) * (6 * bytes_per_value + 8)
    activations = (steps + 1) * e * batch_size * (8 * n + 2 * (n_inputs + n_outputs)) * bytes_per_value
    return int(weights + activations)


def check_memory(needed: int, what: str) -> None:
    """Refuse (``MemoryEstimateError``) a run whose estimate exceeds ``memory_limit()``."""
    limit = memory_limit()
    if limit is not None and needed > limit:
        raise MemoryEstimateError(f"{what} needs about {needed / 2**30:.3g} GiB, more than the limit of "
                                  f"{limit / 2**30:.3g} GiB (available memory); make it smaller, or set "
                                  f"NEURO_MEMORY_LIMIT (e.g. 64G, or none) to override")


def trial_steps(task, dtype=torch.float32) -> int:
    """Time steps of one trial of ``task`` (from a one-trial batch)."""
    return int(task.batch(1, seed=(0, 0), dtype=dtype).inputs.shape[0])


def check_run_memory(spec, task, batch_size: int, members: int = 1, dtype=torch.float32, what: str = "this run"):
    """``check_memory`` for training ``members`` networks of ``spec`` on ``task``."""
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    bytes_per_value = torch.tensor([], dtype=dtype).element_size()
    need = estimate_memory(spec.n_hidden, spec.n_inputs, spec.n_outputs, trial_steps(task, dtype), batch_size,
                           members, bytes_per_value)
    check_memory(need, f"{what} (N = {spec.n_hidden}, batch {batch_size}, {members} network(s))")


def check_dt(spec, task) -> None:
    """A task's time step must be the network's: refuse a silent mismatch (inputs, delays and the
    firing-rate ceiling would all be wrong by the ratio)."""
    task_dt, net_dt = getattr(task, "dt", None), getattr(spec, "dt", None)
    if task_dt is None or net_dt is None or abs(float(task_dt) - float(net_dt)) <= 1e-9 * float(net_dt):
        return
    name = getattr(task, "name", type(task).__name__)
    raise ValueError(f"task {name!r} is built for dt = {float(task_dt):g} ms but the network runs at dt = "
                     f"{float(net_dt):g} ms; build the task for the network: neuro.tasks.get({name!r}, "
                     f"dt={float(net_dt):g})")


def _optimizer(name: str, params, lr: float):
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr)
    raise ValueError(f"optimizer must be 'adam' or 'sgd', got {name!r}")


def _scalar(x: torch.Tensor):
    x = x.detach()
    return float(x) if x.dim() == 0 else [float(v) for v in x]


def _magnitude(loss) -> float:
    vals = loss if isinstance(loss, list) else [loss]
    return max(abs(v) for v in vals) if vals else 0.0


def _check_fitted(net, history, rule) -> None:
    """After an online rule's own loop: refuse a run whose weights or losses are not finite."""
    bad = [k for k, p in net.trainable().items() if not bool(torch.isfinite(p.detach()).all())]
    losses = [v for v in getattr(history, "loss", []) if isinstance(v, (int, float))]
    if bad or (losses and not all(math.isfinite(v) for v in losses)):
        where = f"weights {', '.join(bad)}" if bad else "the loss"
        raise TrainingError(f"training with {getattr(rule, 'name', rule)} diverged: {where} became non-finite "
                            f"(lower the learning rate)", history)


def _load_training_state(ckpt: Path) -> dict:
    state = load_checkpoint(ckpt)
    missing = [k for k in ("model", "history", "iteration") if k not in state]
    if missing:
        raise CheckpointError(f"{ckpt} is not a training checkpoint (no {missing[0]!r}); "
                              f"delete it to start afresh")
    return state


def restore_weights(module, weights, path, what: str = "weights") -> None:
    """Load ``weights`` (a state dict read from the checkpoint ``path``) into ``module``; a mismatch is a
    one-line ``CheckpointError`` naming the file."""
    if not isinstance(weights, dict):
        raise CheckpointError(f"{path} holds no {what}; it is not a neuro checkpoint")
    try:
        module.load_state_dict(weights)
    except (RuntimeError, KeyError) as e:
        raise CheckpointError(f"{path} holds {what} of another network "
                              f"({str(e).strip().splitlines()[0][:160]}); use another run folder "
                              f"or delete it to start afresh") from None


class LoopCheckpoint:
    """``checkpoint.pt`` of a training loop other than ``train``'s own (the ``fit`` of an online rule).

    The loop saves everything its next iteration depends on — weights, optimizer states, the states of
    every random generator it draws from, running statistics, the history and the next iteration — as
    tensors and plain data, every ``every`` iterations and after the last; ``load`` gives that state back
    (None for a fresh run), so a rerun after a kill continues with the numbers the uninterrupted run
    gives.  The history is also written as ``trials.csv`` beside it.  A checkpoint written by another
    rule is refused by name.
    """

    def __init__(self, run_dir, rule: str, every: int = 100, resume: bool = True):
        if not isinstance(every, int) or isinstance(every, bool) or every < 1:
            raise ValueError(f"checkpoint_every must be an integer >= 1, got {every!r}")
        self.path = None if run_dir is None else Path(run_dir) / "checkpoint.pt"
        self.rule, self.every, self.resume = rule, every, resume

    def load(self) -> dict | None:
        if self.path is None or not self.resume or not self.path.exists():
            return None
        state = _load_training_state(self.path)
        if state.get("rule") != self.rule:
            raise CheckpointError(f"{self.path} was written by {state.get('rule') or 'another training loop'}, "
                                  f"not {self.rule}; use another run folder or delete it to start afresh")
        return state

    def due(self, iteration: int, iterations: int) -> bool:
        return self.path is not None and ((iteration + 1) % self.every == 0 or iteration == iterations - 1)

    def save(self, state: dict, history) -> None:
        """``state`` must hold ``model`` and ``iteration`` (the next one to run)."""
        if self.path is None:
            return
        atomic_torch_save({**state, "rule": self.rule, "history": history.state()}, self.path)
        history.to_csv(self.path.parent / "trials.csv")


def _fit_options(fit, run_dir, checkpoint_every: int, resume: bool) -> dict:
    """The checkpoint options an online rule's ``fit`` takes (those written before it had them take none)."""
    import inspect
    try:
        accepted = inspect.signature(fit).parameters
    except (TypeError, ValueError):
        return {}
    options = {"checkpoint_every": checkpoint_every, "resume": resume} if run_dir is not None else {}
    return {k: v for k, v in options.items() if k in accepted}


def train(net, task, rule, iterations: int = 500, lr: float = 1e-3, batch_size: int = 32, seed: int = 0,
          optimizer: str = "adam", run_dir=None, checkpoint_every: int = 100, progress: bool = True,
          eval_every: int = 1, resume: bool = True, desc: str | None = None,
          max_loss_growth: float | None = 1e4) -> History:
    """Train ``net`` on ``task`` with a learning ``rule``; return the per-iteration ``History``.

    Online rules (those with ``fit``: FORCE, full-FORCE, reward-modulated Hebbian …)
    run their own loop and are dispatched to; their result is checked for divergence. Those
    whose ``fit`` takes ``checkpoint_every`` (REINFORCE, reward-modulated Hebbian) checkpoint
    into ``run_dir`` and resume from it as exactly as this loop does (``LoopCheckpoint``).
    A resumed run takes ``lr`` from the arguments, not from the stored optimizer state.
    ``max_loss_growth``: stop when the loss exceeds this multiple of the first
    iteration's (None: only non-finite values stop training).
    """
    if isinstance(rule, str):           # a rule's name, as train_ensemble accepts
        from neuro import rules
        rule = rules.resolve(rule)
    check_dt(getattr(net, "spec", None), task)
    if not hasattr(rule, "loss_and_gradients"):
        if hasattr(rule, "fit"):
            history = rule.fit(net, task, iterations=iterations, seed=seed, progress=progress, run_dir=run_dir,
                               **_fit_options(rule.fit, run_dir, checkpoint_every, resume))
            _check_fitted(net, history, rule)
            return history
        raise TypeError(f"{rule!r} is not a learning rule (it has neither loss_and_gradients nor fit)")
    if not isinstance(iterations, int) or isinstance(iterations, bool) or iterations < 0:
        raise ValueError(f"iterations must be an integer >= 0, got {iterations!r}")
    if not (isinstance(lr, (int, float)) and lr > 0 and math.isfinite(lr)):
        raise ValueError(f"lr must be a finite number > 0, got {lr!r}")
    if not isinstance(checkpoint_every, int) or checkpoint_every < 1:
        raise ValueError(f"checkpoint_every must be an integer >= 1, got {checkpoint_every!r}")
    params = net.trainable()
    dtype = next(iter(params.values())).dtype if params else torch.float32
    if hasattr(net, "spec") and iterations > 0:
        check_run_memory(net.spec, task, batch_size, 1, dtype, "training")
    opt = _optimizer(optimizer, list(params.values()), lr)
    history, start = History(), 0
    generator = torch.Generator(device=next(iter(params.values())).device if params else "cpu")
    generator.manual_seed(seed * 1_000_003)
    ckpt = Path(run_dir) / "checkpoint.pt" if run_dir is not None else None
    if ckpt is not None:
        ckpt.parent.mkdir(parents=True, exist_ok=True)
        if resume and ckpt.exists():
            state = _load_training_state(ckpt)
            if state.get("rule") not in (None, getattr(rule, "name", None)):
                raise CheckpointError(f"{ckpt} was written by {state['rule']}, not "
                                      f"{getattr(rule, 'name', 'this rule')}; use another run folder or delete "
                                      f"it to start afresh")
            restore_weights(net, state["model"], ckpt)
            if state.get("optimizer") is not None:
                opt.load_state_dict(state["optimizer"])
            for group in opt.param_groups:      # the lr asked for now, not the stored one
                group["lr"] = lr
            history = History(**state["history"])
            start = int(state["iteration"])
            if state.get("generator") is not None:
                generator.set_state(state["generator"])
            else:       # checkpoints from before generator states were saved
                generator.manual_seed(seed * 1_000_003 + start)

    def save(iteration: int, hist: History, gen_state, optimizer_state) -> None:
        if ckpt is not None:
            atomic_torch_save({"model": net.state_dict(), "optimizer": optimizer_state,
                               "history": hist.state(), "iteration": iteration, "generator": gen_state}, ckpt)
            hist.to_csv(ckpt.parent / "history.csv")

    bar = tqdm(range(start, iterations), desc=desc or f"{getattr(rule, 'name', 'rule')}", disable=not progress,
               leave=False, dynamic_ncols=True, mininterval=1.0)
    good, good_gen = None, None
    first = _magnitude(history.loss[0]) if len(history) else None
    for it in bar:
        gen_before = generator.get_state()
        batch = task.batch(batch_size, seed=(seed, it), dtype=dtype)
        loss, outputs, grads = rule.loss_and_gradients(net, batch, task, generator=generator)
        bad = not bool(torch.isfinite(loss).all()) or any(not bool(torch.isfinite(g).all()) for g in grads.values())
        reason = "loss or gradient became non-finite"
        if not bad and first is not None and max_loss_growth is not None \
                and _magnitude(_scalar(loss)) > max_loss_growth * max(first, 1e-3):
            bad, reason = True, f"loss grew beyond {max_loss_growth:g} times the first iteration's ({first:.4g})"
        if not bad and not all(bool(torch.isfinite(p.detach()).all()) for p in params.values()):
            bad, reason = True, "weights became non-finite"
        if bad:
            if good is not None:   # roll back to the start of the last iteration whose loss was good
                with torch.no_grad():
                    for k, p in params.items():
                        p.copy_(good[k])
                kept = History(history.iteration[:-1], history.loss[:-1], history.accuracy[:-1])
                # the optimizer state is not kept: a rerun restarts it with its own lr
                save(it - 1, kept, good_gen, None)
                history = kept
            where = f"; the last good weights are restored in the model and saved to {ckpt}" if ckpt else ""
            raise TrainingError(f"{reason} at iteration {it} "
                                f"(loss={_scalar(loss)}, lr={lr}, rule={getattr(rule, 'name', rule)}){where}",
                                history)
        acc = task.accuracy(outputs, batch) if (it % eval_every == 0 or it == iterations - 1) else float("nan")
        history.append(it, _scalar(loss), acc)
        if first is None:
            first = _magnitude(history.loss[-1])
        good, good_gen = {k: p.detach().clone() for k, p in params.items()}, gen_before
        for k, p in params.items():
            p.grad = grads[k]
        opt.step()
        opt.zero_grad(set_to_none=True)
        if progress:
            l = history.loss[-1]
            bar.set_postfix(loss=f"{(sum(l) / len(l)) if isinstance(l, list) else l:.4f}", acc=f"{acc:.2f}",
                            refresh=False)   # the bar redraws at most every mininterval, not per iteration
        if ckpt is not None and ((it + 1) % checkpoint_every == 0 or it == iterations - 1):
            save(it + 1, history, generator.get_state(), opt.state_dict())
    if params and not all(bool(torch.isfinite(p.detach()).all()) for p in params.values()):
        raise TrainingError(f"weights became non-finite in the last step (lr={lr}); lower the learning rate",
                            history)
    return history

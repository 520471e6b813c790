"""NeuroGym adapters (the only module that imports neurogym).

Trials are drawn one by one with ``env.new_trial()`` from an env seeded per
batch, so a (batch_size, seed) pair always gives the same trials; shorter
trials are padded at the end and the padding is not scored.  Targets are the
env's ground-truth action per step (0 = fixate); the loss is cross-entropy on
every step of the trial, as in Yang & Wang's primer code; accuracy is the
argmax choice at a trial's last step against its ground truth.

PerceptualDecisionMaking and DelayMatchSample with fixed period durations (their
defaults) are drawn by a replica of their ``new_trial`` that builds the whole batch
with array operations: the same random draws in the same order, the same float32
arithmetic, so the trials are bit-identical to NeuroGym's (a test holds them equal)
at a fraction of the cost (NeuroGym spends ~1.5 ms per trial in Python bookkeeping,
which dominated training at dt = 100 ms).
"""
from __future__ import annotations

import warnings

import numpy as np
import torch

from .base import Batch, Task

try:
    import neurogym as _ngym
except ModuleNotFoundError:  # pragma: no cover - install.sh installs it
    _ngym = None


def make_env(env_id: str, **kwargs):
    """``neurogym.make(env_id, **kwargs)`` without gymnasium's warning that NeuroGym's env metadata
    lacks ``render_modes`` (printed on every make, nothing a user can act on)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*environment creator metadata", category=UserWarning)
        return _ngym.make(env_id, **kwargs)


class NeuroGymTask(Task):
    kind = "classification"

    def __init__(self, env_id: str, name: str, dt: float = 20.0, **env_kwargs):
        if _ngym is None:
            raise ImportError(f"task {name!r} needs neurogym; install it with `bash install.sh` "
                              "(or `pip install neurogym==1.0.8 gymnasium==0.29.1`)")
        self.name, self.env_id, self.dt = name, env_id, float(dt)
        self.env = make_env(env_id, dt=dt, **env_kwargs).unwrapped
        self.n_inputs = int(self.env.observation_space.shape[0])
        self.n_outputs = int(self.env.action_space.n)

    def trials(self, batch_size, rng):
        self.env.seed(int(rng.integers(2**31 - 1)))
        replica = _REPLICAS.get(type(self.env).__name__)
        if replica is not None and type(self.env).__module__.startswith("neurogym.") and _fixed_timing(self.env):
            return replica(self.env, batch_size)
        obs, gts, infos = [], [], []
        for _ in range(batch_size):
            infos.append(self.env.new_trial())
            obs.append(np.asarray(self.env.ob, dtype=float))
            gts.append(np.asarray(self.env.gt, dtype=int))
        T = max(len(g) for g in gts)
        x = np.zeros((T, batch_size, self.n_inputs))
        y = np.zeros((T, batch_size), dtype=int)
        mask = np.zeros((T, batch_size))
        last = np.zeros(batch_size, dtype=int)
        for b, (o, g) in enumerate(zip(obs, gts)):
            x[: len(o), b], y[: len(g), b], mask[: len(g), b] = o, g, 1.0
            last[b] = len(g) - 1
        return x, y, mask, {"last": last, "trials": infos}

    def accuracy(self, outputs: torch.Tensor, batch: Batch) -> float:
        with torch.no_grad():
            last = torch.as_tensor(batch.info["last"], device=outputs.device)
            idx = torch.arange(len(last), device=outputs.device)
            final = outputs[last, ..., idx, :] if outputs.dim() == 3 else outputs[last, :, idx, :]
            truth = batch.targets[last, idx].to(outputs.device)
            if outputs.dim() == 4:  # [B, E, n_out] after advanced indexing
                return float((final.argmax(-1) == truth.unsqueeze(-1)).double().mean())
            return float((final.argmax(-1) == truth).double().mean())


def _fixed_timing(env) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in env.timing.values())


def _choice(rng, values):
    """``RandomState.choice(values)`` (uniform, one draw): the element at ``randint(len)``, the same
    draw it makes, without its per-call overhead."""
    return values[rng.randint(0, len(values))]


def _periods(env, names):
    """Step bounds ``{name: (start, end)}`` and the trial's step count, computed as
    ``TrialEnv.add_period`` does for fixed durations (each floored to a multiple of dt)."""
    bounds, start = {}, 0
    for name in names:
        duration = (env.timing[name] // env.dt) * env.dt
        bounds[name] = (int(start / env.dt), int((start + duration) / env.dt))
        start = start + duration
    return bounds, int(start / env.dt)


def _assemble(ob, gt):
    """The adapter's ``(x, y, mask, info)`` from a batch of equal-length trials ``ob [T, B, n]``, ``gt [T, B]``."""
    T, B = gt.shape
    info = {"last": np.full(B, T - 1, dtype=int)}
    return ob.astype(float), gt.astype(int), np.ones((T, B)), info


def _perceptual_decision_making(env, batch_size):
    """``PerceptualDecisionMaking._new_trial`` for a batch (Britten et al. 1992 random-dot task)."""
    names = ["fixation", "stimulus", "delay", "decision"]
    (bounds, T), n_ring = _periods(env, names), len(env.theta)
    s0, s1 = bounds["stimulus"]
    truth, coh, noise = [], [], []
    for _ in range(batch_size):                 # the env's draws, in its order
        truth.append(_choice(env.rng, env.choices))
        coh.append(_choice(env.rng, env.cohs))
        noise.append(env.rng.randn(s1 - s0, n_ring) * env.sigma)
    truth, coh = np.asarray(truth), np.asarray(coh, dtype=float)
    ob = np.zeros((T, batch_size, 1 + n_ring), dtype=np.float32)
    for name in names[:3]:
        ob[slice(*bounds[name]), :, 0] += 1
    stim = np.cos(env.theta[None, :] - env.theta[truth][:, None]) * (coh[:, None] / 200) + 0.5
    ob[s0:s1, :, 1:] += stim
    ob[s0:s1, :, 1:] += np.stack(noise, 1)
    gt = np.zeros((T, batch_size), dtype=np.int64)
    gt[slice(*bounds["decision"])] = np.asarray(env.action_space.name["choice"])[truth]
    x, y, mask, info = _assemble(ob, gt)
    info["trials"] = [{"ground_truth": g, "coh": c} for g, c in zip(truth, coh)]
    return x, y, mask, info


def _delay_match_sample(env, batch_size):
    """``DelayMatchSample._new_trial`` for a batch (Miller et al. 1996)."""
    names = ["fixation", "sample", "delay", "test", "decision"]
    (bounds, T), n_ring = _periods(env, names), len(env.theta)
    (a0, a1), (b0, b1) = bounds["sample"], bounds["test"]
    truth, sample, noise_a, noise_b = [], [], [], []
    for _ in range(batch_size):
        truth.append(_choice(env.rng, env.choices))
        sample.append(_choice(env.rng, env.theta))
        noise_a.append(env.rng.randn(a1 - a0, n_ring) * env.sigma)
        noise_b.append(env.rng.randn(b1 - b0, n_ring) * env.sigma)
    truth, sample = np.asarray(truth), np.asarray(sample)
    test = np.where(truth == 1, sample, np.mod(sample + np.pi, 2 * np.pi))
    ob = np.zeros((T, batch_size, 1 + n_ring), dtype=np.float32)
    ob[:, :, 0] += 1
    ob[slice(*bounds["decision"]), :, 0] = 0
    ob[a0:a1, :, 1:] += np.cos(env.theta[None, :] - sample[:, None]) * 0.5 + 0.5
    ob[b0:b1, :, 1:] += np.cos(env.theta[None, :] - test[:, None]) * 0.5 + 0.5
    ob[a0:a1, :, 1:] += np.stack(noise_a, 1)
    ob[b0:b1, :, 1:] += np.stack(noise_b, 1)
    gt = np.zeros((T, batch_size), dtype=np.int64)
    gt[slice(*bounds["decision"])] = truth
    x, y, mask, info = _assemble(ob, gt)
    info["trials"] = [{"ground_truth": g, "sample_theta": s, "test_theta": t} for g, s, t in zip(truth, sample, test)]
    return x, y, mask, info


_REPLICAS = {"PerceptualDecisionMaking": _perceptual_decision_making, "DelayMatchSample": _delay_match_sample}


def perceptual_decision_making(dt: float = 20.0, **kw) -> NeuroGymTask:
    """2AF: PerceptualDecisionMaking with NeuroGym's default timing."""
    return NeuroGymTask("PerceptualDecisionMaking-v0", "2af", dt=dt, **kw)


def delay_match_sample(dt: float = 20.0, **kw) -> NeuroGymTask:
    """DMS: DelayMatchSample with NeuroGym's default timing."""
    return NeuroGymTask("DelayMatchSample-v0", "dms", dt=dt, **kw)


def context_decision_making(dt: float = 50.0, **kw) -> NeuroGymTask:
    """Mante et al. 2013 context-dependent integration, timing of the data-similarity paper:
    350 ms fixation, 750 ms stimulus, 300 ms delay, 300 ms decision at dt = 50 ms."""
    kw.setdefault("timing", {"fixation": 350, "stimulus": 750, "delay": 300, "decision": 300})
    return NeuroGymTask("ContextDecisionMaking-v0", "context", dt=dt, **kw)

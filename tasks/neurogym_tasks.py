"""NeuroGym adapters (the only module that imports neurogym).

Trials are drawn one by one with ``env.new_trial()`` from an env seeded per
batch, so a (batch_size, seed) pair always gives the same trials; shorter
trials are padded at the end and the padding is not scored.  Targets are the
env's ground-truth action per step (0 = fixate); the loss is cross-entropy on
every step of the trial, as in Yang & Wang's primer code; accuracy is the
argmax choice at a trial's last step against its ground truth.
"""
from __future__ import annotations

import numpy as np
import torch

from .base import Batch, Task

try:
    import neurogym as _ngym
except ModuleNotFoundError:  # pragma: no cover - install.sh installs it
    _ngym = None


class NeuroGymTask(Task):
    kind = "classification"

    def __init__(self, env_id: str, name: str, dt: float = 20.0, **env_kwargs):
        if _ngym is None:
            raise ImportError(f"task {name!r} needs neurogym; install it with `bash install.sh` "
                              "(or `pip install neurogym==1.0.8 gymnasium==0.29.1`)")
        self.name, self.env_id, self.dt = name, env_id, float(dt)
        self.env = _ngym.make(env_id, dt=dt, **env_kwargs).unwrapped
        self.n_inputs = int(self.env.observation_space.shape[0])
        self.n_outputs = int(self.env.action_space.n)

    def trials(self, batch_size, rng):
        self.env.seed(int(rng.integers(2**31 - 1)))
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

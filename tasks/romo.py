"""Romo vibrotactile frequency discrimination, after Schuessler et al. 2020.

Their ``task_generators.py`` measures time in units of the network's τ:
fixation 3, first stimulus 1, gap between stimuli U(2, 8), second stimulus 1,
decision delay 5, decision 10.  One input channel carries the stimulus
amplitudes f1, f2 ~ U(0.5, 1.5) with |f1 - f2| >= 0.2; of two output channels,
the one of the larger stimulus (channel 0: f1 > f2, channel 1: f2 > f1) targets
0.5 during the decision window and the other 0.  The loss mask covers zero
output from the start until f2 ends, plus the decision window; the decision
delay is not scored.  Every trial of a batch has the longest possible length;
a trial's steps after its decision window are not scored.
"""
from __future__ import annotations

import numpy as np
import torch

from .base import Batch, Task


class Romo(Task):
    name = "romo"
    kind = "regression"
    n_inputs = 1
    n_outputs = 2

    def __init__(self, dt: float = 20.0, tau: float = 100.0, fixation: float = 3, stimulus: float = 1,
                 gap: tuple[float, float] = (2, 8), delay: float = 5, decision: float = 10,
                 f_range: tuple[float, float] = (0.5, 1.5), min_diff: float = 0.2, target: float = 0.5):
        if not (dt > 0 and tau >= dt):
            raise ValueError(f"romo needs 0 < dt <= tau, got dt={dt}, tau={tau}")
        if f_range[1] - f_range[0] <= min_diff:
            raise ValueError(f"romo: f_range {f_range} leaves no pair with |f1 - f2| >= {min_diff}")
        self.dt, self.tau = float(dt), float(tau)
        self.fixation, self.stimulus, self.gap = fixation, stimulus, gap
        self.delay, self.decision = delay, decision
        self.f_range, self.min_diff, self.target = f_range, min_diff, target
        longest = fixation + 2 * stimulus + gap[1] + delay + decision
        self.n_steps = self._steps(longest)

    def _steps(self, units_of_tau: float) -> int:
        return int(round(units_of_tau * self.tau / self.dt))

    def _frequencies(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        f1, f2 = rng.uniform(*self.f_range, size=n), rng.uniform(*self.f_range, size=n)
        bad = np.abs(f1 - f2) < self.min_diff
        while bad.any():   # rejection sampling keeps the pairs uniform on the allowed region
            f1[bad], f2[bad] = rng.uniform(*self.f_range, size=bad.sum()), rng.uniform(*self.f_range, size=bad.sum())
            bad = np.abs(f1 - f2) < self.min_diff
        return f1, f2

    def trials(self, batch_size, rng):
        f1, f2 = self._frequencies(batch_size, rng)
        gaps = rng.uniform(*self.gap, size=batch_size)
        return self._build(f1, f2, gaps)

    def _build(self, f1, f2, gaps):
        """Trials from their conditions, vectorized over the conditions' shape (``[B]``, or ``[E, B]``
        for an ensemble's members): epoch bounds per trial, compared against the time axis."""
        T = self.n_steps
        s1 = self._steps(self.fixation)
        e1 = s1 + self._steps(self.stimulus)
        s2 = e1 + np.rint(gaps * self.tau / self.dt).astype(int)     # rounds as _steps does (half to even)
        e2 = s2 + self._steps(self.stimulus)
        d0 = e2 + self._steps(self.delay)
        d1 = d0 + self._steps(self.decision)
        t = np.arange(T).reshape((T,) + (1,) * f1.ndim)
        decision = (t >= d0) & (t < d1)
        x = (np.where((t >= s1) & (t < e1), f1, 0.0) + np.where((t >= s2) & (t < e2), f2, 0.0))[..., None]
        mask = ((t < e2) | decision).astype(float)
        first = f1 > f2
        y = np.stack([np.where(decision & first, self.target, 0.0), np.where(decision & ~first, self.target, 0.0)], -1)
        return x, y, mask, {"f1": f1, "f2": f2, "decision": decision, "choice": (f2 > f1).astype(int)}

    def member_batches(self, batch_size: int, seeds: list, dtype=torch.float32):
        """As ``Task.member_batches`` (the same trials per seed), built in one pass for all members."""
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        draws = []
        for seed in seeds:
            rng = np.random.default_rng(seed)
            f1, f2 = self._frequencies(batch_size, rng)
            draws.append((f1, f2, rng.uniform(*self.gap, size=batch_size)))
        f1, f2, gaps = (np.stack(d) for d in zip(*draws))
        x, y, mask, info = self._build(f1, f2, gaps)
        stacked = Batch(torch.as_tensor(x, dtype=dtype), torch.as_tensor(y, dtype=dtype),
                        torch.as_tensor(mask, dtype=dtype), info)
        members = [Batch(stacked.inputs[:, e], stacked.targets[:, e], stacked.mask[:, e],
                         {"f1": f1[e], "f2": f2[e], "decision": info["decision"][:, e], "choice": info["choice"][e]})
                   for e in range(len(seeds))]
        stacked.info["members"] = members
        return stacked, members

    def member_accuracies(self, outputs: torch.Tensor, batches: list) -> list[float]:
        """``accuracy`` per member, computed for all members at once."""
        info = {"decision": np.stack([b.info["decision"] for b in batches], 1),
                "choice": np.stack([b.info["choice"] for b in batches])}
        return self._correct(outputs, info).double().mean(-1).tolist()

    def _correct(self, outputs: torch.Tensor, info: dict) -> torch.Tensor:
        with torch.no_grad():
            w = torch.as_tensor(info["decision"], dtype=outputs.dtype, device=outputs.device)
            w = w.reshape(w.shape[:1] + (1,) * (outputs.dim() - 1 - w.dim()) + w.shape[1:])   # extra lead dims
            mean = (outputs * w.unsqueeze(-1)).sum(0) / w.sum(0).unsqueeze(-1)
            correct = torch.as_tensor(info["choice"], device=outputs.device)
            return mean.argmax(-1) == correct

    def accuracy(self, outputs: torch.Tensor, batch: Batch) -> float:
        """Fraction of trials whose larger mean output over the decision window is the right channel."""
        return float(self._correct(outputs, batch.info).double().mean())

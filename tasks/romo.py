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

import math

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
        T = self.n_steps
        f1, f2 = self._frequencies(batch_size, rng)
        gaps = rng.uniform(*self.gap, size=batch_size)
        x = np.zeros((T, batch_size, 1))
        y = np.zeros((T, batch_size, 2))
        mask = np.zeros((T, batch_size))
        decision = np.zeros((T, batch_size), dtype=bool)
        s1 = self._steps(self.fixation)
        e1 = s1 + self._steps(self.stimulus)
        for b in range(batch_size):
            s2 = e1 + self._steps(gaps[b])
            e2 = s2 + self._steps(self.stimulus)
            d0 = e2 + self._steps(self.delay)
            d1 = d0 + self._steps(self.decision)
            x[s1:e1, b, 0], x[s2:e2, b, 0] = f1[b], f2[b]
            mask[:e2, b] = 1.0
            mask[d0:d1, b] = 1.0
            y[d0:d1, b, 0 if f1[b] > f2[b] else 1] = self.target
            decision[d0:d1, b] = True
        return x, y, mask, {"f1": f1, "f2": f2, "decision": decision, "choice": (f2 > f1).astype(int)}

    def accuracy(self, outputs: torch.Tensor, batch: Batch) -> float:
        """Fraction of trials whose larger mean output over the decision window is the right channel."""
        with torch.no_grad():
            window = torch.as_tensor(batch.info["decision"], dtype=outputs.dtype, device=outputs.device)
            w = window if outputs.dim() == 3 else window.unsqueeze(1)
            mean = (outputs * w.unsqueeze(-1)).sum(0) / w.sum(0).unsqueeze(-1)
            choice = mean.argmax(-1)
            correct = torch.as_tensor(batch.info["choice"], device=outputs.device)
            return float((choice == correct).double().mean())

"""A delayed-reaching task shaped like Sussillo, Churchland, Kaufman & Shenoy 2015
("A neural network that finds a naturalistic solution for the production of muscle
activity"), the data-similarity paper's second dataset.

16 inputs, 7 EMG-like outputs, 27 reach conditions, T = 186 steps of 10 ms.  As in
Sussillo et al., 15 inputs carry a static, condition-specific preparatory signal
(there: the top principal components of the monkey's preparatory activity; here: a
smooth function of the reach angle and distance) and the 16th is the hold cue,
which drops at the go time.  The targets are synthetic (the EMG recordings are not
redistributable): each muscle has a preferred direction and fires two smooth,
rectified bursts after the go cue (agonist, then a later antagonist-like burst),
whose amplitudes are cosine-tuned to the reach angle; they are zero while
holding.  Every step is scored (mean squared error, the paper's loss); the score is
``1 - NMSE`` (``Task.normalized_accuracy``, the paper's x-axis).

``conditions_batch()`` gives one noise-free trial per condition, in order: the
``[conditions, time, …]`` layout in which model activity is compared with data.
"""
from __future__ import annotations

import numpy as np
import torch

from .base import Batch, Task


class Reaching(Task):
    name = "reaching"
    kind = "regression"
    n_inputs = 16
    n_outputs = 7

    def __init__(self, dt: float = 10.0, steps: int = 186, go: int = 60, conditions: int = 27,
                 go_jitter: int = 0, input_noise: float = 0.0):
        if not (isinstance(steps, int) and steps >= 20):
            raise ValueError(f"reaching steps must be an integer >= 20, got {steps!r}")
        if not (isinstance(go, int) and 1 <= go < steps - 10):
            raise ValueError(f"reaching go must be an integer step in [1, {steps - 11}], got {go!r}")
        if not (isinstance(conditions, int) and conditions >= 1):
            raise ValueError(f"reaching conditions must be an integer >= 1, got {conditions!r}")
        if not (isinstance(go_jitter, int) and 0 <= go_jitter < go):
            raise ValueError(f"reaching go_jitter must be an integer in [0, go), got {go_jitter!r}")
        if not (dt > 0):
            raise ValueError(f"reaching dt must be > 0 ms, got {dt!r}")
        self.dt, self.steps, self.go, self.n_conditions = float(dt), steps, go, conditions
        self.go_jitter, self.input_noise = go_jitter, float(input_noise)
        # conditions: 27 = 9 directions × 3 distances (curvature in Sussillo et al.)
        index = np.arange(conditions)
        self.angles = 2 * np.pi * (index % 9) / 9 + 0.2 * (index // 9)
        self.distances = 1.0 + 0.25 * (index // 9)
        rng = np.random.default_rng(2015)                # fixed muscle and input tuning
        self.preferred = rng.uniform(0, 2 * np.pi, size=(2, self.n_outputs))
        self.latency = rng.integers(8, 16, size=self.n_outputs)          # steps after go
        self.width = rng.uniform(6, 12, size=self.n_outputs)
        self.input_map = rng.normal(size=(7, 15)) / np.sqrt(7)
        self.periods = {"hold": 0.0, "go": go * self.dt, "end": steps * self.dt}   # ms, for time alignment

    # -- per condition -----------------------------------------------------
    def preparatory_input(self, c: int) -> np.ndarray:
        """The 15 static condition inputs: harmonics of the angle and the distance, mixed."""
        a, d = self.angles[c], self.distances[c]
        features = np.array([np.cos(a), np.sin(a), np.cos(2 * a), np.sin(2 * a), d - 1.25,
                             d * np.cos(a), d * np.sin(a)])
        return features @ self.input_map

    def emg(self, c: int, go: int) -> np.ndarray:
        """Targets ``[steps, 7]``: two rectified, cosine-tuned bursts per muscle after ``go``."""
        t = np.arange(self.steps)[:, None] - go
        a, d = self.angles[c], self.distances[c]
        first = d * (1 + np.cos(a - self.preferred[0])) / 2
        second = 0.6 * d * (1 + np.cos(a - self.preferred[1])) / 2
        bump = lambda centre, width: np.exp(-0.5 * ((t - centre) / width) ** 2)
        out = first * bump(self.latency, self.width) + second * bump(self.latency + 2.5 * self.width, self.width)
        return np.where(t >= 0, out, 0.0)

    def trials(self, batch_size, rng):
        conds = rng.integers(self.n_conditions, size=batch_size)
        gos = self.go + (rng.integers(-self.go_jitter, self.go_jitter + 1, size=batch_size) if self.go_jitter
                         else np.zeros(batch_size, dtype=int))
        return self._trials(conds, gos, rng)

    def _trials(self, conds, gos, rng=None):
        B = len(conds)
        x = np.zeros((self.steps, B, self.n_inputs))
        y = np.zeros((self.steps, B, self.n_outputs))
        for b, (c, go) in enumerate(zip(conds, gos)):
            x[:, b, :15] = self.preparatory_input(c)
            x[:go, b, 15] = 1.0                           # hold cue
            y[:, b] = self.emg(c, go)
        if self.input_noise and rng is not None:
            x += self.input_noise * rng.normal(size=x.shape)
        return x, y, np.ones((self.steps, B)), {"condition": np.asarray(conds), "go": np.asarray(gos)}

    def conditions_batch(self, dtype=torch.float32) -> Batch:
        """One noise-free trial per condition (go at ``self.go``), in condition order."""
        conds = np.arange(self.n_conditions)
        x, y, m, info = self._trials(conds, np.full(len(conds), self.go))
        return Batch(torch.as_tensor(x, dtype=dtype), torch.as_tensor(y, dtype=dtype),
                     torch.as_tensor(m, dtype=dtype), info)

    def accuracy(self, outputs: torch.Tensor, batch: Batch) -> float:
        """``1 - NMSE`` (the data-similarity paper's normalized accuracy)."""
        if outputs.dim() == 3:
            return self.normalized_accuracy(outputs, batch)
        return float(np.mean([self.normalized_accuracy(outputs[:, e], Batch(batch.inputs, batch.targets[:, e]
                                                                            if batch.targets.dim() == 4 else
                                                                            batch.targets, batch.mask[:, e]
                                                                            if batch.mask.dim() == 3 else batch.mask))
                              for e in range(outputs.shape[1])]))

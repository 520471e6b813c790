"""Target signals for FORCE learning: periodic functions of time, read in chunks.

``SumOfSines`` is Sussillo & Abbott's (2009) Figure 2 target,
``(1.3/1.5)[sin(πt/60) + ½ sin(2πt/60) + ⅙ sin(3πt/60) + ⅓ sin(4πt/60)]`` with t in ms
(period 120 ms).  The Task interface gives a chunk of ``n_steps`` with no input.
"""
from __future__ import annotations

import numpy as np

from .base import Task


class SumOfSines(Task):
    name = "sum_of_sines"
    kind = "regression"
    n_inputs = 1
    n_outputs = 1

    def __init__(self, dt: float = 1.0, n_steps: int = 1200, amplitude: float = 1.3 / 1.5, period: float = 120.0):
        self.dt, self.n_steps, self.amplitude, self.period = float(dt), int(n_steps), amplitude, period

    def signal(self, t_ms: np.ndarray) -> np.ndarray:
        w = 2 * np.pi * np.asarray(t_ms, dtype=float) / self.period
        s = np.sin(w) + np.sin(2 * w) / 2 + np.sin(3 * w) / 6 + np.sin(4 * w) / 3
        return (self.amplitude * s)[:, None]

    def trials(self, batch_size, rng):
        t = np.arange(self.n_steps) * self.dt
        y = np.repeat(self.signal(t)[:, None, :], batch_size, axis=1)
        return np.zeros((self.n_steps, batch_size, 1)), y, np.ones((self.n_steps, batch_size)), {}

    def accuracy(self, outputs, batch) -> float:
        return self.normalized_accuracy(outputs, batch)

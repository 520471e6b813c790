"""Target signals for FORCE and full-FORCE, read in consecutive segments.

Online rules run the network without resets and ask the task for consecutive pieces of
the target: ``segment(k, dtype) -> (inputs [T,1,n_in], targets [T,1,n_out])`` is piece k.
They are also Tasks (``batch(1, seed)``), so ``neuro.train`` and the scoring helpers take
them; a batch starts at a random phase of the period.

- ``SumOfSines``: Sussillo & Abbott 2009 (Fig. 2), ``(1.3/1.5)[sin(πs/60) + ½ sin(2πs/60)
  + ⅙ sin(3πs/60) + ⅓ sin(4πs/60)]`` with s in units of the rate time constant τ (their code
  has τ = 1, dt = 0.1), so with τ = 10 ms the period is 120 τ = 1200 ms.
- ``Sine``: the 5 Hz sinusoid of Nicola & Clopath 2017 (Fig. 2).
- ``Melody``: a periodic note sequence, one output per pitch and a half-sine bump while
  that note sounds (Nicola & Clopath 2017 Fig. 4's "Ode to Joy" target in spirit).
- ``PulseChirp``: the full-FORCE demo of DePasquale et al. 2018 (their ``trial_osc.m``):
  2 s trials, a 50 ms input pulse at the start, and as output a chirp ``sin 2πφ(s)`` with
  ``φ(s) = 6s² + 3s`` for ``s = t/2 s ∈ [0, ½]`` (instantaneous frequency 1.5 → 4.5 Hz),
  followed by its negated mirror image ``φ(s) = 6 - φ(1 - s)`` (4.5 → 1.5 Hz).
"""
from __future__ import annotations

import numpy as np
import torch

from .base import Task


def _positive(name: str, value) -> float:
    if not (isinstance(value, (int, float)) and np.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


class TargetTask(Task):
    """A target read in consecutive segments of ``n_steps`` steps (the online rules' protocol)."""

    kind = "regression"

    def segment(self, index: int, dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def accuracy(self, outputs, batch) -> float:
        return self.normalized_accuracy(outputs, batch)


class PeriodicTarget(TargetTask):
    """A periodic function of time ``signal(t_ms) -> [T, n_out]`` with no input."""

    n_inputs = 1
    period = 1.0

    def __init__(self, dt: float, n_steps: int):
        self.dt = _positive("dt", dt)
        if not (isinstance(n_steps, int) and n_steps >= 1):
            raise ValueError(f"n_steps must be an integer >= 1, got {n_steps!r}")
        self.n_steps = n_steps

    def signal(self, t_ms: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def segment(self, index: int, dtype=torch.float32):
        t = (index * self.n_steps + np.arange(self.n_steps)) * self.dt
        y = torch.as_tensor(self.signal(t), dtype=dtype)[:, None, :]
        return torch.zeros(self.n_steps, 1, self.n_inputs, dtype=dtype), y

    def trials(self, batch_size, rng):
        start = rng.uniform(0, self.period, batch_size)
        t = start[None, :] + np.arange(self.n_steps)[:, None] * self.dt            # [T, B]
        y = self.signal(t.reshape(-1)).reshape(self.n_steps, batch_size, self.n_outputs)
        return np.zeros((self.n_steps, batch_size, 1)), y, np.ones((self.n_steps, batch_size)), {"start_ms": start}


class SumOfSines(PeriodicTarget):
    name = "sum_of_sines"
    n_outputs = 1

    def __init__(self, dt: float = 1.0, n_steps: int = 1200, amplitude: float = 1.3 / 1.5, period: float = 1200.0):
        super().__init__(dt, n_steps)
        self.amplitude, self.period = amplitude, _positive("period", period)

    def signal(self, t_ms):
        w = 2 * np.pi * np.asarray(t_ms, dtype=float) / self.period
        s = np.sin(w) + np.sin(2 * w) / 2 + np.sin(3 * w) / 6 + np.sin(4 * w) / 3
        return (self.amplitude * s)[:, None]


class Sine(PeriodicTarget):
    name = "sine"
    n_outputs = 1

    def __init__(self, dt: float = 0.05, n_steps: int = 4000, frequency: float = 5.0, amplitude: float = 1.0):
        super().__init__(dt, n_steps)
        self.frequency, self.amplitude = _positive("frequency", frequency), amplitude
        self.period = 1000.0 / self.frequency

    def signal(self, t_ms):
        return (self.amplitude * np.sin(2 * np.pi * self.frequency * np.asarray(t_ms, dtype=float) / 1000.0))[:, None]


# the first phrase of "Ode to Joy" in C major (pitches C D E F G -> outputs 0..4), quarter notes
ODE_TO_JOY = "E E F G G F E D C C D E E D D"


class Melody(PeriodicTarget):
    """A repeating note sequence: output ``c`` (one per pitch, in order of first appearance in
    ``pitches``) is a half-sine bump ``sin(π τ/d)`` during each of its notes of duration d."""

    name = "melody"

    def __init__(self, dt: float = 1.0, n_steps: int = 1000, notes: str = ODE_TO_JOY, note_ms: float = 200.0,
                 pitches: str = "CDEFG"):
        super().__init__(dt, n_steps)
        seq = notes.split()
        unknown = sorted(set(seq) - set(pitches))
        if not seq or unknown:
            raise ValueError(f"notes must be a non-empty space-separated sequence of pitches from {pitches!r}, "
                             f"got unknown {unknown}" if unknown else f"notes must not be empty, got {notes!r}")
        self.channels = np.array([pitches.index(p) for p in seq])
        self.note_ms = _positive("note_ms", note_ms)
        self.n_outputs = len(pitches)
        self.period = self.note_ms * len(seq)

    def signal(self, t_ms):
        phase = np.mod(np.asarray(t_ms, dtype=float), self.period)
        note = np.minimum((phase // self.note_ms).astype(int), len(self.channels) - 1)
        bump = np.sin(np.pi * (phase - note * self.note_ms) / self.note_ms)
        y = np.zeros((phase.size, self.n_outputs))
        y[np.arange(phase.size), self.channels[note]] = bump
        return y


class PulseChirp(TargetTask):
    """DePasquale et al. 2018's demo task: every trial is the same pulse -> chirp pair."""

    name = "pulse_chirp"
    n_inputs = 1
    n_outputs = 1

    def __init__(self, dt: float = 1.0, trial_ms: float = 2000.0, pulse_ms: float = 50.0):
        self.dt = _positive("dt", dt)
        self.trial_ms, self.pulse_ms = _positive("trial_ms", trial_ms), _positive("pulse_ms", pulse_ms)
        self.n_steps = int(round(self.trial_ms / self.dt))
        if not 1 <= round(self.pulse_ms / self.dt) < self.n_steps:
            raise ValueError(f"pulse_ms must cover at least one step dt = {dt} ms and end before the trial "
                             f"({trial_ms} ms), got {pulse_ms!r}")

    def chirp(self) -> np.ndarray:
        s = np.arange(1, self.n_steps + 1) / self.n_steps                  # trial time as a fraction
        phase = np.where(s <= 0.5, 6 * s ** 2 + 3 * s, 6 - (6 * (1 - s) ** 2 + 3 * (1 - s)))
        return np.sin(2 * np.pi * phase)

    def pulse(self) -> np.ndarray:
        x = np.zeros(self.n_steps)
        x[:int(round(self.pulse_ms / self.dt))] = 1.0
        return x

    def segment(self, index: int, dtype=torch.float32):
        return (torch.as_tensor(self.pulse(), dtype=dtype)[:, None, None],
                torch.as_tensor(self.chirp(), dtype=dtype)[:, None, None])

    def trials(self, batch_size, rng):
        x = np.repeat(self.pulse()[:, None, None], batch_size, axis=1)
        y = np.repeat(self.chirp()[:, None, None], batch_size, axis=1)
        return x, y, np.ones((self.n_steps, batch_size)), {}

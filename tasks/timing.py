"""Timing and detection tasks: ready-set-go interval reproduction, vibrotactile detection.

``IntervalReproduction`` follows Jazayeri & Shadlen 2010 (Nat. Neurosci. 13:1020,
"Temporal context calibrates interval timing"); ``VibrotactileDetection`` follows
de Lafuente & Romo 2005 (Nat. Neurosci. 8:1698, "Neuronal correlates of subjective
sensory experience").  Times are in ms; a trial's steps are ``dt`` long.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from .base import Batch, Task


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


def _is_range(r) -> bool:
    try:
        lo, hi = r
        return math.isfinite(lo) and math.isfinite(hi) and 0 <= lo <= hi
    except (TypeError, ValueError):
        return False


def _window_choice(outputs: torch.Tensor, window: np.ndarray) -> torch.Tensor:
    """Argmax of the mean output over each trial's ``window [T, B]``: ``[B]`` (or ``[E, B]`` for ensembles)."""
    w = torch.as_tensor(window, dtype=outputs.dtype, device=outputs.device)
    w = w if outputs.dim() == 3 else w.unsqueeze(1)
    mean = (outputs * w.unsqueeze(-1)).sum(0) / w.sum(0).clamp_min(1).unsqueeze(-1)
    return mean.argmax(-1)


class IntervalReproduction(Task):
    """Ready-set-go interval reproduction (Jazayeri & Shadlen 2010).

    Inputs (3 channels): 0 a fixation/context cue, 1 for the whole trial; 1 the
    "ready" pulse; 2 the "set" pulse (each ``pulse`` ms long).  Ready comes after a
    fixation of ``U(*fixation)`` ms (default 200–500 ms); set follows ready after the
    sample interval ``t_s ~ U(*prior)`` (default 480–800 ms, the paper's short prior),
    and the network must "go" ``t_s`` after set.

    Output (1 channel, regression), scored from set until ``post`` ms (default 300)
    after the go time; mask 0 before set and on the padding at the end.
    ``target="step"``: 0 until set + t_s, then 1.  ``target="ramp"``:
    ``0.5 (t - set) / t_s`` (clipped to 1), which crosses 0.5 at set + t_s.
    The produced interval is the time from set to the first step at which the
    output reaches 0.5; a trial is correct when it is within ``tolerance``
    (default 10 %) of t_s.  Every trial of a batch has the length of the longest
    possible trial.  ``info``: ``t_s`` (ms), ``ready``/``set``/``go`` (step index of
    the pulse onsets and the go time), ``set_ms``.
    """

    name = "interval"
    kind = "regression"
    n_inputs = 3
    n_outputs = 1
    threshold = 0.5

    def __init__(self, dt: float = 10.0, prior: tuple[float, float] = (480.0, 800.0),
                 fixation: tuple[float, float] = (200.0, 500.0), pulse: float = 20.0, post: float = 300.0,
                 tolerance: float = 0.1, target: str = "step"):
        _check(isinstance(dt, (int, float)) and 0 < dt < math.inf, f"interval: dt must be > 0 ms, got {dt!r}")
        _check(_is_range(prior) and prior[0] > 0, f"interval: prior must be (lo, hi) with 0 < lo <= hi ms, got {prior!r}")
        _check(_is_range(fixation), f"interval: fixation must be (lo, hi) with 0 <= lo <= hi ms, got {fixation!r}")
        _check(isinstance(pulse, (int, float)) and dt <= pulse < prior[0],
               f"interval: pulse must be in [dt, prior[0]) = [{dt}, {prior[0]}) ms, got {pulse!r}")
        _check(isinstance(post, (int, float)) and 0 <= post < math.inf, f"interval: post must be >= 0 ms, got {post!r}")
        _check(isinstance(tolerance, (int, float)) and 0 < tolerance < 1,
               f"interval: tolerance must be in (0, 1) (a fraction of t_s), got {tolerance!r}")
        _check(target in ("step", "ramp"), f"interval: target must be one of ['ramp', 'step'], got {target!r}")
        self.dt = float(dt)
        self.prior, self.fixation = (float(prior[0]), float(prior[1])), (float(fixation[0]), float(fixation[1]))
        self.pulse, self.post, self.tolerance, self.target = float(pulse), float(post), float(tolerance), target
        self.n_steps = self._steps(self.fixation[1]) + 2 * self._steps(self.prior[1]) + self._steps(self.post) + 2

    def _steps(self, ms) -> np.ndarray | int:
        return np.rint(np.asarray(ms) / self.dt).astype(int) if np.ndim(ms) else int(round(ms / self.dt))

    def trials(self, batch_size, rng):
        T = self.n_steps
        t_s = rng.uniform(*self.prior, size=batch_size)
        ready = self._steps(rng.uniform(*self.fixation, size=batch_size))
        set_ = ready + self._steps(t_s)
        go = set_ + self._steps(t_s)
        end = go + self._steps(self.post) + 1
        pulse = max(1, self._steps(self.pulse))
        x = np.zeros((T, batch_size, 3))
        y = np.zeros((T, batch_size, 1))
        mask = np.zeros((T, batch_size))
        x[:, :, 0] = 1.0
        steps = np.arange(T)
        for b in range(batch_size):
            x[ready[b]:ready[b] + pulse, b, 1] = 1.0
            x[set_[b]:set_[b] + pulse, b, 2] = 1.0
            mask[set_[b]:end[b], b] = 1.0
            if self.target == "step":
                y[go[b]:, b, 0] = 1.0
            else:
                y[:, b, 0] = np.clip(0.5 * (steps - set_[b]) * self.dt / t_s[b], 0.0, 1.0)
        info = {"t_s": t_s, "ready": ready, "set": set_, "go": go, "set_ms": set_ * self.dt}
        return x, y, mask, info

    def produced_intervals(self, outputs: torch.Tensor, batch: Batch) -> np.ndarray:
        """Produced interval (ms) per trial: from set to the first output >= 0.5 at or after set; NaN if never.

        ``outputs [T, B, 1]`` gives ``[B]``; an ensemble's ``[T, E, B, 1]`` gives ``[E, B]``.
        """
        out = outputs.detach().cpu().numpy()[..., 0] if isinstance(outputs, torch.Tensor) else np.asarray(outputs)[..., 0]
        set_ = np.asarray(batch.info["set"])
        steps = np.arange(out.shape[0]).reshape((-1,) + (1,) * (out.ndim - 1))
        crossed = (out >= self.threshold) & (steps >= set_)          # set_ broadcasts over the trial axis
        first = crossed.argmax(0)
        produced = (first - set_) * self.dt
        return np.where(crossed.any(0), produced.astype(float), np.nan)

    def accuracy(self, outputs: torch.Tensor, batch: Batch) -> float:
        """Fraction of trials whose produced interval is within ``tolerance`` · t_s of t_s."""
        produced = self.produced_intervals(outputs, batch)
        t_s = np.asarray(batch.info["t_s"])
        with np.errstate(invalid="ignore"):
            ok = np.abs(produced - t_s) <= self.tolerance * t_s
        return float(ok.mean())


class VibrotactileDetection(Task):
    """Vibrotactile detection (de Lafuente & Romo 2005).

    One input channel.  On a fraction ``p_present`` (default 0.5) of the trials a
    vibration of amplitude drawn uniformly from ``amplitudes`` (default 2, 4, 6, 8,
    10, 12, 24 µm divided by 24 µm, so near-threshold levels dominate) is on for
    ``stimulus`` ms (default 500) starting at ``U(*onset)`` ms (default 200–1200);
    on the other trials the amplitude is 0.  Gaussian noise is added to every step of
    the input; ``noise_std`` (default 0.5, in units of the largest amplitude) is its
    σ per 10 ms, so a step of ``dt`` gets ``noise_std · sqrt(10 / dt)`` and the
    evidence in a stimulus does not depend on dt.  With the defaults a 500 ms
    stimulus of 2 µm lifts the mean input by about 0.8 σ of the noise averaged
    over the stimulus, 24 µm by about 10 σ.

    The response period (``response`` ms, default 300) starts ``delay`` ms (default
    500) after the latest possible stimulus end, the same step in every trial.
    Classification with 2 outputs: 0 "absent", 1 "present"; targets are class
    indices ``[T, B]``, the mask selects the response period.  ``info``:
    ``amplitude``, ``present`` (bool), ``onset`` (step), ``response`` (bool ``[T, B]``),
    ``choice`` (the correct class).
    """

    name = "detection"
    kind = "classification"
    n_inputs = 1
    n_outputs = 2
    DEFAULT_AMPLITUDES = tuple(a / 24.0 for a in (2, 4, 6, 8, 10, 12, 24))

    def __init__(self, dt: float = 20.0, amplitudes=DEFAULT_AMPLITUDES, p_present: float = 0.5,
                 noise_std: float = 0.5, stimulus: float = 500.0, onset: tuple[float, float] = (200.0, 1200.0),
                 delay: float = 500.0, response: float = 300.0):
        _check(isinstance(dt, (int, float)) and 0 < dt < math.inf, f"detection: dt must be > 0 ms, got {dt!r}")
        try:
            amps = np.asarray(amplitudes, dtype=float).ravel() if np.ndim(amplitudes) else np.array([])
        except (TypeError, ValueError):
            amps = np.array([])
        _check(amps.size > 0 and np.all((amps > 0) & (amps <= 1)),
               f"detection: amplitudes must be a non-empty list of values in (0, 1], got {amplitudes!r}")
        _check(isinstance(p_present, (int, float)) and 0 <= p_present <= 1,
               f"detection: p_present must be in [0, 1], got {p_present!r}")
        _check(isinstance(noise_std, (int, float)) and 0 <= noise_std < math.inf,
               f"detection: noise_std must be >= 0, got {noise_std!r}")
        _check(isinstance(stimulus, (int, float)) and dt <= stimulus < math.inf,
               f"detection: stimulus must be >= dt = {dt} ms, got {stimulus!r}")
        _check(_is_range(onset), f"detection: onset must be (lo, hi) with 0 <= lo <= hi ms, got {onset!r}")
        _check(isinstance(delay, (int, float)) and 0 <= delay < math.inf, f"detection: delay must be >= 0 ms, got {delay!r}")
        _check(isinstance(response, (int, float)) and dt <= response < math.inf,
               f"detection: response must be >= dt = {dt} ms, got {response!r}")
        self.dt, self.amplitudes, self.p_present = float(dt), amps, float(p_present)
        self.noise_std, self.stimulus, self.onset = float(noise_std), float(stimulus), (float(onset[0]), float(onset[1]))
        self.delay, self.response = float(delay), float(response)
        self.response_start = self._steps(self.onset[1] + self.stimulus + self.delay)
        self.n_steps = self.response_start + self._steps(self.response)

    def _steps(self, ms) -> int:
        return int(round(ms / self.dt))

    def trials(self, batch_size, rng):
        T = self.n_steps
        present = rng.random(batch_size) < self.p_present
        amplitude = np.where(present, rng.choice(self.amplitudes, size=batch_size), 0.0)
        onset = np.rint(rng.uniform(*self.onset, size=batch_size) / self.dt).astype(int)
        duration = self._steps(self.stimulus)
        x = self.noise_std * math.sqrt(10.0 / self.dt) * rng.standard_normal((T, batch_size, 1))
        for b in range(batch_size):
            x[onset[b]:onset[b] + duration, b, 0] += amplitude[b]
        response = np.zeros((T, batch_size), dtype=bool)
        response[self.response_start:] = True
        y = np.zeros((T, batch_size), dtype=np.int64)
        y[response] = np.broadcast_to(present.astype(np.int64), (T, batch_size))[response]
        mask = response.astype(float)
        info = {"amplitude": amplitude, "present": present, "onset": onset, "response": response,
                "choice": present.astype(int)}
        return x, y, mask, info

    def choices(self, outputs: torch.Tensor, batch: Batch) -> np.ndarray:
        """Reported class per trial (1 = "present"): argmax of the mean output over the response period."""
        with torch.no_grad():
            return _window_choice(outputs, batch.info["response"]).cpu().numpy()

    def accuracy(self, outputs: torch.Tensor, batch: Batch) -> float:
        """Fraction of trials whose report (argmax of the mean response-period output) is right."""
        return float((self.choices(outputs, batch) == np.asarray(batch.info["choice"])).mean())

    def detection_curve(self, outputs: torch.Tensor, batch: Batch) -> tuple[np.ndarray, np.ndarray]:
        """The psychometric curve: (sorted amplitudes in the batch, fraction of their trials reported "present")."""
        reported = self.choices(outputs, batch) == 1                 # [B] or [E, B]
        amplitude = np.asarray(batch.info["amplitude"])
        levels = np.unique(amplitude)
        frac = np.array([reported[..., amplitude == a].mean() for a in levels])
        return levels, frac

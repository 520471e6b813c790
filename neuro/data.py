"""Recorded neural activity: load ``[conditions, time, neurons]`` arrays and align them in time
to a task's periods.

No recording ships with neuro (the Mante 2013 and Sussillo 2015 data are not
redistributable); ``neuro reproduce similarity --data PATH`` takes your own.
Supported files: ``.npy`` (one array), ``.npz`` and MATLAB ``.mat`` (the Mante 2013
release is MATLAB; read with ``scipy.io.loadmat``, v7.3/HDF5 files are not).  If a
file holds several arrays, name one with ``key``; ``axes`` says the order of the
array's axes (``"ctn"`` = conditions, time, neurons — the default).

Time alignment (``align``) warps the recording's time axis piecewise-linearly so
that named events (e.g. stimulus onset, go cue) land on the task's time steps for
the same events, then samples the activity there by linear interpolation.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class Recording:
    """Trial-averaged activity ``[conditions, time, neurons]`` sampled every ``dt`` ms from ``t0`` ms;
    ``events`` are named times in ms (e.g. ``{"stimulus": 350, "go": 1400}``)."""

    activity: np.ndarray
    dt: float = 10.0
    t0: float = 0.0
    events: dict = field(default_factory=dict)

    def __post_init__(self):
        self.activity = _real(np.asarray(self.activity), "activity")
        if self.activity.ndim != 3:
            raise ValueError(f"activity must be [conditions, time, neurons], got shape {self.activity.shape}")
        if not np.all(np.isfinite(self.activity)):
            raise ValueError("activity contains NaN or Inf (drop or interpolate those bins first)")
        if not self.dt > 0:
            raise ValueError(f"dt must be > 0 ms, got {self.dt!r}")
        self.events = _events(self.events, "event")

    @property
    def times(self) -> np.ndarray:
        return self.t0 + self.dt * np.arange(self.activity.shape[1])

    @property
    def shape(self) -> tuple:
        return self.activity.shape


def _real(array: np.ndarray, what: str) -> np.ndarray:
    """``array`` as float64; complex values are refused rather than cut to their real part."""
    if np.iscomplexobj(array):
        raise ValueError(f"{what} is complex; a recording holds real firing rates (take abs() or .real yourself "
                         f"if that is what you mean)")
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise ValueError(f"{what} must be numeric, got dtype {array.dtype}")
    return np.asarray(array, dtype=float)


def _events(events: dict | None, what: str) -> dict:
    """Event name -> finite time in ms."""
    out = {}
    for name, t in dict(events or {}).items():
        try:
            value = float(t)
        except (TypeError, ValueError):
            raise ValueError(f"{what} {name!r} must be a time in ms, got {t!r}") from None
        if not np.isfinite(value):
            raise ValueError(f"{what} {name!r} must be a finite time in ms, got {t!r}")
        out[name] = value
    return out


def _arrays_in(path: Path) -> dict:
    suffix = path.suffix.lower()
    if suffix in (".npy", ".npz", ".mat") and path.stat().st_size == 0:
        raise ValueError(f"{path} is empty (0 bytes)")
    if suffix in (".npy", ".npz"):
        try:
            if suffix == ".npy":
                return {"": np.load(path, allow_pickle=False)}
            with np.load(path, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        except (ValueError, OSError, EOFError) as err:
            raise ValueError(f"{path} is not a readable {suffix} file ({err})") from None
    if suffix == ".mat":
        from scipy.io import loadmat
        try:
            # no squeeze_me: it would turn a one-condition [1, T, N] array into [T, N]
            raw = loadmat(path)
        except NotImplementedError:
            raise ValueError(f"{path} is a MATLAB v7.3 (HDF5) file; save it with -v7 or convert it to .npz") from None
        except (ValueError, TypeError, OSError) as err:
            raise ValueError(f"{path} is not a readable MATLAB file ({err})") from None
        return {k: v for k, v in raw.items() if not k.startswith("__")}
    raise ValueError(f"recording file must end in .npy, .npz or .mat, got {path.name!r}")


def load_recording(path, key: str | None = None, axes: str = "ctn", dt: float = 10.0, t0: float = 0.0,
                   events: dict | None = None) -> Recording:
    """Read a recording file into a ``Recording`` (``axes``: the order of c/t/n in the stored array)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no recording at {path}")
    if sorted(axes) != ["c", "n", "t"]:
        raise ValueError(f"axes must be a permutation of 'ctn' (conditions, time, neurons), got {axes!r}")
    arrays = _arrays_in(path)
    if key is None:
        numeric = {k: v for k, v in arrays.items() if isinstance(v, np.ndarray) and v.ndim == 3
                   and np.issubdtype(v.dtype, np.number)}
        arrays_only = [k for k, v in arrays.items() if isinstance(v, np.ndarray) and v.dtype != object]
        if not numeric and len(arrays_only) == 1:
            numeric = {arrays_only[0]: arrays[arrays_only[0]]}      # the only array: its shape is the error
        if len(numeric) != 1:
            raise ValueError(f"{path.name} holds {len(numeric)} three-dimensional arrays "
                             f"({sorted(numeric) or sorted(arrays)}); choose one with key=")
        key = next(iter(numeric))
    if key not in arrays:
        raise ValueError(f"key {key!r} is not in {path.name}; it holds {sorted(arrays)}")
    array = _real(np.asarray(arrays[key]), f"{path.name}[{key!r}]")
    if array.ndim != 3:
        raise ValueError(f"{path.name}[{key!r}] must be three-dimensional ({axes}), got shape {array.shape}"
                         + (" (MATLAB drops trailing singleton axes: store one neuron or one condition first, "
                            "e.g. as [1, T, N] with axes='ctn')" if path.suffix.lower() == ".mat" else ""))
    return Recording(np.transpose(array, [axes.index(a) for a in "ctn"]), dt=dt, t0=t0, events=dict(events or {}))


def align(recording: Recording, task_times: np.ndarray, task_events: dict | None = None) -> np.ndarray:
    """Activity ``[conditions, len(task_times), neurons]`` at the task's time points (ms).

    Events named in both ``recording.events`` and ``task_events`` are matched: task time
    ``τ`` maps to recording time by piecewise-linear interpolation through the matched
    (task, recording) event pairs (a plain shift with one shared event, the identity
    with none); the activity is then linearly interpolated in time.  Task times that
    map outside the recording are an error.
    """
    task_times = np.asarray(task_times, dtype=float)
    if task_times.ndim != 1 or not np.all(np.isfinite(task_times)):
        raise ValueError("task_times must be a one-dimensional array of finite times in ms")
    task_events = _events(task_events, "task event")
    shared = sorted(set(recording.events) & set(task_events or {}), key=lambda k: task_events[k])
    if task_events and recording.events and not shared:
        raise ValueError(f"no event is named in both the recording {sorted(recording.events)} and the task "
                         f"{sorted(task_events)}")
    src = np.array([task_events[k] for k in shared], dtype=float)
    dst = np.array([recording.events[k] for k in shared], dtype=float)
    if len(shared) >= 2 and (np.any(np.diff(src) <= 0) or np.any(np.diff(dst) <= 0)):
        raise ValueError(f"events {shared} must be in the same strictly increasing order in task and recording")
    if len(shared) == 0:
        mapped = task_times
    elif len(shared) == 1:
        mapped = task_times - src[0] + dst[0]
    else:   # piecewise linear inside, the end segments' slopes outside
        mapped = np.interp(task_times, src, dst)
        lo, hi = task_times < src[0], task_times > src[-1]
        mapped[lo] = dst[0] + (task_times[lo] - src[0]) * (dst[1] - dst[0]) / (src[1] - src[0])
        mapped[hi] = dst[-1] + (task_times[hi] - src[-1]) * (dst[-1] - dst[-2]) / (src[-1] - src[-2])
    times = recording.times
    if mapped.min() < times[0] - 1e-9 or mapped.max() > times[-1] + 1e-9:
        raise ValueError(f"the task's time points map to {mapped.min():.0f}..{mapped.max():.0f} ms of the "
                         f"recording, which covers {times[0]:.0f}..{times[-1]:.0f} ms")
    position = np.clip((mapped - times[0]) / recording.dt, 0, len(times) - 1)
    left = np.minimum(np.floor(position).astype(int), len(times) - 2) if len(times) > 1 else np.zeros_like(position,
                                                                                                            dtype=int)
    frac = (position - left)[None, :, None]
    act = recording.activity
    if len(times) == 1:
        return np.repeat(act, len(task_times), axis=1)
    return (1 - frac) * act[:, left] + frac * act[:, left + 1]

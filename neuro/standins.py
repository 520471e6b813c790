"""Stand-in recordings: synthetic "neural data" made by models outside the family of
gradient-trained rate networks that the similarity study compares, read out the way
recordings are (a subset of neurons, spike counts, trial-to-trial noise, trial averages).

The recordings of the data-similarity paper (Mante et al. 2013; Sussillo et al. 2015)
cannot be fetched here.  A network trained with BPTT standing in for them favours
BPTT-trained students (and an e-prop-trained one favours e-prop), so each claim is
tested against several stand-ins of different origin, and a claim is supported only
where it holds against all of them:

- ``force`` (both tasks): a rate network (tanh, N = ``force_units``) trained with
  full-FORCE (DePasquale et al. 2018; ``neuro.rules.force``): recursive least squares
  on a target-driven teacher's currents, no gradient through time.  Each recorded
  neuron is one unit, its rate mapped to 5-45 Hz; trials differ by recurrent noise.
- ``rotational`` (reaching): Churchland et al. 2012's picture of motor cortex.  A
  condition-specific preparatory state, reached by a ramp during the hold period,
  is released at the go cue into rotations in ``planes`` planes (1-3 Hz, decaying
  with ``decay_ms``), the jPCA structure; a linear readout of the rotating state
  gives the EMG (the preparatory states are fitted by least squares so that it
  does), and a condition-independent signal rises at the go cue (Kaufman et al.
  2016).  Trials differ by a perturbed preparatory state and a gain.
- ``line_attractor`` (context): Mante et al. 2013's account.  A choice variable
  integrates the signed coherence of the *relevant* input only (a line attractor
  selected by context), both inputs are represented transiently whether relevant or
  not, and the context is held throughout; trials add diffusion noise to the
  integration.

Every generator returns rates in Hz ``[K trials, conditions, time, latent or unit]``
before the shared read-out ``spike_readout``: ``n_neurons`` neurons (fewer than the
compared models' units), each a rectified affine map of the latent state (or a unit),
Poisson spike counts per trial and time bin, averaged over ``trials`` trials and
smoothed with a Gaussian of ``smooth_ms``.  Disjoint halves of such neurons differ
by Poisson and trial noise, so the split-half noise floor (``neuro.similarity.noise_floor``)
behaves as it does with data.  Generation takes seconds (full-FORCE: a few seconds).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

STANDINS = {"reaching": ("force", "rotational"), "context": ("force", "line_attractor")}
DESCRIPTIONS = {
    "force": "rate network trained with full-FORCE (RLS, DePasquale et al. 2018)",
    "rotational": "rotational dynamics driving EMG (Churchland et al. 2012)",
    "line_attractor": "context-selected line attractor (Mante et al. 2013)",
}


@dataclass
class StandInConfig:
    """How the stand-ins are made and read out (the defaults are the study's)."""

    n_neurons: int = 48             # recorded neurons (fewer than the compared models' units)
    trials: int = 30                # trials averaged per condition
    smooth_ms: float = 40.0         # Gaussian smoothing of the averaged spike counts (σ)
    force_units: int = 200          # full-FORCE network size
    force_segments: dict = field(default_factory=lambda: {"reaching": 300, "context": 400})
    force_noise: float = 0.05       # recurrent noise (per step) that makes trials differ
    planes: int = 8                 # rotational: number of rotation planes
    decay_ms: float = 400.0         # rotational: decay of the rotations
    latent_noise: float = 0.15      # trial-to-trial noise of the latent state (relative)


@dataclass
class StandIn:
    name: str
    activity: np.ndarray            # [conditions, time, neurons], Hz
    description: str
    readout_accuracy: float         # how well the generator's own readout does the task (normalized)
    trials: int

    @property
    def source(self) -> str:
        return (f"stand-in '{self.name}': {self.description}; {self.activity.shape[-1]} neurons, "
                f"{self.trials} trials per condition, readout accuracy {self.readout_accuracy:.2f}")


def _check(ok: bool, what: str) -> None:
    if not ok:
        raise ValueError(what)


def spike_readout(rates_hz: np.ndarray, dt_ms: float, smooth_ms: float, rng: np.random.Generator) -> np.ndarray:
    """Trial-averaged, smoothed Poisson spike counts in Hz ``[C, T, N]`` from per-trial rates
    ``[K, C, T, N]`` (Hz)."""
    _check(rates_hz.ndim == 4, f"rates must be [trials, conditions, time, neurons], got shape {rates_hz.shape}")
    _check(bool(np.all(np.isfinite(rates_hz))) and bool(np.all(rates_hz >= 0)), "rates must be finite and >= 0 Hz")
    counts = rng.poisson(rates_hz * dt_ms / 1000.0)
    mean = counts.mean(0) * 1000.0 / dt_ms
    sigma = smooth_ms / dt_ms
    if sigma <= 0:
        return mean
    half = max(1, int(math.ceil(3 * sigma)))
    k = np.exp(-0.5 * (np.arange(-half, half + 1) / sigma) ** 2)
    ones = np.ones(mean.shape[1])
    norm = np.convolve(ones, k, mode="same")                          # edges renormalized, not darkened
    out = np.apply_along_axis(lambda v: np.convolve(v, k, mode="same"), 1, mean)
    return out / norm[None, :, None]


def _neurons(latent: np.ndarray, n_neurons: int, rng: np.random.Generator) -> np.ndarray:
    """Rectified affine maps of a latent ``[K, C, T, d]`` to rates ``[K, C, T, n]`` of 5-45 Hz spread."""
    z = latent / (latent.reshape(-1, latent.shape[-1]).std(0) + 1e-12)
    mix = rng.normal(size=(latent.shape[-1], n_neurons)) / math.sqrt(latent.shape[-1])
    drive = z @ mix
    drive = drive / (drive.reshape(-1, n_neurons).std(0) + 1e-12)
    base, gain = rng.uniform(8.0, 25.0, n_neurons), rng.uniform(4.0, 15.0, n_neurons)
    return np.maximum(base + gain * drive, 0.0)


# -- rotational dynamics (reaching) ---------------------------------------------------------

def rotational(task, cond, cfg: StandInConfig, seed: int) -> tuple[np.ndarray, float]:
    """Per-trial rates ``[K, C, T, n_neurons]`` and the EMG readout's 1 - NMSE."""
    rng = np.random.default_rng(seed)
    dt = task.dt / 1000.0
    T, C = cond.inputs.shape[0], cond.inputs.shape[1]
    go = np.asarray(cond.info["go"], dtype=int)
    freqs = rng.uniform(1.0, 3.0, cfg.planes) * 2 * np.pi
    decay = 1000.0 / cfg.decay_ms
    d = 2 * cfg.planes
    targets = cond.targets.double().numpy()                          # [T, C, 7]

    def propagator(steps: np.ndarray) -> np.ndarray:                 # exp(A t) for t = steps·dt: [len, d, d]
        out = np.zeros((len(steps), d, d))
        for j in range(cfg.planes):
            t = steps * dt
            c, s, e = np.cos(freqs[j] * t), np.sin(freqs[j] * t), np.exp(-decay * t)
            out[:, 2 * j, 2 * j], out[:, 2 * j, 2 * j + 1] = e * c, -e * s
            out[:, 2 * j + 1, 2 * j], out[:, 2 * j + 1, 2 * j + 1] = e * s, e * c
        return out

    # the readout and the preparatory states, fitted by alternating least squares on the EMG after go
    after = [propagator(np.arange(T - go[c])) for c in range(C)]
    prep = rng.normal(size=(C, d))
    for _ in range(30):
        states = np.concatenate([np.einsum("tde,e->td", after[c], prep[c]) for c in range(C)])   # [ΣT, d]
        emg = np.concatenate([targets[go[c]:, c] for c in range(C)])
        readout = np.linalg.lstsq(states, emg, rcond=None)[0].T
        for c in range(C):
            design = np.einsum("od,tde->toe", readout, after[c]).reshape(-1, d)
            prep[c] = np.linalg.lstsq(design, targets[go[c]:, c].reshape(-1), rcond=None)[0]
    fitted = np.zeros_like(targets)
    for c in range(C):
        fitted[go[c]:, c] = np.einsum("od,tde,e->to", readout, after[c], prep[c])
    var = ((targets - targets.mean((0, 1))) ** 2).mean()
    accuracy = float(1.0 - ((fitted - targets) ** 2).mean() / var)
    K = cfg.trials
    scale = np.abs(prep).mean()
    latent = np.zeros((K, C, T, d + 1))
    for c in range(C):
        x0 = prep[c] + cfg.latent_noise * scale * rng.normal(size=(K, d))
        ramp = 1.0 - np.exp(-np.arange(go[c]) * dt / 0.15)          # the preparatory state builds up (150 ms)
        latent[:, c, :go[c], :d] = ramp[None, :, None] * x0[:, None, :]
        latent[:, c, go[c]:, :d] = np.einsum("tde,ke->ktd", propagator(np.arange(T - go[c])), x0)
        t_go = (np.arange(T) - go[c]) * dt
        ci = np.where(t_go >= 0, 1.0 - np.exp(-np.maximum(t_go, 0) / 0.1), 0.0)   # condition-independent rise
        latent[:, c, :, d] = ci[None] * scale * math.sqrt(d)
    gains = 1.0 + cfg.latent_noise * rng.normal(size=(K, 1, 1, 1))
    return gains * _neurons(latent, cfg.n_neurons, rng), accuracy


# -- context-selected line attractor (context task) -----------------------------------------

def line_attractor(task, cond, cfg: StandInConfig, seed: int) -> tuple[np.ndarray, float]:
    """Per-trial rates ``[K, C, T, n_neurons]`` and the fraction of trials whose choice variable
    ends on the correct side."""
    rng = np.random.default_rng(seed)
    trials = cond.info["trials"]
    T, C = cond.inputs.shape[0], cond.inputs.shape[1]
    dt = task.dt / 1000.0
    fixation = int(round(350 / task.dt))
    stimulus = int(round(750 / task.dt))
    t = np.arange(T)
    on = (t >= fixation) & (t < fixation + stimulus)
    K = cfg.trials
    latent = np.zeros((K, C, T, 5))
    correct = 0
    for c, info in enumerate(trials):
        choice0, choice1 = info["ground_truth"], info["other_choice"]
        if info["context"] == 1:
            choice0, choice1 = choice1, choice0
        motion = (info["coh_0"] if choice0 == 1 else -info["coh_0"]) / 50.0
        color = (info["coh_1"] if choice1 == 1 else -info["coh_1"]) / 50.0
        relevant = motion if info["context"] == 0 else color
        drive = np.where(on, relevant, 0.0)[None] + cfg.latent_noise * 3 * rng.normal(size=(K, T)) * on[None]
        choice = np.cumsum(drive * dt / 0.75, axis=1)                 # integrates, holds after the stimulus
        latent[:, c, :, 0] = choice
        for j, coh in ((1, motion), (2, color)):                      # transient input representations
            x = np.zeros(T)
            for s in range(1, T):
                x[s] = x[s - 1] + dt / 0.1 * ((coh if on[s] else 0.0) - x[s - 1])
            latent[:, c, :, j] = x[None]
        latent[:, c, :, 3] = 1.0 if info["context"] == 0 else -1.0
        latent[:, c, :, 4] = t / T                                     # condition-independent ramp
        correct += float(np.mean(np.sign(choice[:, -1]) == (1.0 if info["ground_truth"] == 1 else -1.0)))
    return _neurons(latent, cfg.n_neurons, rng), correct / C


# -- full-FORCE network (either task) ----------------------------------------------------------

class _OneHot:
    """A classification task seen as regression on one-hot targets (full-FORCE fits currents)."""

    def __init__(self, task):
        self.task, self.n_outputs, self.dt = task, task.n_outputs, task.dt

    def batch(self, batch_size, seed=0, dtype=torch.float32):
        from neuro.tasks.base import Batch
        b = self.task.batch(batch_size, seed=seed, dtype=dtype)
        return Batch(b.inputs, torch.nn.functional.one_hot(b.targets, self.n_outputs).to(dtype), b.mask, b.info)


def full_force(task, cond, spec, cfg: StandInConfig, seed: int, task_name: str) -> tuple[np.ndarray, float]:
    """Per-trial rates ``[K, C, T, n_neurons]`` of a full-FORCE-trained rate network and its accuracy
    on the compared conditions (1 - NMSE for reaching, the fraction correct for the context task)."""
    from neuro import rules
    from neuro.compiler import compile as compile_spec
    from neuro.weights import init_weights
    rng = np.random.default_rng(seed)
    spec = spec.replace(**{"populations[0].size": cfg.force_units, "populations[0].neuron.activation": "tanh",
                           "populations[0].neuron.noise_std": 0.0})
    net = compile_spec(spec, "rate", init_weights(spec, seed=seed), dtype=torch.float64)
    target_task = task if task.kind == "regression" else _OneHot(task)
    rule = rules.get("full_force", test=0)
    rule.fit(net, target_task, iterations=cfg.force_segments[task_name], seed=seed, progress=False)
    inputs = cond.inputs.double()
    T, C = inputs.shape[0], inputs.shape[1]
    K = cfg.trials
    gen = torch.Generator().manual_seed(seed)
    noise = cfg.force_noise * torch.randn(T, K * C, cfg.force_units, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        clean = net.run(inputs, noise=torch.zeros(T, C, cfg.force_units, dtype=torch.float64))
        noisy = net.run(inputs.repeat(1, K, 1), noise=noise)
    if task.kind == "regression":
        accuracy = float(task.normalized_accuracy(clean.outputs, cond.to(torch.float64)))
    else:
        accuracy = float(task.accuracy(clean.outputs, cond.to(torch.float64)))
    units = rng.choice(cfg.force_units, cfg.n_neurons, replace=False)
    r = noisy.rates.numpy().reshape(T, K, C, -1)[..., units].transpose(1, 2, 0, 3)      # [K, C, T, n]
    return 25.0 + 20.0 * r, accuracy


def generate(name: str, task_name: str, task, cond, spec, cfg: StandInConfig | None = None,
             seed: int = 0) -> StandIn:
    """The stand-in recording ``name`` for ``task`` on the compared conditions ``cond``."""
    cfg = cfg or StandInConfig()
    if task_name not in STANDINS:
        raise ValueError(f"no stand-ins for task {task_name!r}; tasks: {sorted(STANDINS)}")
    if name not in STANDINS[task_name]:
        raise ValueError(f"stand-in {name!r} is not made for the {task_name} task; choose from {STANDINS[task_name]}")
    _check(isinstance(cfg.n_neurons, int) and cfg.n_neurons >= 2, f"n_neurons must be an integer >= 2, "
                                                                   f"got {cfg.n_neurons!r}")
    _check(isinstance(cfg.trials, int) and cfg.trials >= 1, f"trials must be an integer >= 1, got {cfg.trials!r}")
    if name == "force":
        _check(cfg.n_neurons <= cfg.force_units, f"n_neurons ({cfg.n_neurons}) must be <= force_units "
                                                 f"({cfg.force_units})")
        rates, acc = full_force(task, cond, spec, cfg, seed, task_name)
    elif name == "rotational":
        rates, acc = rotational(task, cond, cfg, seed)
    else:
        rates, acc = line_attractor(task, cond, cfg, seed)
    activity = spike_readout(rates, task.dt, cfg.smooth_ms, np.random.default_rng(seed + 1))
    return StandIn(name, activity, DESCRIPTIONS[name], acc, cfg.trials)

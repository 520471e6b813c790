"""Stand-in recordings: the read-out's statistics, each generator's defining structure, and a noise
floor that falls as trials are added (as with data)."""
import numpy as np
import pytest

from neuro import standins
from neuro.similarity import noise_floor
from neuro.standins import StandInConfig


def test_spike_readout_averages_poisson_counts_to_the_rates_and_smoothing_keeps_a_constant():
    rng = np.random.default_rng(0)
    rates = np.full((400, 2, 30, 3), 50.0)
    rates[:, 1] = 10.0
    out = standins.spike_readout(rates, dt_ms=10.0, smooth_ms=30.0, rng=rng)
    # mean of 400 trials of Poisson(0.5) per bin, smoothed over ~7 bins: sd ≈ 50·sqrt(1/(0.5·400·7)) ≈ 1.3 Hz
    assert out.shape == (2, 30, 3)
    assert out[0].mean() == pytest.approx(50.0, abs=1.0) and out[1].mean() == pytest.approx(10.0, abs=0.5)
    assert abs(out[0, 0].mean() - 50.0) < 4.0                       # edges renormalized, not darkened
    with pytest.raises(ValueError, match=">= 0 Hz"):
        standins.spike_readout(-rates, 10.0, 0.0, rng)


def _reaching():
    from neuro.tasks.reaching import Reaching
    task = Reaching(dt=20.0, steps=93, go=30)
    return task, task.conditions_batch()


def test_rotational_standin_rotates_at_1_to_3_hz_after_go_and_its_readout_gives_the_emg():
    task, cond = _reaching()
    cfg = StandInConfig(n_neurons=40, trials=1, latent_noise=0.0)
    rates, accuracy = standins.rotational(task, cond, cfg, seed=0)
    assert rates.shape == (1, 27, 93, 40) and accuracy > 0.6           # measured 0.74
    # the latent state after go, recovered by PCA of the rates, follows x[t+1] = A x[t] with complex
    # eigenvalues whose angles are 1-3 Hz rotations (the jPCA structure)
    x = rates[0, :, 31:]                                             # [C, T, N]
    x = x - x.mean((0, 1))
    _, _, vt = np.linalg.svd(x.reshape(-1, 40), full_matrices=False)
    z = x @ vt[:6].T
    past, future = z[:, :-1].reshape(-1, 6), z[:, 1:].reshape(-1, 6)
    a = np.linalg.lstsq(past, future, rcond=None)[0].T
    freqs = np.abs(np.angle(np.linalg.eigvals(a))) / (2 * np.pi * task.dt / 1000.0)
    assert np.sum((freqs > 0.8) & (freqs < 3.5)) >= 4                # at least two rotation planes


def test_line_attractor_integrates_only_the_relevant_input():
    import neuro
    from neuro.studies.similarity_references import CONTEXT_COHERENCES, context_conditions
    task = neuro.tasks.get("context")
    cond = context_conditions(task)
    cfg = StandInConfig(n_neurons=30, trials=1, latent_noise=0.0)
    rates, accuracy = standins.line_attractor(task, cond, cfg, seed=0)
    assert accuracy == 1.0
    end = rates[0, :, -1]                                            # [72 conditions, neurons]
    n = len(CONTEXT_COHERENCES)
    index = lambda ctx, m, c: (ctx * n + m) * n + c                 # noqa: E731
    # motion context: the color coherence leaves the end state (the choice) unchanged, motion moves it
    assert np.abs(end[index(0, 5, 0)] - end[index(0, 5, 5)]).max() < 0.05
    assert np.abs(end[index(0, 5, 0)] - end[index(0, 0, 0)]).max() > 1.0
    # color context: the other way round
    assert np.abs(end[index(1, 0, 5)] - end[index(1, 5, 5)]).max() < 0.05
    assert np.abs(end[index(1, 0, 5)] - end[index(1, 0, 0)]).max() > 1.0


def test_the_split_half_noise_floor_falls_as_trials_are_added():
    task, cond = _reaching()
    rates, _ = standins.rotational(task, cond, StandInConfig(n_neurons=20, trials=40), seed=3)
    rng = np.random.default_rng(0)
    floors = [noise_floor(standins.spike_readout(rates[:k], task.dt, 40.0, rng), repeats=5)["noise_floor"]
              for k in (2, 40)]
    assert floors[1] < floors[0] - 0.1
    with pytest.raises(ValueError, match="not made for the reaching task"):
        standins.generate("line_attractor", "reaching", task, cond, None)


def test_full_force_standin_learns_the_context_task():
    import neuro
    from neuro.studies.similarity_references import context_conditions, spec
    task = neuro.tasks.get("context")
    cond = context_conditions(task)
    cfg = StandInConfig(n_neurons=20, trials=2, force_units=80, force_segments={"context": 150})
    made = standins.generate("force", "context", task, cond, spec("context", task, 16), cfg, seed=0)
    assert made.activity.shape == (72, cond.inputs.shape[0], 20)
    assert made.readout_accuracy > 0.6                               # chance: 0.5; measured 0.625

"""Similarity measures against closed forms and an independent Procrustes solution."""
import numpy as np
import pytest
from scipy.linalg import orthogonal_procrustes
from scipy.stats import ortho_group

from neuro.similarity import linear_cka, noise_floor, pairwise_distances, procrustes_distance


def _rep(rng, n=120, units=10):
    return rng.normal(size=(n, units)) @ rng.normal(size=(units, units))


def test_rotated_and_scaled_copy_is_at_distance_zero():
    rng = np.random.default_rng(0)
    x = _rep(rng)
    y = 3.7 * x @ ortho_group.rvs(10, random_state=1) + 5.0     # rotation, scale, offset
    assert procrustes_distance(x, y) == pytest.approx(0.0, abs=1e-6)
    assert linear_cka(x, y) == pytest.approx(1.0, abs=1e-12)


def test_orthogonal_subspaces_are_at_pi_over_two():
    rng = np.random.default_rng(1)
    # an orthonormal basis whose vectors are orthogonal to the all-ones vector: already centered
    basis = np.linalg.qr(np.hstack([np.ones((60, 1)), rng.normal(size=(60, 59))]))[0][:, 1:]
    x = basis[:, :5] @ rng.normal(size=(5, 8))
    y = basis[:, 5:12] @ rng.normal(size=(7, 6))
    assert procrustes_distance(x, y) == pytest.approx(np.pi / 2, abs=1e-6)


def test_agrees_with_a_direct_orthogonal_procrustes_solution():
    """θ = arccos(max_Q ⟨X, Y Q⟩) with unequal unit counts (zero-padded), via scipy's solver."""
    rng = np.random.default_rng(2)
    x, y = _rep(rng, units=7), _rep(rng, units=11)
    xc, yc = x - x.mean(0), y - y.mean(0)
    xc, yc = xc / np.linalg.norm(xc), yc / np.linalg.norm(yc)
    xp = np.hstack([xc, np.zeros((120, 4))])
    q, _ = orthogonal_procrustes(yc, xp)
    expected = np.arccos(np.sum(xp * (yc @ q)))
    assert procrustes_distance(x, y) == pytest.approx(expected, abs=1e-10)


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0])
def test_metric_axioms_on_random_triples(alpha):
    rng = np.random.default_rng(3)
    for _ in range(10):
        reps = [_rep(rng, units=u) for u in (6, 9, 12)]
        d = pairwise_distances(reps, alpha)
        np.testing.assert_allclose(d, d.T)
        assert np.all(np.diag(d) == 0)
        assert d[0, 2] <= d[0, 1] + d[1, 2] + 1e-12
        assert d[0, 1] <= d[0, 2] + d[2, 1] + 1e-12
        assert procrustes_distance(reps[0], reps[1], alpha) == pytest.approx(d[0, 1], abs=1e-12)


def test_full_whitening_ignores_any_invertible_linear_map():
    rng = np.random.default_rng(4)
    x = _rep(rng)
    y = x @ rng.normal(size=(10, 10))             # not a rotation
    assert procrustes_distance(x, y, alpha=0.0) == pytest.approx(0.0, abs=1e-6)
    assert procrustes_distance(x, y, alpha=1.0) > 0.05


def test_noise_floor_is_small_for_redundant_neurons_and_a_model_of_other_dynamics_is_farther():
    rng = np.random.default_rng(5)
    latent = rng.normal(size=(200, 3))
    data = latent @ rng.normal(size=(3, 80)) + 0.05 * rng.normal(size=(200, 80))
    model = rng.normal(size=(200, 3)) @ rng.normal(size=(3, 40))
    out = noise_floor(data, model, n_sample=30, repeats=5)
    assert out["noise_floor"] < 0.35 and out["model_to_data"] > 3 * out["noise_floor"]   # measured 0.21 vs 1.48


def test_bad_inputs_are_clear():
    with pytest.raises(ValueError, match="same samples"):
        procrustes_distance(np.random.rand(10, 3), np.random.rand(11, 3))
    with pytest.raises(ValueError, match="alpha must be in"):
        procrustes_distance(np.random.rand(10, 3), np.random.rand(10, 3), alpha=2)
    with pytest.raises(ValueError, match="needs at least"):
        noise_floor(np.random.rand(10, 5), n_sample=4)


# -- recordings: loading and time alignment ---------------------------------------------

def test_recordings_load_from_npy_npz_and_mat_in_any_axis_order(tmp_path):
    from scipy.io import savemat

    from neuro.data import load_recording
    act = np.random.default_rng(0).normal(size=(4, 9, 5))           # [c, t, n]
    np.save(tmp_path / "a.npy", act.transpose(2, 1, 0))             # stored as [n, t, c]
    np.savez(tmp_path / "b.npz", rates=act, labels=np.arange(4))
    savemat(tmp_path / "c.mat", {"psth": act.transpose(1, 0, 2), "other": np.ones((2, 2, 2))})
    np.testing.assert_array_equal(load_recording(tmp_path / "a.npy", axes="ntc").activity, act)
    np.testing.assert_array_equal(load_recording(tmp_path / "b.npz").activity, act)
    np.testing.assert_array_equal(load_recording(tmp_path / "c.mat", key="psth", axes="tcn").activity, act)
    with pytest.raises(ValueError, match="choose one with key="):
        load_recording(tmp_path / "c.mat")
    with pytest.raises(ValueError, match="axes must be a permutation"):
        load_recording(tmp_path / "b.npz", axes="ctx")


def test_alignment_warps_time_piecewise_linearly_between_shared_events():
    """Activity linear in time is recovered exactly at the warped times (closed form)."""
    from neuro.data import Recording, align
    times = 10.0 * np.arange(101)                                   # 0..1000 ms
    act = np.stack([times, 2 * times + 1], -1)[None]                # [1, 101, 2]
    rec = Recording(act, dt=10.0, events={"stim": 200.0, "go": 800.0})
    # 50 ms of task time between the events = 600 ms of recording: 1 task ms = 12 recording ms
    out = align(rec, np.array([50.0, 60.0, 75.0, 100.0, 105.0]), {"stim": 50.0, "go": 100.0})
    np.testing.assert_allclose(out[0, :, 0], [200.0, 320.0, 500.0, 800.0, 860.0])
    np.testing.assert_allclose(out[0, :, 1], 2 * out[0, :, 0] + 1)
    shifted = align(Recording(act, dt=10.0, events={"stim": 200.0}), np.array([0.0, 15.0]), {"stim": 0.0})
    np.testing.assert_allclose(shifted[0], [[200.0, 401.0], [215.0, 431.0]])
    with pytest.raises(ValueError, match="covers 0..1000 ms"):
        align(rec, np.array([0.0, 50.0]), {"stim": 50.0, "go": 100.0})     # 0 ms maps to -400 ms
    with pytest.raises(ValueError, match="no event is named in both"):
        align(rec, np.array([0.0]), {"cue": 0.0})


# -- the reaching task ----------------------------------------------------------------

def test_reaching_task_has_the_sussillo_shape_and_a_perfect_output_scores_one():
    import torch

    from neuro.tasks.reaching import Reaching
    task = Reaching()
    b = task.conditions_batch(dtype=torch.float64)
    assert b.inputs.shape == (186, 27, 16) and b.targets.shape == (186, 27, 7)
    assert torch.all(b.inputs[: task.go, :, 15] == 1) and torch.all(b.inputs[task.go:, :, 15] == 0)
    assert torch.all(b.targets[: task.go] == 0) and float(b.targets[task.go:].abs().max()) > 0.5
    assert b.info["condition"].tolist() == list(range(27))
    assert task.accuracy(b.targets, b) == pytest.approx(1.0)
    mean = b.targets.mean((0, 1), keepdim=True).expand_as(b.targets)
    assert task.normalized_accuracy(mean, b) == pytest.approx(0.0, abs=1e-12)   # NMSE of the mean = 1



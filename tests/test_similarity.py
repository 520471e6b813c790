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

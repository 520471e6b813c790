"""DSA (Ostrow et al. 2023) through dsa-metric: invariant to a change of basis of the same dynamics,
and it tells rotations at different frequencies apart."""
import numpy as np
import pytest

pytest.importorskip("DSA")


def _rotation(freq_hz, seed, conditions=6, steps=50, units=6, dt=0.01, decay=0.98):
    rng = np.random.default_rng(seed)
    th = 2 * np.pi * freq_hz * dt
    a = decay * np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    x = np.zeros((conditions, steps, 2))
    x[:, 0] = rng.normal(size=(conditions, 2))
    for t in range(1, steps):
        x[:, t] = x[:, t - 1] @ a.T
    return x @ np.linalg.qr(rng.normal(size=(units, units)))[0][:2]     # embedded by a random orthonormal map


def test_dsa_is_zero_for_the_same_dynamics_in_another_basis_and_not_for_another_frequency():
    from neuro.dsa import dsa_distances
    same, other = _rotation(3, 1), _rotation(3, 2)
    faster = _rotation(12, 3)
    d = dsa_distances([same], [other, faster], n_delays=2, rank=2, iters=300, lr=1e-2)
    assert d.shape == (1, 2)
    assert d[0, 0] < 0.05 and d[0, 1] > 0.3                          # measured 0.004 and 0.57


def test_dsa_options_are_checked_before_any_fit():
    from neuro.dsa import dsa_distance
    x = _rotation(3, 0)
    with pytest.raises(ValueError, match="rank = 50 exceeds"):
        dsa_distance(x, x, n_delays=2, rank=50)
    with pytest.raises(ValueError, match="longer than"):
        dsa_distance(x[:, :5], x[:, :5], n_delays=10)
    with pytest.raises(ValueError, match="score_method"):
        dsa_distance(x, x, score_method="cosine")

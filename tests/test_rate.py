"""Rate backend and weights against independent oracles."""
import numpy as np
import pytest
import torch

import neuro


def _spec(**changes):
    return neuro.models.load("romo_rate").replace(**changes)


def test_linear_network_equals_closed_form_recursion():
    """h[t+1] = A h[t] + (1-α)(W_in x[t] + b),  A = αI + (1-α)W  — computed in numpy."""
    spec = _spec(**{"populations[0].neuron.activation": "linear", "populations[0].size": 12,
                    "n_inputs": 3, "input.bias": True, "recurrent.gain": 0.9})
    w = neuro.init_weights(spec, seed=3)
    net = neuro.compile(spec, "rate", w, dtype=torch.float64)
    x = np.random.default_rng(0).normal(size=(40, 5, 3))
    traj = net.run(torch.as_tensor(x)).detach()
    a = spec.alpha
    A = a * np.eye(12) + (1 - a) * w.W_rec
    h = np.zeros((5, 12))
    expected = []
    for t in range(40):
        h = h @ A.T + (1 - a) * (x[t] @ w.W_in.T + w.b)
        expected.append(h)
    expected = np.array(expected)
    np.testing.assert_allclose(traj.states.numpy(), expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(traj.outputs.numpy(), expected @ w.W_out.T + w.b_out, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("gain", [0.2, 1.0, 2.0])
def test_recurrent_variance_is_g2_over_n(gain):
    n = 400
    spec = _spec(**{"populations[0].size": n, "recurrent.gain": gain})
    W = neuro.init_weights(spec, seed=1).W_rec
    # the sample variance of N² Gaussian entries has relative std sqrt(2/N²) = 0.35% here
    assert abs(W.var() / (gain**2 / n) - 1) < 0.02
    assert abs(W.mean()) < 5 * gain / n


def test_sparse_variance_and_density():
    n, p, g = 400, 0.25, 1.5
    w = neuro.init_weights(_spec(**{"populations[0].size": n, "recurrent.gain": g, "recurrent.density": p}), 2)
    assert abs(w.mask_rec.mean() - p) < 0.01
    assert abs(w.W_rec.var() / (g**2 / n) - 1) < 0.05
    assert np.all(w.W_rec[w.mask_rec == 0] == 0)


def test_same_seed_same_weights_different_seed_different():
    spec = _spec()
    a, b, c = neuro.init_weights(spec, 7), neuro.init_weights(spec, 7), neuro.init_weights(spec, 8)
    for k in ("W_in", "W_rec", "W_out"):
        np.testing.assert_array_equal(getattr(a, k), getattr(b, k))
        assert not np.allclose(getattr(a, k), getattr(c, k))


def test_density_and_dale_signs_hold_after_training():
    spec = _spec(**{"dale.enabled": True, "recurrent.density": 0.5, "populations[0].size": 40})
    w = neuro.init_weights(spec, seed=0)
    assert np.all(w.W_rec[:, w.signs > 0] >= 0) and np.all(w.W_rec[:, w.signs < 0] <= 0)
    net = neuro.compile(spec, "rate", w)
    neuro.train(net, neuro.tasks.get("romo"), neuro.rules.get("bptt"), iterations=50, lr=3e-2,
                batch_size=8, progress=False)
    after = net.weights()
    assert not np.allclose(after.W_rec, w.W_rec)          # it did learn
    assert np.all(after.W_rec[w.mask_rec == 0] == 0)      # sparsity held
    assert np.all(after.W_rec[:, w.signs > 0] >= 0)       # Dale held
    assert np.all(after.W_rec[:, w.signs < 0] <= 0)
    assert np.all(after.W_in >= 0) and np.all(after.W_out >= 0)
    assert np.all(after.W_out[:, w.signs < 0] == 0)        # inhibitory units do not project out


def test_hidden_noise_has_the_documented_scale():
    sigma = 0.5
    spec = _spec(**{"populations[0].neuron.noise_std": sigma, "recurrent.gain": 0.0,
                    "populations[0].neuron.activation": "linear"})
    net = neuro.compile(spec, "rate", dtype=torch.float64)
    traj = net.run(torch.zeros(1, 20000, 1, dtype=torch.float64), generator=torch.Generator().manual_seed(0))
    # one step from h=0 with zero weights: h = sqrt(2 dt/τ) σ ξ
    assert abs(traj.states[0].std().item() / (np.sqrt(2 * spec.dt / 100.0) * sigma) - 1) < 0.02


def test_float32_and_float64_agree():
    spec = _spec()
    w = neuro.init_weights(spec, 0)
    x = neuro.tasks.get("romo").batch(4, 0).inputs
    y32 = neuro.compile(spec, "rate", w).run(x).outputs.double()
    y64 = neuro.compile(spec, "rate", w, dtype=torch.float64).run(x.double()).outputs
    assert (y32 - y64).abs().max() < 1e-5

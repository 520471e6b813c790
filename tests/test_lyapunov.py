"""Lyapunov spectrum (QR method) against closed forms."""
import numpy as np
import pytest
import torch

import neuro
from neuro.lyapunov import LinearMap, lyapunov_spectrum


def _log_moduli(A, k):
    return np.sort(np.log(np.abs(np.linalg.eigvals(A))))[::-1][:k]


def test_constant_linear_map_gives_log_moduli_of_eigenvalues_with_1_over_T_convergence():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(50, 50)) / np.sqrt(50) * 1.1       # non-symmetric: eigenvalues ≠ singular values
    expected = _log_moduli(A, 10)
    errors = [np.abs(lyapunov_spectrum(LinearMap(A), steps=T, k=10).exponents - expected).max()
              for T in (200, 2000)]
    assert errors[1] < 5e-3
    assert 5 < errors[0] / errors[1] < 20        # O(1/T): ten times the steps, about a tenth of the error
    singular = np.log(np.linalg.svd(A, compute_uv=False))[:10]
    assert np.abs(singular - expected).max() > 0.1   # the oracle really distinguishes the two


@pytest.mark.parametrize("T", [1, 7, 100])
def test_scaled_orthogonal_map_gives_log_c_at_any_T(T):
    q, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(20, 20)))
    c = 0.7
    res = lyapunov_spectrum(LinearMap(c * q), steps=T, k=20)
    np.testing.assert_allclose(res.exponents, np.log(c), atol=1e-12)


def test_sum_of_full_spectrum_equals_mean_log_det_at_every_T():
    spec = neuro.models.load("romo_rate").replace(**{"populations[0].size": 16,
                                                     "populations[0].neuron.activation": "tanh",
                                                     "recurrent.gain": 1.8})
    net = neuro.compile(spec, "rate", dtype=torch.float64)
    x = neuro.tasks.get("romo").batch(1, seed=0, dtype=torch.float64).inputs[:30]
    res = lyapunov_spectrum(net, inputs=x, k=16)
    # independent: form each Jacobian with autograd and sum log|det|
    h = torch.zeros(1, 16, dtype=torch.float64)
    logdet = 0.0
    for t in range(30):
        J = torch.autograd.functional.jacobian(lambda hh: net.step(hh, x[t]), h)[0, :, 0, :]
        logdet += torch.linalg.slogdet(J)[1].item()
        h = net.step(h, x[t]).detach()
    assert res.exponents.sum() == pytest.approx(logdet / 30, abs=1e-10)


def test_leaky_linear_rnn_exponents_are_those_of_alpha_I_plus_W():
    spec = neuro.models.load("romo_rate").replace(**{"populations[0].size": 30,
                                                     "populations[0].neuron.activation": "linear",
                                                     "recurrent.gain": 1.3})
    w = neuro.init_weights(spec, 3)
    net = neuro.compile(spec, "rate", w, dtype=torch.float64)
    a = spec.alpha
    expected = _log_moduli(a * np.eye(30) + (1 - a) * w.W_rec, 5)
    res = lyapunov_spectrum(net, steps=3000, k=5)
    np.testing.assert_allclose(res.exponents, expected, atol=2e-3)


@pytest.mark.parametrize("seed", [0, 1])
def test_tanh_network_below_transition_has_exponents_of_the_linearization(seed):
    """g < 1, no input: trajectories fall to h = 0, where J = αI + (1-α)W; exponents log|α + (1-α)μ_i|."""
    spec = neuro.models.load("romo_rate").replace(**{"populations[0].size": 40,
                                                     "populations[0].neuron.activation": "tanh",
                                                     "recurrent.gain": 0.6})
    w = neuro.init_weights(spec, seed)
    net = neuro.compile(spec, "rate", w, dtype=torch.float64)
    mu = np.linalg.eigvals(w.W_rec)
    expected = np.sort(np.log(np.abs(spec.alpha + (1 - spec.alpha) * mu)))[::-1][:6]
    res = lyapunov_spectrum(net, steps=3000, warmup=500, k=6)
    np.testing.assert_allclose(res.exponents, expected, atol=3e-3)


@pytest.mark.parametrize("gain,sign", [(0.5, -1), (2.0, +1)])
def test_autonomous_tanh_network_shows_the_chaos_transition_at_g_1(gain, sign):
    """Sompolinsky, Crisanti & Sommers 1988: stable below g = 1, chaotic above (small dt/τ, large N)."""
    spec = neuro.models.load("romo_rate").replace(**{"populations[0].size": 300, "dt": 10.0,
                                                     "populations[0].neuron.activation": "tanh",
                                                     "recurrent.gain": gain})
    net = neuro.compile(spec, "rate", neuro.init_weights(spec, 0), dtype=torch.float64)
    res = lyapunov_spectrum(net, steps=1500, warmup=500, k=2, batch_size=2)
    assert np.sign(res.max_exponent) == sign
    assert abs(res.max_exponent) > 2e-3
    assert res.per_second[0] == pytest.approx(res.exponents[0] * 100.0)   # dt = 10 ms


def test_generic_jvp_path_equals_analytic_jacobian():
    class StepOnly:       # a model with a one-step map but no analytic Jacobian
        def __init__(self, net):
            self.net, self.n_hidden, self.spec = net, net.n_hidden, net.spec
        def step(self, h, x):
            return self.net.step(h, x)
    spec = neuro.models.load("romo_rate").replace(**{"populations[0].size": 20,
                                                     "populations[0].neuron.activation": "tanh"})
    net = neuro.compile(spec, "rate", dtype=torch.float64)
    x = neuro.tasks.get("romo").batch(3, seed=0, dtype=torch.float64).inputs[:50]
    a = lyapunov_spectrum(net, inputs=x, k=5).exponents
    b = lyapunov_spectrum(StepOnly(net), inputs=x, k=5).exponents
    np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_bad_arguments_are_clear():
    net = neuro.compile(neuro.models.load("romo_rate"), "rate")
    with pytest.raises(ValueError, match="k must be an integer in"):
        lyapunov_spectrum(net, steps=10, k=0)
    with pytest.raises(ValueError, match="steps must be"):
        lyapunov_spectrum(net, k=3)
    with pytest.raises(ValueError, match="warmup"):
        lyapunov_spectrum(net, steps=10, warmup=10)

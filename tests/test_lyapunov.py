"""Lyapunov spectrum (QR method) against closed forms and an independent dense-Jacobian computation."""
import numpy as np
import pytest
import torch

import neuro
from neuro.lyapunov import LinearMap, dense_jacobian_spectrum, lyapunov_spectrum


def _log_moduli(A, k):
    return np.sort(np.log(np.abs(np.linalg.eigvals(A))))[::-1][:k]


def _rate_net(size, activation="tanh", gain=1.0, seed=0, dtype=torch.float64, **more):
    spec = neuro.models.load("romo_rate").replace(**{"populations[0].size": size, "recurrent.gain": gain,
                                                     "populations[0].neuron.activation": activation, **more})
    w = neuro.init_weights(spec, seed)
    return neuro.compile(spec, "rate", w, dtype=dtype), spec, w


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


def test_running_estimate_converges_as_1_over_T():
    A = np.random.default_rng(2).normal(size=(30, 30)) / np.sqrt(30)
    res = lyapunov_spectrum(LinearMap(A), steps=1600, k=3)
    err = np.abs(res.running - _log_moduli(A, 3)).max(-1)
    assert res.running.shape == (1600, 3) and res.running_steps[-1] == 1600
    np.testing.assert_allclose(res.running[-1], res.exponents, rtol=1e-12)
    t = res.running_steps
    # T·error stays bounded (the error is a boundary term over T)
    assert (err[t >= 100] * t[t >= 100]).max() < 3 * (err[t == 100] * 100).item() + 1.0
    assert err[-1] < err[t == 100].item() / 8


@pytest.mark.parametrize("T", [1, 7, 100])
def test_scaled_orthogonal_map_gives_log_c_at_any_T(T):
    q, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(20, 20)))
    c = 0.7
    res = lyapunov_spectrum(LinearMap(c * q), steps=T, k=20, batch_size=2)
    np.testing.assert_allclose(res.exponents, np.log(c), atol=1e-12)
    np.testing.assert_allclose(res.running, np.log(c), atol=1e-12)


def test_sum_of_full_spectrum_equals_mean_log_det_at_every_T():
    net, _, _ = _rate_net(16, gain=1.8)
    x = neuro.tasks.get("romo").batch(1, seed=0, dtype=torch.float64).inputs[:40]
    res = lyapunov_spectrum(net, inputs=x, k=16)
    # independent: form each Jacobian with autograd and sum log|det J_t|
    h = torch.zeros(1, 16, dtype=torch.float64)
    logdets = []
    for t in range(40):
        J = torch.autograd.functional.jacobian(lambda hh: net.step(hh, x[t]), h)[0, :, 0, :]
        logdets.append(torch.linalg.slogdet(J)[1].item())
        h = net.step(h, x[t]).detach()
    expected = np.cumsum(logdets) / np.arange(1, 41)
    np.testing.assert_allclose(res.running.sum(-1), expected, rtol=0, atol=1e-10)


def test_leaky_linear_rnn_exponents_are_those_of_alpha_I_plus_W():
    net, spec, w = _rate_net(30, "linear", gain=1.3, seed=3)
    a = spec.alpha
    expected = _log_moduli(a * np.eye(30) + (1 - a) * w.W_rec, 5)
    res = lyapunov_spectrum(net, steps=3000, k=5)
    np.testing.assert_allclose(res.exponents, expected, atol=2e-3)


@pytest.mark.parametrize("seed", [0, 1])
def test_tanh_network_below_transition_has_exponents_of_the_linearization(seed):
    """g < 1, no input: trajectories fall to h = 0, where J = αI + (1-α)W; exponents log|α + (1-α)μ_i|."""
    net, spec, w = _rate_net(40, gain=0.6, seed=seed)
    mu = np.linalg.eigvals(w.W_rec)
    expected = np.sort(np.log(np.abs(spec.alpha + (1 - spec.alpha) * mu)))[::-1][:6]
    res = lyapunov_spectrum(net, steps=3000, warmup=500, k=6)
    np.testing.assert_allclose(res.exponents, expected, atol=3e-3)


@pytest.mark.parametrize("gain,sign", [(0.5, -1), (2.0, +1)])
def test_autonomous_tanh_network_shows_the_chaos_transition_at_g_1(gain, sign):
    """Sompolinsky, Crisanti & Sommers 1988: stable below g = 1, chaotic above (small dt/τ, large N)."""
    net, _, _ = _rate_net(300, gain=gain, dt=10.0)
    res = lyapunov_spectrum(net, steps=1500, warmup=500, k=2, batch_size=2)
    assert np.sign(res.max_exponent) == sign
    assert abs(res.max_exponent) > 2e-3
    np.testing.assert_allclose(res.per_second, res.exponents * 100.0)   # dt = 10 ms → 100 steps per second


def test_qr_interval_and_warmup_do_not_change_a_linear_spectrum():
    A = np.random.default_rng(4).normal(size=(12, 12)) / np.sqrt(12)
    every = lyapunov_spectrum(LinearMap(A), steps=500, warmup=100, k=4).exponents
    sparse = lyapunov_spectrum(LinearMap(A), steps=500, warmup=100, k=4, reortho_every=7).exponents
    np.testing.assert_allclose(sparse, every, atol=1e-10)


def test_generic_jvp_path_and_dense_jacobians_agree_with_the_analytic_jacobian():
    class StepOnly:       # a model with a one-step map but no analytic Jacobian
        def __init__(self, net):
            self.net, self.n_hidden, self.spec = net, net.n_hidden, net.spec
        def step(self, h, x):
            return self.net.step(h, x)
    net, _, _ = _rate_net(20)
    x = neuro.tasks.get("romo").batch(3, seed=0, dtype=torch.float64).inputs[:50]
    a = lyapunov_spectrum(net, inputs=x, k=5).exponents
    b = lyapunov_spectrum(StepOnly(net), inputs=x, k=5).exponents
    c = dense_jacobian_spectrum(net, inputs=x, k=5)
    np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(c, a, rtol=1e-10, atol=1e-12)


def test_plain_callable_map():
    A = torch.as_tensor(np.random.default_rng(5).normal(size=(8, 8)) / np.sqrt(8))
    res = lyapunov_spectrum(lambda h: h @ A.T, h0=torch.ones(2, 8, dtype=torch.float64),
                            steps=2000, k=3)
    np.testing.assert_allclose(res.exponents, _log_moduli(A.numpy(), 3), atol=3e-3)


def test_float64_on_a_float32_model_equals_the_float64_model():
    net32, spec, w = _rate_net(24, gain=1.5, dtype=torch.float32)
    net64 = neuro.compile(spec, "rate", net32.weights(), dtype=torch.float64)   # the same float32-rounded weights
    a = lyapunov_spectrum(net32, steps=200, k=4, dtype=torch.float64)
    b = lyapunov_spectrum(net64, steps=200, k=4)
    np.testing.assert_allclose(a.exponents, b.exponents, rtol=1e-12, atol=1e-14)


def test_ensemble_gives_each_members_spectrum():
    nets = [_rate_net(16, gain=g, seed=s)[0] for g, s in ((0.5, 0), (1.5, 1))]
    stacked = LinearMap(torch.stack([n.spec.alpha * torch.eye(16) + (1 - n.spec.alpha) * n.W_rec.detach()
                                     for n in nets]))
    res = lyapunov_spectrum(stacked, steps=300, k=3, batch_size=2)
    assert res.exponents.shape == (2, 3) and res.per_trajectory.shape == (2, 2, 3)
    for e, n in enumerate(nets):
        A = n.spec.alpha * np.eye(16) + (1 - n.spec.alpha) * n.W_rec.detach().numpy()
        np.testing.assert_allclose(res.exponents[e], _log_moduli(A, 3), atol=2e-2)
    np.testing.assert_allclose(res.max_exponent, res.exponents[:, 0])


def test_bad_arguments_are_clear():
    net = neuro.compile(neuro.models.load("romo_rate"), "rate")
    with pytest.raises(ValueError, match=r"k must be an integer in \[1, 64\]"):
        lyapunov_spectrum(net, steps=10, k=0)
    with pytest.raises(ValueError, match="steps must be"):
        lyapunov_spectrum(net, k=3)
    with pytest.raises(ValueError, match="warmup must be shorter"):
        lyapunov_spectrum(net, steps=10, warmup=10)
    with pytest.raises(ValueError, match="reortho_every must be"):
        lyapunov_spectrum(net, steps=10, reortho_every=0)
    with pytest.raises(ValueError, match="inputs must be"):
        lyapunov_spectrum(net, inputs=torch.zeros(10, 1))
    with pytest.raises(ValueError, match="needs h0"):
        lyapunov_spectrum(lambda h: h, steps=10)


def test_rate_ensemble_member_spectra_equal_each_network_alone():
    from neuro.ensemble import Ensemble
    spec = neuro.models.load("romo_rate").replace(**{"populations[0].size": 16,
                                                     "populations[0].neuron.activation": "tanh"})
    ens = Ensemble(spec, [{"seed": 0, "overrides": {"recurrent.gain": 0.5}},
                          {"seed": 1, "overrides": {"recurrent.gain": 2.0}}], dtype=torch.float64)
    x = neuro.tasks.get("romo").batch(3, seed=0, dtype=torch.float64).inputs[:60]
    for kwargs in ({"inputs": x}, {"steps": 60, "batch_size": 3}):
        together = lyapunov_spectrum(ens.net, k=4, **kwargs)
        assert together.per_trajectory.shape == (2, 3, 4)
        for e in range(2):
            alone = lyapunov_spectrum(ens.network(e), k=4, **kwargs)
            np.testing.assert_allclose(together.exponents[e], alone.exponents, rtol=1e-10, atol=1e-12)

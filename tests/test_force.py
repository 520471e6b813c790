"""RLS and FORCE against oracles: ridge least squares, and learning Sussillo & Abbott's target."""
import numpy as np
import pytest
import torch

import neuro
from neuro.rules.rls import RLS


def test_rls_after_one_pass_equals_ridge_least_squares():
    rng = np.random.default_rng(0)
    n, n_out, samples, alpha = 12, 3, 40, 0.5
    R = rng.normal(size=(samples, n))
    Y = rng.normal(size=(samples, n_out))
    W0 = rng.normal(size=(n_out, n))
    rls, W = RLS(n, alpha), torch.as_tensor(W0)
    for r, y in zip(torch.as_tensor(R), torch.as_tensor(Y)):
        W = rls.step(W, r, W @ r - y)
    # argmin Σ‖W r - y‖² + α‖W - W0‖²  →  W = (Yᵀ R + α W0)(Rᵀ R + α I)⁻¹
    ridge = (Y.T @ R + alpha * W0) @ np.linalg.inv(R.T @ R + alpha * np.eye(n))
    np.testing.assert_allclose(W.numpy(), ridge, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(rls.P.numpy(), np.linalg.inv(R.T @ R + alpha * np.eye(n)), rtol=1e-9, atol=1e-11)


def test_rate_force_learns_the_sum_of_sines():
    """Sussillo & Abbott 2009: g = 1.5, p = 0.1, dt = 0.1 τ, RLS every 2 steps, P(0) = I."""
    spec = neuro.models.load("romo_rate").replace(**{
        "populations[0].size": 300, "populations[0].neuron.activation": "tanh", "dt": 1.0,
        "populations[0].neuron.tau": 10.0, "recurrent.gain": 1.5, "recurrent.density": 0.1,
        "readout.init": "zeros", "readout.bias": False, "n_inputs": 1, "n_outputs": 1, "input.gain": 0.0})
    net = neuro.compile(spec, "rate", neuro.init_weights(spec, 0), dtype=torch.float64)
    task = neuro.tasks.get("sum_of_sines", dt=1.0, n_steps=600)
    history = neuro.train(net, task, neuro.rules.get("force"), iterations=6, seed=0, progress=False)
    assert history["train_nmse"][0] > history["train_nmse"][-1]
    assert history["test_nmse"] < 0.05        # learning off, output fed back; measured in the README


def test_force_options_are_checked():
    with pytest.raises(ValueError, match="every"):
        neuro.rules.get("force", every=0)
    with pytest.raises(ValueError, match="alpha"):
        RLS(4, alpha=0)
    with pytest.raises(NotImplementedError, match="full_force"):
        neuro.rules.get("full_force")

"""Gradient flossing: the gradient through the QR is right, and flossing moves exponents toward 0."""
import numpy as np
import pytest
import torch

import neuro
from neuro.flossing import FlossingRegularized, flossing_loss


class ScaledOrthogonal:
    """h → c Q h with a trainable scalar c: λ_i = log c for all i."""

    def __init__(self, n=10, c=0.6):
        q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(n, n)))
        self.Q = torch.as_tensor(q)
        self.c = torch.tensor(c, dtype=torch.float64, requires_grad=True)
        self.n_hidden = n

    def effective(self):
        return {"c": self.c}

    def trainable(self):
        return {"c": self.c}

    def step(self, h, x, params=None):
        return (params or self.effective())["c"] * h @ self.Q.T

    def jacobian_vp(self, h, V, params=None):
        return (params or self.effective())["c"] * torch.matmul(self.Q, V)


@pytest.mark.parametrize("k", [1, 4, 10])
def test_gradient_through_qr_matches_closed_form(k):
    m = ScaledOrthogonal()
    loss, lam = flossing_loss(m, steps=25, k=k)
    (grad,) = torch.autograd.grad(loss, [m.c])
    c = m.c.item()
    assert loss.item() == pytest.approx(k * np.log(c) ** 2, rel=1e-10)
    assert grad.item() == pytest.approx(2 * k * np.log(c) / c, rel=1e-8)


@pytest.mark.parametrize("local", [True, False])
def test_flossing_a_small_gain_network_moves_exponents_toward_zero(local):
    spec = neuro.models.load("romo_rate").replace(**{"recurrent.gain": 0.2, "populations[0].size": 32})
    net = neuro.compile(spec, "rate", neuro.init_weights(spec, 0))
    task = neuro.tasks.get("romo")
    x = task.batch(4, seed=0).inputs[:60]
    before = neuro.lyapunov_spectrum(net, inputs=x, k=4).exponents
    hist = neuro.floss(net, steps=60, k=4, local=local, lr=3e-3, inputs=x, progress=False)
    after = neuro.lyapunov_spectrum(net, inputs=x, k=4).exponents
    assert hist["loss"][-1] < hist["loss"][0] / 5          # Σλ² falls by a large factor
    assert before[0] < -0.15 and after[0] > before[0] + 0.1   # max exponent moves toward 0
    assert np.sum(after**2) < np.sum(before**2) / 5


def test_local_and_full_flossing_gradients_differ_on_a_nonlinear_network():
    spec = neuro.models.load("romo_rate").replace(**{"populations[0].size": 12, "recurrent.gain": 1.5,
                                                     "populations[0].neuron.activation": "tanh"})
    net = neuro.compile(spec, "rate", dtype=torch.float64)
    x = neuro.tasks.get("romo").batch(2, seed=0, dtype=torch.float64).inputs[:40]
    g = {}
    for local in (True, False):
        loss, _ = flossing_loss(net, x, k=3, local=local)
        g[local] = torch.autograd.grad(loss, [net.W_rec])[0]
    assert (g[True] - g[False]).abs().max() > 1e-6
    cos = torch.nn.functional.cosine_similarity(g[True].flatten(), g[False].flatten(), dim=0)
    assert cos > 0.5    # the local gradient is an approximation of the full one


def test_flossing_as_a_regularizer_adds_to_the_task_gradient():
    spec = neuro.models.load("romo_rate").replace(**{"populations[0].size": 16, "recurrent.gain": 0.2})
    net = neuro.compile(spec, "rate", dtype=torch.float64)
    task = neuro.tasks.get("romo")
    batch = task.batch(2, seed=0, dtype=torch.float64)
    plain = neuro.rules.get("eprop").gradients(net, batch, task)
    reg = FlossingRegularized(neuro.rules.get("eprop"), weight=0.5, k=2).gradients(net, batch, task)
    fl, _ = flossing_loss(net, batch.inputs, k=2)
    extra = torch.autograd.grad(fl, [net.W_rec])[0]
    torch.testing.assert_close(reg["W_rec"], plain["W_rec"] + 0.5 * extra)
    torch.testing.assert_close(reg["W_out"], plain["W_out"])

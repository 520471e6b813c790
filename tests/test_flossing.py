"""Gradient flossing: the gradient through the QR is right, ``local`` truncates exactly the
state dependence, and flossing moves a small-gain network's exponents toward 0."""
import numpy as np
import pytest
import torch

import neuro
from neuro.flossing import FlossingRegularized, floss, flossing_loss


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
@pytest.mark.parametrize("local", [True, False])
def test_gradient_through_qr_matches_closed_form(k, local):
    m = ScaledOrthogonal()
    loss = flossing_loss(m, steps=25, k=k, local=local, batch_size=2)
    (grad,) = torch.autograd.grad(loss, [m.c])
    c = m.c.item()
    assert loss.item() == pytest.approx(k * np.log(c) ** 2, rel=1e-10)
    assert grad.item() == pytest.approx(2 * k * np.log(c) / c, rel=1e-8)
    mean = flossing_loss(m, steps=25, k=k, local=local, reduction="mean")     # Engelken's normalization
    assert torch.autograd.grad(mean, [m.c])[0].item() == pytest.approx(2 * np.log(c) / c, rel=1e-8)


def _tanh_net(n=10, gain=1.5):
    spec = neuro.models.load("romo_rate").replace(**{"populations[0].size": n, "recurrent.gain": gain,
                                                     "populations[0].neuron.activation": "tanh"})
    return neuro.compile(spec, "rate", neuro.init_weights(spec, 0), dtype=torch.float64)


def _finite_difference(loss_of_W, W, eps=1e-6, entries=((0, 1), (3, 2), (5, 5), (7, 0))):
    out = []
    for i, j in entries:
        Wp, Wm = W.clone(), W.clone()
        Wp[i, j] += eps
        Wm[i, j] -= eps
        out.append((loss_of_W(Wp) - loss_of_W(Wm)) / (2 * eps))
    return np.array(out), entries


class FrozenStates:
    """The rate network with its state trajectory computed from fixed weights W0 and its
    Jacobians from the weights W under test: the loss that ``local=True`` differentiates."""

    def __init__(self, net, W):
        self.net, self.n_hidden, self.spec, self.W = net, net.n_hidden, net.spec, W

    def effective(self):
        return {**self.net.effective(), "W_rec": self.W}

    def step(self, h, x, params=None):
        return self.net.step(h, x)

    def jacobian_vp(self, h, V, params=None):
        return self.net.jacobian_vp(h, V, params)


@pytest.mark.parametrize("local", [True, False])
def test_gradient_equals_finite_differences_of_what_it_claims_to_differentiate(local):
    net = _tanh_net()
    x = neuro.tasks.get("romo").batch(2, seed=0, dtype=torch.float64).inputs[:30]
    grad = torch.autograd.grad(flossing_loss(net, x, k=3, local=local), [net.W_rec])[0]

    def loss_of_W(W):
        with torch.no_grad():
            if local:       # the states stay those of the original weights
                return flossing_loss(FrozenStates(net, W), x, k=3).item()
            probe = _tanh_net()
            probe.W_rec.copy_(W)
            return flossing_loss(probe, x, k=3).item()
    fd, entries = _finite_difference(loss_of_W, net.W_rec.detach())
    np.testing.assert_allclose([grad[e].item() for e in entries], fd, rtol=1e-5, atol=1e-9)


def test_local_truncation_matters_for_tanh_and_vanishes_for_relu():
    x = neuro.tasks.get("romo").batch(2, seed=0, dtype=torch.float64).inputs[:40]
    tanh = _tanh_net(12)
    g = [torch.autograd.grad(flossing_loss(tanh, x, k=3, local=local), [tanh.W_rec, tanh.W_in], allow_unused=True)
         for local in (True, False)]
    assert (g[0][0] - g[1][0]).abs().max() > 1e-3 * g[1][0].abs().max()
    assert g[0][1] is None and g[1][1].abs().max() > 0    # local: inputs act on the loss only through the states
    # ReLU: f' is piecewise constant, so the dropped term ∂L/∂h · ∂h/∂W is exactly 0
    spec = neuro.models.load("romo_rate").replace(**{"populations[0].size": 12, "recurrent.gain": 1.5})
    relu = neuro.compile(spec, "rate", neuro.init_weights(spec, 0), dtype=torch.float64)
    names = list(relu.trainable())
    g = [dict(zip(names, torch.autograd.grad(flossing_loss(relu, x, k=3, local=local), list(relu.trainable().values()),
                                             allow_unused=True))) for local in (True, False)]
    torch.testing.assert_close(g[0]["W_rec"], g[1]["W_rec"], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("local", [True, False])
def test_flossing_the_papers_g02_relu_network_moves_exponents_toward_zero(local):
    spec = neuro.models.load("romo_rate").replace(**{"recurrent.gain": 0.2})
    net = neuro.compile(spec, "rate", neuro.init_weights(spec, 0))
    x = neuro.tasks.get("romo").batch(4, seed=1).inputs
    before = neuro.lyapunov_spectrum(net, inputs=x, k=8).exponents
    hist = neuro.floss(net, steps=40, k=8, local=local, lr=1e-2, inputs=neuro.tasks.get("romo"),
                       batch_size=4, progress=False)
    after = neuro.lyapunov_spectrum(net, inputs=x, k=8).exponents
    assert np.mean(hist["loss"][-5:]) < hist["loss"][0] / 10   # Σλ² falls by a large factor
    assert np.sum(after ** 2) < np.sum(before ** 2) / 10      # also on held-out trials
    assert before[0] < -0.1 and abs(after[0]) < abs(before[0]) / 3   # max exponent moves toward 0
    assert all(p.grad is None for p in net.trainable().values())


def test_autonomous_flossing_and_clear_errors():
    net = _tanh_net(16, gain=0.3)
    hist = floss(net, steps=5, k=2, T=20, batch_size=2, lr=1e-2, progress=False)
    assert len(hist["loss"]) == 5 and hist["loss"][-1] < hist["loss"][0]
    with pytest.raises(ValueError, match="lr must be"):
        floss(net, steps=1, lr=0)
    with pytest.raises(ValueError, match="reduction must be"):
        flossing_loss(net, steps=5, reduction="max")
    with pytest.raises(ValueError, match=r"k must be an integer in \[1, 16\]"):
        flossing_loss(net, steps=5, k=17)


def test_flossing_as_a_regularizer_adds_to_the_task_gradient_every_n_iterations():
    spec = neuro.models.load("romo_rate").replace(**{"populations[0].size": 16, "recurrent.gain": 0.2})
    net = neuro.compile(spec, "rate", dtype=torch.float64)
    task = neuro.tasks.get("romo")
    batch = task.batch(2, seed=0, dtype=torch.float64)
    plain = neuro.rules.get("eprop").gradients(net, batch, task)
    extra = torch.autograd.grad(flossing_loss(net, batch.inputs, k=2), [net.W_rec])[0]
    reg = FlossingRegularized("eprop", weight=0.5, k=2, every=2)
    first, second, third = (reg.gradients(net, batch, task) for _ in range(3))
    torch.testing.assert_close(first["W_rec"], plain["W_rec"] + 0.5 * extra)
    torch.testing.assert_close(second["W_rec"], plain["W_rec"])
    torch.testing.assert_close(third["W_rec"], first["W_rec"])
    torch.testing.assert_close(first["W_out"], plain["W_out"])


def test_flossing_an_ensemble_equals_flossing_each_member_alone():
    from neuro.ensemble import Ensemble
    spec = neuro.models.load("romo_rate").replace(**{"populations[0].size": 12,
                                                     "populations[0].neuron.activation": "tanh"})
    ens = Ensemble(spec, [{"seed": 0, "overrides": {"recurrent.gain": 0.2}},
                          {"seed": 1, "overrides": {"recurrent.gain": 1.5}}], dtype=torch.float64)
    alone = [ens.network(e) for e in range(2)]
    kwargs = dict(steps=4, k=3, lr=1e-2, inputs=neuro.tasks.get("romo"), T=30, batch_size=2, progress=False)
    hist = floss(ens.net, **kwargs)
    for e, net in enumerate(alone):
        floss(net, **kwargs)
        torch.testing.assert_close(ens.net.W_rec[e], net.W_rec, rtol=1e-9, atol=1e-12)
    assert len(hist["loss"]) == 4 and hist["loss"][0].shape == (2,)

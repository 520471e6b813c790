"""Gradient rules against oracles: BPTT = finite differences; e-prop autograd form = trace form."""
import itertools

import numpy as np
import pytest
import torch

import neuro


def _net(seed=0, **changes):
    spec = neuro.models.load("romo_rate").replace(**{"populations[0].size": 10, **changes})
    return neuro.compile(spec, "rate", neuro.init_weights(spec, seed), dtype=torch.float64)


def _small_romo():
    return neuro.tasks.get("romo", tau=100.0, dt=50.0)   # 56 steps


def test_bptt_matches_central_finite_differences():
    net = _net(1, **{"populations[0].neuron.activation": "tanh", "readout.bias": True, "dt": 50.0})
    task = _small_romo()
    batch = task.batch(3, seed=0, dtype=torch.float64)
    grads = neuro.rules.get("bptt").gradients(net, batch, task)
    rng = np.random.default_rng(0)
    eps = 1e-6
    for name, p in net.trainable().items():
        for _ in range(4):
            idx = tuple(rng.integers(s) for s in p.shape)
            with torch.no_grad():
                old = p[idx].item()
                p[idx] = old + eps
                up = task.loss(net.run(batch.inputs).outputs, batch).item()
                p[idx] = old - eps
                down = task.loss(net.run(batch.inputs).outputs, batch).item()
                p[idx] = old
            fd = (up - down) / (2 * eps)
            assert abs(grads[name][idx].item() - fd) <= 1e-7 + 1e-5 * abs(fd), (name, idx)


CASES = list(itertools.product([0, 1, 2], ["symmetric", "random"], [False, True]))


@pytest.mark.parametrize("seed,feedback,dale", CASES)
def test_eprop_autograd_form_equals_trace_form(seed, feedback, dale):
    changes = {"feedback.kind": feedback, "dale.enabled": dale, "input.bias": True, "dt": 50.0,
               "populations[0].neuron.activation": ["relu", "tanh", "softplus"][seed],
               "recurrent.density": 0.6 if dale else 1.0, "recurrent.gain": [0.5, 1.0, 1.5][seed]}
    net = _net(seed, **changes)
    task = _small_romo()
    batch = task.batch(4, seed=seed, dtype=torch.float64)
    g_auto = neuro.rules.get("eprop", form="autograd").gradients(net, batch, task)
    g_trace = neuro.rules.get("eprop", form="trace").gradients(net, batch, task)
    assert g_auto.keys() == g_trace.keys()
    for k in g_auto:
        scale = g_auto[k].abs().max().item()
        assert scale > 0, k
        assert (g_auto[k] - g_trace[k]).abs().max().item() <= 1e-10 * max(1.0, scale), k


def test_eprop_differs_from_bptt_only_in_recurrent_credit():
    """e-prop is exact for the readout and truncates the rest: it must differ from BPTT in W_rec."""
    net = _net(0, **{"dt": 50.0})
    task = _small_romo()
    batch = task.batch(4, seed=0, dtype=torch.float64)
    g_bptt = neuro.rules.get("bptt").gradients(net, batch, task)
    g_eprop = neuro.rules.get("eprop").gradients(net, batch, task)
    torch.testing.assert_close(g_bptt["W_out"], g_eprop["W_out"], rtol=1e-12, atol=1e-14)
    assert (g_bptt["W_rec"] - g_eprop["W_rec"]).abs().max() > 1e-6
    cos = torch.nn.functional.cosine_similarity(g_bptt["W_rec"].flatten(), g_eprop["W_rec"].flatten(), dim=0)
    assert cos > 0.1   # an approximation of the gradient, not noise


def test_tbptt_with_full_window_is_bptt_and_shorter_window_is_not():
    net = _net(2, **{"dt": 50.0})
    task = _small_romo()
    batch = task.batch(2, seed=1, dtype=torch.float64)
    g = neuro.rules.get("bptt").gradients(net, batch, task)
    g_full = neuro.rules.get("tbptt", k=10_000).gradients(net, batch, task)
    g_short = neuro.rules.get("tbptt", k=5).gradients(net, batch, task)
    for k in g:
        torch.testing.assert_close(g[k], g_full[k], rtol=1e-12, atol=1e-14)
    assert (g["W_rec"] - g_short["W_rec"]).abs().max() > 1e-8


def test_unknown_rule_and_bad_options_are_clear():
    with pytest.raises(ValueError, match="rule must be one of"):
        neuro.rules.get("backprop")
    with pytest.raises(ValueError, match="tbptt window k"):
        neuro.rules.get("tbptt", k=0)
    with pytest.raises(ValueError, match="eprop form"):
        neuro.rules.get("eprop", form="fast")


@pytest.mark.parametrize("rule", [{"name": "bptt"}, {"name": "eprop"}, {"name": "tbptt", "k": 7}])
@pytest.mark.parametrize("activation", ["relu", "tanh", "retanh", "softplus"])
def test_fused_backward_equals_autograd_through_the_step(rule, activation):
    """The rate backend's hand-written adjoint recursion against plain autograd (noise and Dale on)."""
    spec = neuro.models.load("romo_rate").replace(**{
        "populations[0].size": 12, "populations[0].neuron.activation": activation, "input.bias": True,
        "dale.enabled": activation == "relu", "populations[0].neuron.noise_std": 0.1, "dt": 50.0})
    net = neuro.compile(spec, "rate", neuro.init_weights(spec, 4), dtype=torch.float64)
    task = _small_romo()
    batch = task.batch(3, seed=2, dtype=torch.float64)
    r = neuro.rules.get(**rule)
    fused = r.gradients(net, batch, task, generator=torch.Generator().manual_seed(1))
    net.fused = False
    plain = r.gradients(net, batch, task, generator=torch.Generator().manual_seed(1))
    for k in plain:
        torch.testing.assert_close(fused[k], plain[k], rtol=1e-10, atol=1e-13)


def _one_step_trace_gradient(net, batch, task):
    """Independent oracle for e-prop with the whole state detached each step: the eligibility of
    W_ij at step t is only (1-α) r_j[t] (no leak memory); numpy, float64."""
    p = {k: v.detach().numpy() for k, v in net.effective().items()}
    x = batch.inputs.numpy()
    a = net.alpha
    T, B, _ = x.shape
    h = np.zeros((B, p["W_rec"].shape[0]))
    y = torch.zeros((T, B, p["W_out"].shape[0]), dtype=torch.float64, requires_grad=True)
    hs, rs = [], []
    for t in range(T):
        r = np.maximum(h, 0)
        h = a * h + (1 - a) * (r @ p["W_rec"].T + x[t] @ p["W_in"].T + p["b"])
        rs.append(r)
        hs.append(h)
    with torch.no_grad():
        y.copy_(torch.as_tensor(np.stack([np.maximum(hh, 0) @ p["W_out"].T + p["b_out"] for hh in hs])))
    dy = torch.autograd.grad(task.loss(y, batch), y)[0].numpy()
    g = np.zeros_like(p["W_rec"])
    for t in range(T):
        signal = (hs[t] > 0) * (dy[t] @ p["W_out"])
        g += (1 - a) * signal.T @ rs[t]
    return g


def test_eprop_detach_form_is_the_one_step_truncation_and_equals_the_trace_form_at_dt_tau():
    net = _net(3, **{"dt": 50.0, "recurrent.gain": 1.2})
    task = _small_romo()
    batch = task.batch(4, seed=3, dtype=torch.float64)
    g_detach = neuro.rules.get("eprop", form="detach").gradients(net, batch, task)
    oracle = _one_step_trace_gradient(net, batch, task)
    np.testing.assert_allclose(g_detach["W_rec"].numpy(), oracle, rtol=1e-9, atol=1e-13)
    g_trace = neuro.rules.get("eprop", form="trace").gradients(net, batch, task)
    assert (g_trace["W_rec"] - g_detach["W_rec"]).abs().max() > 1e-4 * g_trace["W_rec"].abs().max()
    # at dt = τ the leak is gone (α = 0): no trace to keep, the forms coincide
    net0 = _net(3, **{"dt": 100.0, "recurrent.gain": 1.2})
    task0 = neuro.tasks.get("romo", tau=100.0, dt=100.0)
    batch0 = task0.batch(4, seed=3, dtype=torch.float64)
    g0 = neuro.rules.get("eprop", form="detach").gradients(net0, batch0, task0)
    g1 = neuro.rules.get("eprop", form="trace").gradients(net0, batch0, task0)
    for k in g0:
        torch.testing.assert_close(g0[k], g1[k], rtol=1e-10, atol=1e-14)

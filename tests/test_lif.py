"""LIF backend against independent oracles: a numpy implementation of the shared discretization,
snnTorch's own Synaptic neuron, the analytic f–I curve, and e-prop's two forms."""
import math

import numpy as np
import pytest
import torch

import neuro
from lif_specs import lif_spec
from neuro.lif_params import lif_constants


def numpy_lif(spec, w, x):
    """The contract of neuro/lif_params.py written out in numpy, float64."""
    c = lif_constants(spec.neuron, spec.dt)
    n = spec.n_hidden
    th, zero = spec.neuron.v_th, spec.neuron.reset == "zero"
    u = v = us = r = s = np.zeros((x.shape[1], n))
    ref = np.zeros_like(u)
    spikes, outs = [], []
    W_slow = w.extra.get("W_slow")
    for t in range(x.shape[0]):
        u = (1 - c.du) * u + x[t] @ w.W_in.T + s @ w.W_rec.T
        v = (1 - c.dv) * v + u + w.b
        if W_slow is not None:
            us = (1 - c.du_slow) * us + s @ W_slow.T
            v = v + us
        free = ref <= 0
        v = np.where(free, v, 0.0)
        s = ((v > th) & free).astype(float)
        v = v * (1 - s) if zero else v - th * s
        ref = np.where(s > 0, c.refractory_steps, ref - 1)
        r = (1 - c.d_readout) * r + s
        spikes.append(s)
        outs.append(r @ w.W_out.T + w.b_out)
    return np.array(spikes), np.array(outs)


VARIANTS = [{}, {"populations[0].neuron.reset": "subtract"}, {"populations[0].neuron.refractory": 3.0},
            {"populations[0].neuron.tau_syn_slow": 40.0}, {"dale.enabled": True, "recurrent.density": 0.3}]


@pytest.mark.parametrize("changes", VARIANTS)
def test_spikes_equal_an_independent_numpy_implementation(changes):
    spec = lif_spec(**changes)
    w = neuro.init_weights(spec, 2)
    net = neuro.compile(spec, "lif", w, dtype=torch.float64)
    x = np.random.default_rng(0).uniform(0, 1.0, size=(600, 4, 3))
    traj = net.run(torch.as_tensor(x))
    spikes, outputs = numpy_lif(spec, w, x)
    assert 0.02 < spikes.mean() < 0.8                       # the network is active, not silent or saturated
    np.testing.assert_array_equal(traj.spikes.detach().numpy(), spikes)
    np.testing.assert_allclose(traj.outputs.detach().numpy(), outputs, rtol=1e-10, atol=1e-10)


def test_matches_snntorch_synaptic_neuron_where_it_applies():
    """snnTorch's Synaptic (alpha = 1-du, beta = 1-dv, reset to zero, no reset delay) on our input currents."""
    import snntorch as snn
    spec = lif_spec(**{"input.bias": False})
    w = neuro.init_weights(spec, 5)
    net = neuro.compile(spec, "lif", w)
    x = torch.rand(300, 2, 3)
    traj = net.run(x)
    c = net.c
    from neuro.backends.lif import snntorch_parameters
    table = snntorch_parameters(spec.neuron, spec.dt)
    assert (table["alpha"], table["beta"]) == (c.alpha, c.beta)
    lif = snn.Synaptic(**table)
    syn = mem = torch.zeros(2, spec.n_hidden)
    spk = torch.zeros(2, spec.n_hidden)
    W_in, W_rec = torch.tensor(w.W_in, dtype=torch.float32), torch.tensor(w.W_rec, dtype=torch.float32)
    theirs = []
    for t in range(300):
        spk, syn, mem = lif(x[t] @ W_in.T + spk @ W_rec.T, syn, mem)
        theirs.append(spk)
    theirs = torch.stack(theirs)
    assert theirs.mean() > 0.02
    assert (theirs != traj.spikes.detach()).float().mean() < 1e-3      # float32 rounding may flip a rare spike
    first = (theirs != traj.spikes.detach()).any(-1).any(-1).nonzero()
    assert len(first) == 0 or first[0].item() > 100


@pytest.mark.parametrize("refractory", [0.0, 2.0])
def test_single_neuron_rate_equals_the_discrete_time_formula(refractory):
    """Constant drive b (as bias), u = 0: v[n] = b (1 - (1-dv)^n)/dv; the first n with v[n] > θ is the
    inter-spike interval, plus R refractory steps."""
    dt, tau, theta = 0.5, 10.0, 1.0
    rates = []
    for b in (0.06, 0.1, 0.3):
        spec = lif_spec(**{"dt": dt, "populations[0].size": 1, "n_inputs": 1, "input.gain": 0.0,
                           "recurrent.gain": 0.0, "populations[0].neuron.tau_mem": tau,
                           "populations[0].neuron.refractory": refractory})
        w = neuro.init_weights(spec, 0)
        w.b[:] = b
        net = neuro.compile(spec, "lif", w, dtype=torch.float64)
        T = 4000
        s = net.run(torch.zeros(T, 1, 1, dtype=torch.float64)).spikes[:, 0, 0].detach().numpy()
        dv = net.c.dv
        n_star = math.ceil(math.log(1 - theta * dv / b) / math.log(1 - dv))
        if (b / dv) * (1 - (1 - dv) ** n_star) <= theta:    # strict threshold on the boundary
            n_star += 1
        period = n_star + net.c.refractory_steps
        times = np.nonzero(s)[0]
        assert np.all(np.diff(times) == period)
        rates.append(1000.0 / (period * dt))
    assert rates[0] < rates[1] < rates[2]


def test_rate_approaches_the_continuous_f_I_curve_as_dt_shrinks():
    """τ dv/dt = -v + τ I: rate = 1 / (τ_ref + τ ln(τI / (τI - θ)))."""
    tau, theta, I, t_ref = 10.0, 1.0, 0.13, 2.0     # I in 1/ms: v_inf = τ I = 1.3
    exact = 1000.0 / (t_ref + tau * math.log(tau * I / (tau * I - theta)))
    errors = []
    for dt in (0.5, 0.05):
        spec = lif_spec(**{"dt": dt, "populations[0].size": 1, "n_inputs": 1, "input.gain": 0.0,
                           "recurrent.gain": 0.0, "populations[0].neuron.tau_mem": tau,
                           "populations[0].neuron.tau_syn": max(dt, 0.05),
                           "populations[0].neuron.tau_readout": max(dt, 0.05),
                           "populations[0].neuron.refractory": t_ref})
        w = neuro.init_weights(spec, 0)
        net = neuro.compile(spec, "lif", w, dtype=torch.float64)
        w.b[:] = I * tau * net.c.dv       # the exact-decay discretization of a constant current
        net = neuro.compile(spec, "lif", w, dtype=torch.float64)
        T = int(2000 / dt)
        s = net.run(torch.zeros(T, 1, 1, dtype=torch.float64)).spikes[:, 0, 0].detach().numpy()
        times = np.nonzero(s)[0] * dt
        errors.append(abs(1000.0 / np.diff(times).mean() - exact) / exact)
    assert errors[1] < 0.01 and errors[1] < errors[0]


EPROP_VARIANTS = [{}, {"feedback.kind": "random"}, {"populations[0].neuron.reset": "subtract",
                                                    "populations[0].neuron.surrogate": "atan",
                                                    "populations[0].neuron.surrogate_slope": 2.0},
                  {"populations[0].neuron.refractory": 2.0}, {"populations[0].neuron.tau_syn_slow": 30.0},
                  {"dale.enabled": True}]


@pytest.mark.parametrize("changes", EPROP_VARIANTS)
def test_eprop_autograd_form_equals_online_trace_form(changes):
    spec = lif_spec(**{"populations[0].size": 12, **changes})
    net = neuro.compile(spec, "lif", neuro.init_weights(spec, 1), dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(60, 4, 3, generator=g, dtype=torch.float64) * 2
    batch = neuro.tasks.Batch(x, torch.randn(60, 4, 2, generator=g, dtype=torch.float64),
                              torch.ones(60, 4, dtype=torch.float64))
    task = neuro.tasks.Romo()     # any regression task: the masked MSE loss
    assert net.run(x).spikes.mean() > 0.05
    a = neuro.rules.get("eprop").gradients(net, batch, task)
    b = neuro.rules.get("eprop", form="trace").gradients(net, batch, task)
    for k in a:
        scale = a[k].abs().max().item()
        assert scale > 0, k
        assert (a[k] - b[k]).abs().max().item() <= 1e-10 * scale, k


@pytest.mark.slow
def test_eprop_trains_the_lif_network_on_2af():
    torch.manual_seed(0)
    spec = neuro.models.load("2af_lif").replace(**{"populations[0].size": 32, "dt": 20.0,
                                                   "populations[0].neuron.tau_syn": 20.0})
    task = neuro.tasks.get("2af", dt=spec.dt)
    net = neuro.compile(spec, "lif", neuro.init_weights(spec, 0))
    test = task.batch(200, seed=999)
    before = task.accuracy(net.run(test.inputs).outputs, test)
    neuro.train(net, task, neuro.rules.get("eprop"), iterations=80, lr=1e-2, batch_size=16, progress=False)
    after = task.accuracy(net.run(test.inputs).outputs, test)
    assert before < 0.3 and after > 0.65          # measured: 0.0 -> 0.765 on held-out trials


def test_bptt_surrogate_gradients_flow_to_every_weight():
    spec = lif_spec(**{"populations[0].size": 10})
    net = neuro.compile(spec, "lif", dtype=torch.float64)
    x = torch.rand(40, 3, 3, dtype=torch.float64)
    batch = neuro.tasks.Batch(x, torch.randn(40, 3, 2, dtype=torch.float64), torch.ones(40, 3, dtype=torch.float64))
    g_bptt = neuro.rules.get("bptt").gradients(net, batch, neuro.tasks.Romo())
    g_eprop = neuro.rules.get("eprop").gradients(net, batch, neuro.tasks.Romo())
    for k in ("W_in", "W_rec", "W_out", "b"):
        assert g_bptt[k].abs().max() > 0, k
    assert (g_bptt["W_rec"] - g_eprop["W_rec"]).abs().max() > 1e-8   # e-prop truncates


def test_far_below_threshold_the_surrogate_spectrum_is_the_decay_exponents():
    spec = lif_spec(**{"populations[0].size": 8, "populations[0].neuron.v_th": 1e6,
                       "populations[0].neuron.surrogate_slope": 1e3})
    net = neuro.compile(spec, "lif", dtype=torch.float64)
    res = neuro.lyapunov_spectrum(net, steps=4000, warmup=500, k=16)
    c = net.c
    expected = np.sort([math.log(1 - c.du)] * 8 + [math.log(1 - c.dv)] * 8)[::-1]
    # J = [[(1-du) I, 0], [(1-du) I, (1-dv) I]] is non-normal with repeated eigenvalues: the QR
    # estimate converges like log(T)/T, so the tolerance is a few 1e-3 at T = 3500
    np.testing.assert_allclose(res.exponents, expected, atol=3e-3)
    assert abs(res.exponents.sum() - expected.sum()) < 1e-9     # the sum (log det) is exact at any T


def test_same_weights_start_a_rate_and_a_spiking_network():
    rate_spec = neuro.models.load("romo_rate")
    w = neuro.init_weights(rate_spec, 0)
    lif = neuro.compile(lif_spec(**{"populations[0].size": 64, "n_inputs": 1, "input.bias": False}), "lif", w)
    rate = neuro.compile(rate_spec, "rate", w)
    np.testing.assert_array_equal(lif.weights().W_rec, rate.weights().W_rec)


def test_wrong_backend_for_the_neuron_model_is_clear():
    with pytest.raises(ValueError, match="backend 'lif' needs"):
        neuro.compile(neuro.models.load("romo_rate"), "lif")
    with pytest.raises(ValueError, match="backend 'rate' needs"):
        neuro.compile(lif_spec(), "rate")


def test_event_driven_inference_gives_the_dense_runs_spikes():
    """Without autograd a single trial sums only the spiking neurons' columns; the spikes must not change."""
    spec = neuro.models.load("2af_lif").replace(**{"populations[0].size": 300, "populations[0].neuron.tau_syn_slow": 50.0,
                                                    "recurrent.density": 0.2, "recurrent.gain": 0.3, "input.gain": 1.0})
    net = neuro.compile(spec, "lif", neuro.init_weights(spec, 1), dtype=torch.float64)
    x = torch.rand(500, 1, spec.n_inputs, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    with torch.no_grad():
        sparse = net.run(x)
    dense = net.run(x)                                   # the weights require grad: the dense matmul
    assert 0 < float(sparse.spikes.mean()) < 0.25
    assert torch.equal(sparse.spikes, dense.spikes.detach())
    torch.testing.assert_close(sparse.outputs, dense.outputs.detach(), rtol=1e-12, atol=1e-12)


def test_flossing_a_lif_network_moves_its_surrogate_exponents_toward_zero():
    """Gradient flossing through the surrogate Jacobian (Engelken 2023 on the LIF map): 30 Adam steps
    at lr 0.03 take Σλ² (k = 4) from 0.93 to 0.82 and λ_max from -0.46 to -0.38 per step (measured)."""
    from neuro.flossing import flossing_loss
    spec = neuro.models.load("2af_lif").replace(**{"populations[0].size": 32})
    net = neuro.compile(spec, "lif", neuro.init_weights(spec, 0), dtype=torch.float64)
    x = neuro.tasks.get("2af", dt=spec.dt).batch(4, seed=0, dtype=torch.float64).inputs
    with torch.no_grad():
        before = float(flossing_loss(net, x, k=4))
    history = neuro.floss(net, steps=30, k=4, lr=3e-2, inputs=x, progress=False)
    with torch.no_grad():
        after = float(flossing_loss(net, x, k=4))
    assert after < 0.93 * before
    assert history["max_exponent"][-1] > history["max_exponent"][0] + 0.05

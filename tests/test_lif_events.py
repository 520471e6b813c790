"""The event-driven batched LIF path (backends/lif_events.py) against the dense step-by-step path."""
import pytest
import torch

import neuro
from lif_specs import lif_spec

@pytest.fixture(autouse=True, params=["sparse products always", "dense products where cheaper"])
def products(request, monkeypatch):
    """Every test runs with the sparse (CSR) products forced at any size and rate, and with the
    defaults (small problems and high rates take the dense product)."""
    from neuro.backends import lif_events
    if request.param == "sparse products always":
        monkeypatch.setattr(lif_events, "DENSE_BELOW", 0)
        monkeypatch.setattr(lif_events, "DENSE_FRACTION", 1.0)
    return request.param


REFRACTORY_SUBTRACT = {"populations[0].neuron.refractory": 2.0, "populations[0].neuron.reset": "subtract"}
SLOW = {"populations[0].neuron.tau_syn_slow": 50.0, "populations[0].neuron.surrogate": "atan"}


def _net(changes, n=200, density=0.3, gain=0.2, dtype=torch.float64):
    spec = lif_spec(**{"populations[0].size": n, "recurrent.density": density, "recurrent.gain": gain,
                       "input.gain": 1.0, **changes})
    return neuro.compile(spec, "lif", neuro.init_weights(spec, 0), dtype=dtype)


def _both(net, x, grad=False):
    """(event-driven, dense) trajectories of the same network and inputs."""
    with torch.set_grad_enabled(grad):
        events = net.run(x)
        net.event_driven = False
        try:
            dense = net.run(x)
        finally:
            net.event_driven = True
    return events, dense


@pytest.mark.parametrize("changes, scale, rate_hz", [
    (REFRACTORY_SUBTRACT, 0.045, (1, 15)),        # a few Hz
    (REFRACTORY_SUBTRACT, 0.2, (40, 120)),
    ({"populations[0].neuron.refractory": 3.0}, 0.08, (10, 60)),     # reset to zero
    (SLOW, 0.05, (150, 500)),
])
@pytest.mark.parametrize("batch", [1, 32])
def test_event_driven_runs_give_the_dense_runs_spikes(changes, scale, rate_hz, batch):
    net = _net({"input.bias": False, **changes})
    x = scale * torch.rand(300, batch, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    events, dense = _both(net, x)
    rate = 1000 * float(dense.spikes.mean())        # dt = 1 ms
    assert rate_hz[0] < rate < rate_hz[1]
    assert torch.equal(events.spikes, dense.spikes)
    torch.testing.assert_close(events.states, dense.states, rtol=0, atol=1e-10)
    torch.testing.assert_close(events.outputs, dense.outputs, rtol=0, atol=1e-12)
    torch.testing.assert_close(events.extra["current"], dense.extra["current"], rtol=0, atol=1e-10)
    if "slow_current" in dense.extra:
        torch.testing.assert_close(events.extra["slow_current"], dense.extra["slow_current"], rtol=0, atol=1e-10)


def test_float32_spikes_match_at_a_cortical_rate():
    """In float32 the sums' order could in principle flip a spike at the threshold; at these sizes none does."""
    net = _net({"input.bias": False, **REFRACTORY_SUBTRACT}, n=500, dtype=torch.float32)
    x = 0.05 * torch.rand(400, 32, 3, generator=torch.Generator().manual_seed(2))
    events, dense = _both(net, x)
    assert 0.002 < float(dense.spikes.mean()) < 0.05
    assert torch.equal(events.spikes, dense.spikes)


@pytest.mark.parametrize("changes", [REFRACTORY_SUBTRACT, {"populations[0].neuron.refractory": 3.0}, SLOW])
@pytest.mark.parametrize("eprop", [False, True])
def test_event_driven_gradients_equal_autograd_through_the_dense_path(changes, eprop):
    """BPTT (and e-prop's truncation: detached recurrent spikes, feedback matrix) through the adjoint
    recurrence of lif_events equals autograd through the step-by-step path, for every parameter and
    for losses on the outputs, voltages, currents and spikes alike."""
    net = _net({"input.bias": True, **changes}, n=40, density=0.5, gain=1.0)
    x = 0.3 * torch.rand(60, 4, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    fb = torch.randn(40, 2, generator=torch.Generator().manual_seed(4), dtype=torch.float64) if eprop else None

    def grads():
        traj = net.run(x, detach_recurrent=eprop, feedback=fb)
        loss = (traj.outputs ** 2).sum() + 0.1 * traj.states.sum() + 0.05 * (traj.spikes * torch.arange(40.)).sum() \
            + 0.01 * (traj.extra["current"] ** 2).sum()
        if "slow_current" in traj.extra:
            loss = loss + 0.02 * traj.extra["slow_current"].sum()
        g = torch.autograd.grad(loss, list(net.trainable().values()))
        return dict(zip(net.trainable(), g)), float(traj.spikes.detach().mean())

    events, rate = grads()
    net.event_driven = False
    dense, _ = grads()
    net.event_driven = True
    assert 0.02 < rate < 0.6
    assert set(events) >= {"W_rec", "W_in", "W_out", "b"}
    for k in dense:
        assert dense[k].abs().max() > 0
        torch.testing.assert_close(events[k], dense[k], rtol=1e-9, atol=1e-11, msg=k)


def test_only_single_networks_from_rest_on_the_cpu_take_the_event_path():
    from neuro.backends import lif_events
    net = _net({})
    x = torch.rand(5, 2, 3, dtype=torch.float64)
    assert lif_events.handles(net, x)
    assert not lif_events.handles(net, x[0])
    net.event_driven = False
    assert not lif_events.handles(net, x)

"""NIR: lossless round trip, and snnTorch as a real client in both directions."""
import numpy as np
import pytest
import torch

import neuro
from lif_specs import lif_spec as shared_lif_spec

pytestmark = pytest.mark.nir


def lif_spec(**changes):
    return shared_lif_spec(**{"populations[0].size": 16, "input.bias": False, **changes})


@pytest.mark.parametrize("changes", [{"input.bias": True}, {"populations[0].neuron.tau_readout": 0.0},
                                     {"dale.enabled": True}])
def test_round_trip_is_lossless_and_spike_exact(tmp_path, changes):
    spec = lif_spec(**changes)
    w = neuro.init_weights(spec, 0)
    net = neuro.compile(spec, "lif", w, dtype=torch.float64)
    neuro.export(net, "nir", tmp_path / "net.nir")
    spec2, w2 = neuro.load_nir(tmp_path / "net.nir")
    assert spec2.dt == spec.dt and spec2.n_hidden == spec.n_hidden
    for k in ("W_in", "W_rec", "W_out", "b_out"):        # bit-exact
        np.testing.assert_array_equal(getattr(w2, k), getattr(net.weights(), k))
    # the voltage bias travels as NIR's v_leak = b / dv: exact to one rounding
    np.testing.assert_allclose(w2.b, net.weights().b, rtol=4e-16, atol=1e-300)
    x = torch.rand(500, 4, 3, dtype=torch.float64)
    a = net.run(x)
    b = neuro.compile(spec2, "lif", w2, dtype=torch.float64).run(x)
    assert a.spikes.mean() > 0.05
    assert torch.equal(a.spikes, b.spikes)
    torch.testing.assert_close(a.outputs, b.outputs, rtol=1e-12, atol=1e-12)


def test_a_graph_exported_by_snntorch_runs_here_with_snntorchs_spikes():
    import snntorch as snn
    from snntorch.export_nir import export_to_nir
    torch.manual_seed(0)
    n, n_in, n_out = 16, 3, 2
    model = torch.nn.Sequential(torch.nn.Linear(n_in, n, bias=False),
                                snn.RSynaptic(alpha=0.8, beta=0.9, linear_features=n, all_to_all=True,
                                              reset_mechanism="zero", init_hidden=True),
                                torch.nn.Linear(n, n_out))
    with torch.no_grad():
        model[0].weight.mul_(4)
        model[1].recurrent.weight.mul_(2)
        model[1].recurrent.bias.zero_()
    graph = export_to_nir(model, torch.rand(1, n_in), ignore_dims=[0])
    spec, w = neuro.load_nir(graph, snntorch_reset_delay=True)
    assert spec.dt == 0.1                       # snnTorch's assumed dt
    # snnTorch's own simulation, explicit states (its default one-step reset delay)
    lif = snn.RSynaptic(alpha=0.8, beta=0.9, linear_features=n, all_to_all=True, reset_mechanism="zero")
    lif.recurrent.load_state_dict(model[1].recurrent.state_dict())
    x = torch.rand(300, 4, n_in)
    spk, syn, mem = lif.init_rsynaptic()
    theirs = []
    with torch.no_grad():
        for t in range(300):
            spk, syn, mem = lif(model[0](x[t]), spk, syn, mem)
            theirs.append(spk)
    theirs = torch.stack(theirs)
    ours = neuro.compile(spec, "lif", w).run(x).spikes.detach()
    assert theirs.mean() > 0.05
    assert torch.equal(theirs, ours)


def test_a_graph_exported_here_gives_the_same_spikes_in_snntorch():
    """snnTorch 1.0.0 + nirtorch 2.0.5 import feed-forward CubaLIF graphs correctly (their recurrent
    subgraph import feeds a constant into the neuron), so the client check is feed-forward."""
    from snntorch.import_nir import import_from_nir
    spec = lif_spec(**{"recurrent.gain": 0.0, "populations[0].neuron.tau_readout": 0.0})
    net = neuro.compile(spec, "lif", neuro.init_weights(spec, 0))
    model = import_from_nir(neuro.export(net, "nir"))
    neuron = next(m for m in model.modules() if type(m).__name__ == "Synaptic")
    recorded = []
    neuron.register_forward_hook(lambda m, i, out: recorded.append(out if torch.is_tensor(out) else out[0]))
    x = torch.rand(300, 4, 3)
    state = None
    with torch.no_grad():
        for t in range(300):
            _, state = model(x[t]) if state is None else model(x[t], state)
    ours = net.run(x).spikes.detach()
    assert ours.mean() > 0.05
    assert torch.equal(torch.stack(recorded), ours)


@pytest.mark.parametrize("changes,feature", [
    ({"populations[0].neuron.reset": "subtract"}, "reset by subtraction"),
    ({"populations[0].neuron.refractory": 2.0}, "refractory"),
    ({"populations[0].neuron.tau_syn_slow": 50.0}, "slow"),
])
def test_what_nir_cannot_express_is_refused_by_name(changes, feature):
    net = neuro.compile(lif_spec(**changes), "lif")
    with pytest.raises(ValueError, match=feature):
        neuro.export(net, "nir")
    with pytest.raises(ValueError, match="rate neurons"):
        neuro.export(neuro.compile(neuro.models.load("romo_rate"), "rate"), "nir")

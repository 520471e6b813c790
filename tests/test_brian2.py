"""Brian2 as the reference simulator: the same LIF network gives the same spikes."""
import pytest
import torch

import neuro
from lif_specs import lif_spec

pytestmark = pytest.mark.brian2


@pytest.mark.parametrize("changes", [{}, {"populations[0].neuron.refractory": 3.0},
                                     {"populations[0].neuron.reset": "subtract"},
                                     {"populations[0].neuron.tau_syn_slow": 40.0}])
def test_brian2_spikes_equal_the_lif_backend(changes):
    spec = lif_spec(**changes)
    net = neuro.compile(spec, "lif", neuro.init_weights(spec, 2), dtype=torch.float64)
    x = torch.rand(500, 2, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    ours = net.run(x).detach()
    theirs = neuro.export(net, "brian2").run(x)        # numpy code generation
    assert ours.spikes.mean() > 0.05
    assert torch.equal(ours.spikes, theirs.spikes)
    # voltages differ only by the order of floating-point sums (Brian2 accumulates synaptic events)
    torch.testing.assert_close(theirs.states, ours.states, rtol=0, atol=1e-9)
    torch.testing.assert_close(theirs.outputs, ours.outputs, rtol=0, atol=1e-9)


def test_rate_networks_are_refused():
    with pytest.raises(ValueError, match="rate neurons"):
        neuro.export(neuro.compile(neuro.models.load("romo_rate"), "rate"), "brian2")

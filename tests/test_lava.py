"""Lava's floating-point simulator gives the LIF backend's spikes exactly."""
import pytest
import torch

import neuro
from lif_specs import lif_spec


@pytest.mark.parametrize("changes", [{}, {"dale.enabled": True, "recurrent.gain": 1.0},
                                     {"recurrent.gain": 0.5, "recurrent.density": 0.3}])
def test_lava_float_spikes_equal_the_lif_backend_over_1000_steps(changes):
    spec = lif_spec(**changes)
    net = neuro.compile(spec, "lif", neuro.init_weights(spec, 3), dtype=torch.float64)
    x = torch.rand(1000, 1, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    ours = net.run(x).detach()
    theirs = neuro.export(net, "lava").run(x)
    assert ours.spikes.mean() > 0.05
    assert torch.equal(ours.spikes, theirs.spikes)
    torch.testing.assert_close(theirs.outputs, ours.outputs, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("changes,feature", [
    ({"populations[0].neuron.reset": "subtract"}, "reset by subtraction"),
    ({"populations[0].neuron.refractory": 2.0}, "refractory"),
    ({"populations[0].neuron.tau_syn_slow": 50.0}, "slow"),
])
def test_what_lava_cannot_express_is_refused_by_name(changes, feature):
    with pytest.raises(ValueError, match=feature):
        neuro.export(neuro.compile(lif_spec(**changes), "lif"), "lava")
    with pytest.raises(ValueError, match="rate neurons"):
        neuro.compile(neuro.models.load("romo_rate"), "lava")

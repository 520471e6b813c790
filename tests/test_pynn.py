"""PyNN export: the network built in PyNN's API, run on PyNN's Brian2 backend against our LIF backend."""
import math
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

import neuro
from lif_specs import lif_spec

pytest.importorskip("pyNN.brian2")


def tonic_net(dt=0.1, dale=True, rec=0.03):
    """10 units, biases giving resting potentials 0.8 … 3 × threshold (tonic rates 0-125 Hz), weak
    recurrent coupling; with Dale's law, excitatory and inhibitory populations."""
    spec = lif_spec(**{"dt": dt, "populations[0].size": 10, "input.bias": True, "recurrent.gain": rec,
                       "populations[0].neuron.tau_readout": 0.0, "populations[0].neuron.tau_mem": 20.0,
                       "dale.enabled": dale})
    w = neuro.init_weights(spec, 0)
    w.b = (1 - math.exp(-dt / 20.0)) * np.linspace(0.8, 3.0, 10)
    return neuro.compile(spec, "lif", w, dtype=torch.float64)


def test_pynn_on_brian2_gives_our_spike_counts_and_spike_times_within_half_a_millisecond():
    """dt = 0.1 ms, 100 ms, E/I populations with recurrent projections (delay = dt): the same spike
    count in every neuron and every spike within 0.5 ms (measured: identical without recurrence, within
    0.3 ms with it; PyNN's synaptic current decays within each step, ours enters v whole)."""
    net = tonic_net()
    x = torch.zeros(1000, 1, 3, dtype=torch.float64)
    ours = net.run(x).spikes.detach()[:, 0].numpy()
    theirs = neuro.export(net, "pynn").run(x).spikes[:, 0].numpy()
    assert ours.sum() >= 5 and (ours.sum(0) > 0).sum() >= 3
    np.testing.assert_array_equal(theirs.sum(0), ours.sum(0))
    for k in range(10):
        t_ours, t_theirs = np.flatnonzero(ours[:, k]), np.flatnonzero(theirs[:, k])
        assert np.abs(t_ours - t_theirs).max(initial=0) * 0.1 <= 0.5


def test_dales_law_gives_excitatory_and_inhibitory_populations_with_our_weights_and_delays():
    net = tonic_net(dt=1.0)
    model = neuro.export(net, "pynn")
    signs = net.weights().signs
    groups = model.groups()
    assert set(groups) == {"exc", "inh"}
    assert (signs[groups["exc"]] > 0).all() and (signs[groups["inh"]] < 0).all()
    W = net.weights().W_rec
    rebuilt = np.zeros_like(W)
    for pre, post, receptor, conns in model.connections():
        assert receptor == ("excitatory" if pre == "exc" else "inhibitory")   # Dale: a neuron's sign is its population's
        for i, j, weight, delay in conns:
            assert delay == 1.0
            rebuilt[groups[post][j], groups[pre][i]] = weight
    np.testing.assert_array_equal(rebuilt, W)
    p = model.cell_parameters()
    assert p["tau_m"] == 20.0 and p["cm"] == pytest.approx(20.0 * (1 - math.exp(-1 / 20)), rel=1e-15)


def test_a_standalone_script_holds_the_network_and_runs_it_to_our_spike_counts(tmp_path):
    net = tonic_net(dt=0.1)
    neuro.export(net, "pynn", tmp_path / "net.py")
    text = (tmp_path / "net.py").read_text()
    assert "sim.IF_curr_exp(**params)" in text and text.count("sim.Projection(") == 4
    assert repr(float(net.weights().W_rec[0, 1])) in text or float(net.weights().W_rec[0, 1]) == 0
    res = subprocess.run([sys.executable, str(tmp_path / "net.py"), "pyNN.brian2", "100"], capture_output=True,
                         text=True, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    counts = dict(re.findall(r"^(\w+): \d+ neurons, (\d+) spikes", res.stdout, re.M))
    ours = net.run(torch.zeros(1000, 1, 3, dtype=torch.float64)).spikes.detach()[:, 0].sum(0).numpy()
    signs = net.weights().signs
    assert ours.sum() >= 5
    assert int(counts["exc"]) == ours[signs > 0].sum() and int(counts["inh"]) == ours[signs < 0].sum()


@pytest.mark.parametrize("changes,feature", [
    ({"populations[0].neuron.reset": "subtract"}, "reset by subtraction"),
    ({"populations[0].neuron.refractory": 2.0}, "refractory"),
    ({"populations[0].neuron.tau_syn_slow": 50.0}, "slow"),
])
def test_what_pynn_cannot_express_is_refused_by_name(changes, feature):
    with pytest.raises(ValueError, match=feature):
        neuro.export(neuro.compile(lif_spec(**changes), "lif"), "pynn")
    with pytest.raises(ValueError, match="rate neurons"):
        neuro.export(neuro.compile(neuro.models.load("romo_rate"), "rate"), "pynn")

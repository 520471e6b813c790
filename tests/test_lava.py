"""Lava export: floating point gives the LIF backend's spikes exactly; fixed point is Loihi's integer
arithmetic (held bit-exact to an independent numpy model here) and stays close to the float run."""
import numpy as np
import pytest
import torch

import neuro
from neuro.backends.lava import loihi_quantization
from lif_specs import lif_spec

pytestmark = pytest.mark.lava

T = 1000


def _inputs(batch, seed=1, steps=T):
    return torch.rand(steps, batch, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


def _lif(changes, seed=3):
    spec = lif_spec(**changes)
    return neuro.compile(spec, "lif", neuro.init_weights(spec, seed), dtype=torch.float64)


# -- floating point: the same spikes ---------------------------------------------------------------

@pytest.mark.parametrize("changes,batch", [
    ({}, 2),                                                            # gain 2, two trials side by side (Sparse)
    ({"dale.enabled": True, "recurrent.gain": 1.0}, 1),                 # Dale's law, one trial (Dense)
    ({"recurrent.gain": 0.5, "recurrent.density": 0.3}, 1),             # weak and sparse
    ({"populations[0].neuron.refractory": 3.0, "recurrent.gain": 1.5}, 2),   # LIFRefractory
])
def test_lava_float_spikes_equal_the_lif_backend_over_1000_steps(changes, batch):
    net = _lif(changes)
    x = _inputs(batch)
    ours = net.run(x).detach()
    theirs = neuro.export(net, "lava", progress=False).run(x)
    assert 0.05 < ours.spikes.mean() < 0.95
    assert torch.equal(ours.spikes, theirs.spikes)
    torch.testing.assert_close(theirs.outputs, ours.outputs, rtol=1e-12, atol=1e-12)


# -- fixed point: Loihi's integers ---------------------------------------------------------------

def _loihi_oracle(q, currents):
    """Loihi's LIF and dense synapse in integers, written from the chip's description (Davies et al.
    2018, IEEE Micro 38(1); Lava's bit-accurate model): 12-bit decays with the current's +1 offset,
    decay x ← sign(x)·(|x|·(4096-d) >> 12), input << 6, 24-bit wrapping current, clipped voltage,
    spike if v > vth << 6, reset to 0; the synapse delivers Σ w·s(t-1) << weight_exp."""
    A = q.input_current(currents).astype(np.int64)                       # [T, n]
    W = q.W_rec_mant.astype(np.int64)
    bias = q.bias_mant.astype(np.int64) << q.bias_exp
    decay = lambda x, d: np.sign(x) * ((np.abs(x) * (4096 - d)) >> 12)
    u = v = np.zeros(W.shape[0], np.int64)
    s = np.zeros(W.shape[0], bool)
    spikes = np.zeros(A.shape, bool)
    for t in range(A.shape[0]):
        a = A[t] + ((W @ s) << q.weight_exp)
        u = decay(u, q.du + 1) + (a << 6)
        u = (u + 2 ** 23) % 2 ** 24 - 2 ** 23
        v = np.clip(decay(v, q.dv) + u + bias, -(2 ** 23 - 1), 2 ** 23 - 1)
        s = v > (q.vth_mant << 6)
        v = np.where(s, 0, v)
        spikes[t] = s
    return spikes.astype(float)


@pytest.mark.parametrize("changes,bits", [({"recurrent.gain": 1.5}, 8), ({"dale.enabled": True}, 5)])
def test_lava_fixed_point_is_loihi_integer_arithmetic_bit_for_bit(changes, bits):
    net = _lif(changes)
    x = _inputs(1, seed=2, steps=400)
    lava = neuro.export(net, "lava", precision="fixed", weight_bits=bits, progress=False)
    theirs = lava.run(x)
    oracle = _loihi_oracle(lava.quantization, (x[:, 0].numpy() @ net.weights().W_in.T))
    assert 0.05 < oracle.mean() < 0.95
    np.testing.assert_array_equal(theirs.spikes[:, 0].numpy(), oracle)


def test_loihi_weights_sit_on_the_8bit_grid_with_the_largest_weight_at_its_top():
    spec = lif_spec()
    w = neuro.init_weights(spec, 0)
    for bits, step in ((8, 2), (4, 32)):          # mixed sign: even mantissas in [-256, 254] at 8 bits
        q = loihi_quantization(spec, w, weight_bits=bits)
        m = q.W_rec_mant
        assert q.sign_mode == "mixed" and q.weight_exp >= 0
        assert np.all(m % step == 0) and m.min() >= -256 and m.max() <= 256 - step
        assert np.abs(m).max() == 256 - step or m.min() == -256
        assert np.abs(q.W_rec - w.W_rec).max() <= 0.5 * step * 2 ** q.weight_exp / q.scale + 1e-12
        assert 256 <= q.vth_mant <= 2 * 256 + 2    # the threshold mantissa aimed at (default 256)
    c = neuro.lif_params.lif_constants(spec.neuron, spec.dt)
    assert abs((q.du + 1) / 4096 - c.du) <= 0.5 / 4096 and abs(q.dv / 4096 - c.dv) <= 0.5 / 4096
    np.testing.assert_allclose(q.bias, w.b, atol=2 ** q.bias_exp.max() / (64 * q.scale))
    excitatory = loihi_quantization(spec, neuro.init_weights(spec.replace(**{"recurrent.gain": 0.0}), 0))
    assert excitatory.sign_mode == "excitatory" and np.all(excitatory.W_rec_mant == 0)


@pytest.mark.parametrize("changes", [{"recurrent.gain": 0.5}, {"dale.enabled": True, "recurrent.gain": 1.0}])
def test_lava_fixed_point_spike_counts_stay_close_to_the_float_run(changes):
    """Loihi's 12-bit decays differ from exp(-dt/τ) by up to 1.2e-4 and the weights by half an 8-bit
    step, so single spikes of this strongly driven network (rate ~0.5/step) shift within the first
    ~10 steps: spike-exactness is impossible and the bound is on what a readout sees.  Measured
    (seed 3, 2 x 1000 steps): per-neuron count correlation 1.0000 and 0.9997, spikes differing in
    0.6% and 2.2% of the neuron-steps, rates within 0.3%."""
    net = _lif(changes)
    x = _inputs(2)
    ours = net.run(x).detach()
    theirs = neuro.export(net, "lava", precision="fixed", progress=False).run(x)
    counts, counts_fixed = ours.spikes.sum(0).flatten().numpy(), theirs.spikes.sum(0).flatten().numpy()
    assert np.corrcoef(counts, counts_fixed)[0, 1] > 0.995
    assert (ours.spikes != theirs.spikes).double().mean() < 0.04
    assert abs(theirs.spikes.mean() / ours.spikes.mean() - 1) < 0.02
    assert (ours.outputs - theirs.outputs).abs().mean() < 0.05 * ours.outputs.abs().mean()


# -- a trained network keeps its accuracy ------------------------------------------------------

def test_an_eprop_trained_network_keeps_its_accuracy_in_lava_float_and_fixed_point():
    """e-prop on the LIF backend (the setup of test_lif.py), 62 held-out 2AF trials in one Lava run
    each.  Measured: 0.855 on the LIF backend, in Lava float (identical spikes) and in fixed point."""
    torch.manual_seed(0)
    spec = neuro.models.load("2af_lif").replace(**{"populations[0].size": 32, "dt": 20.0,
                                                   "populations[0].neuron.tau_syn": 20.0})
    task = neuro.tasks.get("2af", dt=spec.dt)
    net = neuro.compile(spec, "lif", neuro.init_weights(spec, 0))
    neuro.train(net, task, neuro.rules.get("eprop"), iterations=80, lr=1e-2, batch_size=16, progress=False)
    test = task.batch(62, seed=999)
    with torch.no_grad():
        ours = net.run(test.inputs)
    accuracy = task.accuracy(ours.outputs, test)
    lava_float = neuro.export(net, "lava", progress=False).run(test.inputs)
    lava_fixed = neuro.export(net, "lava", precision="fixed", progress=False).run(test.inputs)
    assert accuracy > 0.65
    assert torch.equal(lava_float.spikes, ours.spikes.double())
    assert task.accuracy(lava_float.outputs, test) == accuracy
    assert abs(task.accuracy(lava_fixed.outputs, test) - accuracy) <= 0.05


# -- what Lava cannot express -------------------------------------------------------------------

@pytest.mark.parametrize("changes,precision,feature", [
    ({"populations[0].neuron.reset": "subtract"}, "float", "reset by subtraction"),
    ({"populations[0].neuron.tau_syn_slow": 50.0}, "float", "slow"),
    ({"populations[0].neuron.refractory": 2.0}, "fixed", "refractory period in fixed point"),
])
def test_what_lava_cannot_express_is_refused_by_name(changes, precision, feature):
    with pytest.raises(ValueError, match=feature):
        neuro.export(neuro.compile(lif_spec(**changes), "lif"), "lava", precision=precision)


def test_bad_options_and_rate_networks_are_refused_in_one_line():
    with pytest.raises(ValueError, match="rate neurons"):
        neuro.compile(neuro.models.load("romo_rate"), "lava")
    with pytest.raises(ValueError, match="rate neurons"):
        neuro.export(neuro.compile(neuro.models.load("romo_rate"), "rate"), "lava")
    net = _lif({})
    with pytest.raises(ValueError, match="precision must be one of"):
        neuro.export(net, "lava", precision="half")
    with pytest.raises(ValueError, match=r"weight_bits must be an integer in \[1, 8\]"):
        neuro.export(net, "lava", precision="fixed", weight_bits=12)
    with pytest.raises(ValueError, match="path must be None"):
        neuro.export(net, "lava", "net.lava")

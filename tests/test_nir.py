"""NIR: the standard's continuous-time semantics, lossless round trips, snnTorch's named convention
(snnTorch as a real client in both directions), refusals and bad input."""
import math
import warnings

import h5py
import nir
import numpy as np
import pytest
import torch

import neuro
from lif_specs import lif_spec as shared_lif_spec

pytestmark = pytest.mark.nir


def lif_spec(**changes):
    return shared_lif_spec(**{"populations[0].size": 16, "input.bias": False, **changes})


@pytest.mark.parametrize("convention", ["nir", "snntorch"])
@pytest.mark.parametrize("changes", [{"input.bias": True}, {"populations[0].neuron.tau_readout": 0.0},
                                     {"dale.enabled": True}])
def test_round_trip_is_lossless_and_spike_exact(tmp_path, changes, convention):
    spec = lif_spec(**changes)
    w = neuro.init_weights(spec, 0)
    net = neuro.compile(spec, "lif", w, dtype=torch.float64)
    neuro.export(net, "nir", tmp_path / "net.nir", convention=convention)
    graph = nir.read(str(tmp_path / "net.nir"))
    assert graph.metadata["neuro.convention"] == convention and graph.metadata["neuro.dt_ms"] == spec.dt
    with warnings.catch_warnings():
        warnings.simplefilter("error")        # the metadata names the convention: nothing is guessed
        spec2, w2 = neuro.load_nir(tmp_path / "net.nir")
    assert spec2.dt == spec.dt and spec2.n_hidden == spec.n_hidden
    for k in ("tau_mem", "tau_syn", "tau_readout"):
        assert getattr(spec2.neuron, k) == pytest.approx(getattr(spec.neuron, k), rel=1e-12)
    if convention == "snntorch":      # the weights travel unscaled: bit-exact
        for k in ("W_in", "W_rec", "W_out", "b_out"):
            np.testing.assert_array_equal(getattr(w2, k), getattr(net.weights(), k))
    for k in ("W_in", "W_rec", "W_out", "b_out", "b"):       # the standard's gains: exact to a few roundings
        np.testing.assert_allclose(getattr(w2, k), getattr(net.weights(), k), rtol=1e-14, atol=1e-300)
    x = torch.rand(500, 4, 3, dtype=torch.float64)
    a = net.run(x)
    b = neuro.compile(spec2, "lif", w2, dtype=torch.float64).run(x)
    assert a.spikes.mean() > 0.05
    assert torch.equal(a.spikes, b.spikes)
    torch.testing.assert_close(a.outputs, b.outputs, rtol=1e-10, atol=1e-12)


def standard_graph(n=3, n_in=2, tau_mem=0.02, tau_syn=0.005, v_th=1.0, seed=0, **lif_changes):
    """A CubaLIF graph as the standard writes it: physical τ in seconds, r = w_in = 1."""
    rng = np.random.default_rng(seed)
    lif = dict(tau_syn=np.full(n, tau_syn), tau_mem=np.full(n, tau_mem), r=np.ones(n), v_leak=np.zeros(n),
               v_threshold=np.full(n, v_th), v_reset=np.zeros(n), w_in=np.ones(n))
    lif.update(lif_changes)
    return nir.NIRGraph(nodes={"input": nir.Input(input_type=np.array([n_in])),
                               "w_in": nir.Linear(weight=rng.uniform(0.5, 1.0, (n, n_in))),
                               "lif": nir.CubaLIF(**lif),
                               "w_out": nir.Linear(weight=rng.normal(size=(1, n))),
                               "output": nir.Output(output_type=np.array([1]))},
                        edges=[("input", "w_in"), ("w_in", "lif"), ("lif", "w_out"), ("w_out", "output")])


@pytest.mark.parametrize("dt", [1.0, 0.5])
def test_a_standard_graph_loads_with_its_physical_time_constants_at_any_dt(dt):
    """τ_mem = 20 ms, τ_syn = 5 ms, r = w_in = 1 read at dt = 1 and 0.5 ms: the same time constants,
    and the simulated membrane follows the ODE's closed-form step response
    v(t) = r w_in W x [1 - (τ_m e^(-t/τ_m) - τ_s e^(-t/τ_s)) / (τ_m - τ_s)] to first order in dt
    (exponential Euler: max error 0.0151 at dt = 1, 0.0077 at dt = 0.5, relative to the plateau)."""
    graph = standard_graph(v_th=1e9)                  # subthreshold: the membrane is the ODE's solution
    spec, w = neuro.load_nir(graph, dt=dt)
    assert spec.dt == dt
    assert spec.neuron.tau_mem == pytest.approx(20.0, rel=1e-12)
    assert spec.neuron.tau_syn == pytest.approx(5.0, rel=1e-12)
    assert spec.neuron.reset == "zero" and spec.neuron.refractory == 0.0
    steps = int(round(200 / dt))
    x = torch.ones(steps, 1, 2, dtype=torch.float64)
    v = neuro.compile(spec, "lif", w, dtype=torch.float64).run(x).states[:, 0].detach().numpy()
    plateau = graph.nodes["w_in"].weight @ np.ones(2)                 # r w_in W x
    t = dt * np.arange(1, steps + 1)[:, None]
    exact = plateau * (1 - (20 * np.exp(-t / 20) - 5 * np.exp(-t / 5)) / 15)
    err = np.abs(v - exact).max(axis=0) / plateau
    assert err.max() == pytest.approx(0.0151 * dt, rel=0.03)
    np.testing.assert_allclose(v[-1], exact[-1], rtol=1e-4)


def test_r_and_w_in_scale_the_input_and_v_leak_is_the_resting_potential():
    base_spec, base = neuro.load_nir(standard_graph(), dt=1.0)
    spec, w = neuro.load_nir(standard_graph(r=np.full(3, 2.0), w_in=np.array([1.0, 3.0, 0.5]),
                                            v_leak=np.full(3, 0.25)), dt=1.0)
    np.testing.assert_allclose(w.W_in, np.array([2.0, 6.0, 1.0])[:, None] * base.W_in, rtol=1e-15)
    dv = 1 - math.exp(-1 / 20)
    np.testing.assert_allclose(w.b, dv * 0.25, rtol=1e-15)       # v → v_leak with no input
    assert spec.input.bias


def test_a_standard_graph_without_a_time_step_is_refused_until_dt_is_given():
    with pytest.raises(ValueError, match="pass dt="):
        neuro.load_nir(standard_graph())


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
    with pytest.warns(UserWarning, match="snnTorch's convention"):     # detected by its marks, said aloud
        spec, w = neuro.load_nir(graph, snntorch_reset_delay=True)
    assert spec.dt == 0.1                       # snnTorch's assumed dt
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        spec_named, _ = neuro.load_nir(graph, convention="snntorch", snntorch_reset_delay=True)
    assert spec_named == spec
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
    model = import_from_nir(neuro.export(net, "nir", convention="snntorch"))
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


def test_per_neuron_time_constants_are_refused_by_name():
    with pytest.raises(ValueError, match="per-neuron tau_mem"):
        neuro.load_nir(standard_graph(tau_mem=np.array([0.02, 0.02, 0.03])), dt=1.0)


def _write(path, graph):
    nir.write(str(path), graph)
    return path


@pytest.mark.parametrize("make,message", [
    (lambda p: p.write_text("not a graph") and p, "is not a NIR graph"),
    (lambda p: h5py.File(p, "w").close() or p, "is not a NIR graph"),
    (lambda p: _write(p, standard_graph(tau_syn=np.zeros(3))), "tau_syn must be > 0"),
    (lambda p: _write(p, standard_graph(v_threshold=np.full(3, np.nan))), "v_threshold has non-finite"),
    (lambda p: _write(p, standard_graph(r=np.array([1.0, np.inf, 1.0]))), "r has non-finite"),
    (lambda p: p, "is not a file"),
])
def test_bad_files_give_one_line_errors(tmp_path, make, message):
    path = make(tmp_path / "g.nir")
    with pytest.raises(ValueError, match=message) as err:
        neuro.load_nir(path, dt=1.0)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_weights_are_refused(bad):
    graph = standard_graph()
    graph.nodes["w_in"].weight[1, 0] = bad
    with pytest.raises(ValueError, match="input weight has non-finite"):
        neuro.load_nir(graph, dt=1.0)
    graph = standard_graph()
    graph.nodes["w_out"].weight[0, 2] = bad
    with pytest.raises(ValueError, match="readout weight has non-finite"):
        neuro.load_nir(graph, dt=1.0)

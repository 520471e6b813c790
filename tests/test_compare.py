"""Rate → LIF transfer (Kim, Li & Sejnowski 2019) and ``neuro compare``."""
import json
import math

import numpy as np
import pytest
import torch

import neuro
from neuro.compare import compare, firing_statistics
from neuro.spec import PopulationSpec
from neuro.transfer import choose_scale, rate_to_lif, run_transferred, transferred


def _rate_spec(n=24, n_in=3, n_out=2, gain=0.5):
    spec = neuro.NetworkSpec(dt=20.0, n_inputs=n_in, n_outputs=n_out, populations=[PopulationSpec(size=n)])
    return spec.replace(**{"recurrent.gain": gain})


def test_transferred_spike_rates_track_the_rate_units_under_constant_drive():
    spec = _rate_spec()
    w = neuro.init_weights(spec, 0)
    w.b = np.random.default_rng(1).normal(0, 0.2, 24)      # some units silent, some active
    rate = neuro.compile(spec, "rate", w)
    x = torch.tensor([[0.8, 0.5, -0.3]]).repeat(100, 1, 1)  # 2 s of constant input
    with torch.no_grad():
        r_rate = rate.run(x).rates[25:].mean((0, 1)).numpy()
    lam = 50
    lif_spec, lif_w = rate_to_lif(spec, rate.weights(), lam, lif_dt=1.0)
    assert lif_spec.dt == 1.0 and lif_spec.neuron.model == "lif" and lif_spec.neuron.tau_syn == spec.neuron.tau
    assert lif_spec.neuron.v_th == pytest.approx(1000 / lam)
    lif = neuro.compile(lif_spec, "lif", lif_w)
    with torch.no_grad():
        spikes = lif.run(x.repeat_interleave(20, 0)).spikes[500:]
    hz = spikes.mean((0, 1)).numpy() * 1000          # per neuron, after 500 ms
    r_lif = hz / lam                                  # λ Hz per unit rate
    corr = np.corrcoef(r_rate, r_lif)[0, 1]
    slope = (r_rate @ r_lif) / (r_rate @ r_rate)
    # measured: corr 0.9976, slope 0.963, max |error| 0.038 (rates up to 0.44, i.e. 0-22 Hz)
    assert corr > 0.99
    assert 0.9 < slope < 1.1
    assert np.abs(r_rate - r_lif).max() < 0.08
    assert ((r_rate == 0) == (hz < 1.0)).mean() >= 0.9   # silent rate units are (nearly) silent neurons


@pytest.fixture(scope="module")
def trained_2af():
    torch.manual_seed(0)
    task = neuro.tasks.get("2af", dt=20.0)
    spec = _rate_spec(n=32, n_out=3)
    net = neuro.compile(spec, "rate", neuro.init_weights(spec, 0))
    neuro.train(net, task, neuro.rules.get("bptt"), iterations=500, lr=1e-2, batch_size=32, seed=0, progress=False)
    return net, task


def test_a_trained_rate_network_keeps_its_2af_accuracy_after_transfer(trained_2af):
    net, task = trained_2af
    test = task.batch(200, seed=999)
    with torch.no_grad():
        rate_acc = task.accuracy(net.run(test.inputs).outputs, test)
    best, table = choose_scale(net, task, batch_size=200, seed=999)    # the paper's grid 20..75
    assert sorted(table) == list(range(20, 80, 5)) and best in table
    assert table[best] == max(table.values())
    # measured: rate 0.835; LIF 0.835-0.865 over the grid but 0.715 at its coarsest end (λ = 20),
    # best λ = 35 (0.865).  (Earlier weights from a different float32 summation order: rate 0.745, LIF
    # 0.745-0.78 everywhere.)  How well one λ transfers depends on the network; the grid as a whole holds.
    assert rate_acc > 0.65
    assert abs(table[best] - rate_acc) <= 0.06
    assert np.median(list(table.values())) >= rate_acc - 0.08
    # the paper's readout filter (τ = 100 ms) lags: the outputs track the rate network's less closely
    # (measured MSE 2.32 vs 1.65 at dt = 20 ms; its accuracy cost depends on the network: none here,
    # 0.745 → 0.455-0.60 on an earlier one)
    with torch.no_grad():
        rate_out = net.run(test.inputs).outputs
    mse = lambda tau: float(((run_transferred(transferred(net, best, **tau), test.inputs, 20.0)[1] - rate_out) ** 2)
                            .mean())
    assert mse({"tau_readout": 100.0}) > 1.2 * mse({})


def test_scale_and_model_errors_raise_one_line_value_errors(trained_2af):
    spec = _rate_spec()
    w = neuro.init_weights(spec, 0)
    for bad in (0, -5, float("nan"), float("inf"), True, "50"):
        with pytest.raises(ValueError, match="lambda"):
            rate_to_lif(spec, w, bad)
    with pytest.raises(ValueError, match="negative rates"):
        rate_to_lif(spec.replace(**{"populations[0].neuron.activation": "tanh"}), w, 50)
    with pytest.raises(ValueError, match="whole number"):
        rate_to_lif(spec, w, 50, lif_dt=3.0)
    with pytest.raises(ValueError, match="rate network"):
        rate_to_lif(neuro.models.load("2af_lif"), w, 50)
    with pytest.raises(ValueError, match="not a LIF field"):
        rate_to_lif(spec, w, 50, tau=3.0)
    net, task = trained_2af
    with pytest.raises(ValueError, match="at least one"):
        choose_scale(net, task, lams=[])
    with pytest.raises(ValueError, match="lambda"):
        choose_scale(net, task, lams=[20, -1])


def test_firing_statistics_of_known_spike_trains():
    s = np.zeros((100, 2, 3))
    s[::10, :, 0] = 1          # regular: 10 spikes per 100 steps, ISI 10, CV 0
    s[[3, 4, 20, 60], :, 1] = 1
    mask = np.ones((100, 2))
    f = firing_statistics(s, mask, dt=1.0)
    assert f["mean_rate_hz"] == pytest.approx((10 + 4) / 3 / 100 * 1000)
    assert f["fraction_silent"] == pytest.approx(1 / 3)
    isi1 = np.array([1, 16, 40] * 2)
    assert f["cv_isi"] == pytest.approx((0.0 + isi1.std() / isi1.mean()) / 2)


@pytest.mark.parametrize("rule", ["bptt", "eprop"])
def test_compare_trains_both_variants_and_reports_plausible_numbers(rule):
    spec = neuro.models.load("romo_rate").replace(**{"populations[0].size": 16})
    r = compare(spec, "2af", rule, iterations=40, seed=0, progress=False, batch_size=16, test_trials=32,
                lif_dt=None)      # both at the rate spec's dt (the spiking default is tested below)
    for k in ("rate", "lif"):
        assert 0.0 <= r[k]["accuracy"] <= 1.0
        h = r[k]["history"]
        assert len(h["loss"]) == 40
        assert r[k]["final_loss"] < h["loss"][0]          # both learned something
    assert r["rate"]["neuron"]["model"] == "rate" and r["lif"]["neuron"]["model"] == "lif"
    assert r["lif_lr"] == r["lr"]                              # same step: same learning rate
    assert r["lif"]["neuron"]["tau_syn"] == spec.neuron.tau
    f = r["lif"]["firing"]
    # measured (bptt / eprop): 17.3 / 15.6 Hz, 19 / 25 % silent, CV 1.15 / 0.75; ceiling 1 spike per 20 ms step
    assert 1.0 < f["mean_rate_hz"] <= 50.0
    assert 0.0 <= f["fraction_silent"] < 0.9
    assert f["cv_isi"] is None or 0.0 <= f["cv_isi"] < 2.0
    # measured 0.81 / 0.78: related, far from identical representations
    assert 0.0 < r["procrustes_distance"] < math.pi / 2 - 0.1


def test_compare_user_errors_are_value_errors():
    spec = neuro.models.load("romo_rate").replace(**{"populations[0].size": 8})
    with pytest.raises(ValueError, match="task must be one of"):
        compare(spec, "no_such_task", "bptt", iterations=1, progress=False)
    with pytest.raises(ValueError, match="rule must be one of"):
        compare(spec, "2af", "no_such_rule", iterations=1, progress=False)
    with pytest.raises(ValueError, match="NetworkSpec"):
        compare({"name": "x"}, "2af", "bptt", iterations=1, progress=False)
    slow = neuro.models.load("2af_lif").replace(**{"dt": 200.0, "populations[0].neuron.tau_mem": 200.0,
                                                    "populations[0].neuron.tau_syn": 200.0,
                                                    "populations[0].neuron.tau_readout": 200.0})
    with pytest.raises(ValueError, match="no valid rate variant") as e:
        compare(slow, "2af", "bptt", iterations=1, progress=False)
    assert "\n" not in str(e.value)


def test_the_cli_writes_summary_and_figure(tmp_path, capsys):
    from neuro.cli import main
    out = tmp_path / "cmp"
    rc = main(["compare", "romo_rate", "--task", "2af", "--rule", "eprop", "--iterations", "5", "--seed", "1",
               "--batch-size", "8", "--lif-dt", "0", "--out", str(out), "--no-progress"])
    assert rc == 0
    data = json.loads((out / "summary.json").read_text())
    assert data["rule"] == "eprop" and data["iterations"] == 5
    assert 0 <= data["rate"]["accuracy"] <= 1 and 0 <= data["lif"]["accuracy"] <= 1
    assert data["lif"]["firing"]["mean_rate_hz"] > 0
    assert "| lif |" in (out / "summary.md").read_text()
    assert (out / "compare.png").stat().st_size > 20_000
    assert "test accuracy: rate" in capsys.readouterr().out
    rc = main(["compare", "romo_rate", "--task", "nope", "--out", str(tmp_path / "x"), "--no-progress"])
    assert rc != 0
    assert not (tmp_path / "x" / "summary.json").exists()


def test_held_task_scores_the_last_substep_of_each_step_like_the_task():
    from neuro.compare import HeldTask
    task = neuro.tasks.get("2af", dt=20.0)
    held = HeldTask(task, 4)
    assert held.dt == 5.0 and held.n_inputs == task.n_inputs
    b, hb = task.batch(8, seed=3), held.batch(8, seed=3)
    assert torch.equal(hb.inputs[::4], b.inputs) and torch.equal(hb.inputs[3::4], b.inputs)
    assert torch.equal(hb.mask[1::4], b.mask)
    out = torch.randn(b.inputs.shape[0], 8, task.n_outputs, generator=torch.Generator().manual_seed(0))
    fine = out.repeat_interleave(4, 0)            # outputs constant over the substeps
    assert held.accuracy(fine, hb) == task.accuracy(out, b)
    assert float(held.loss(fine, hb)) == pytest.approx(float(task.loss(out, b)), rel=1e-6)


def test_the_ceiling_and_the_units_near_it():
    from neuro.compare import ceiling_hz, ceiling_statistics
    spec = neuro.models.load("2af_lif")                      # dt 10 ms: at most 100 Hz
    assert ceiling_hz(spec) == 100.0
    assert ceiling_hz(spec.replace(**{"populations[0].neuron.refractory": 20.0})) == 50.0
    s = np.zeros((100, 1, 4))
    s[:, :, 0] = 1                                           # every step: 100 Hz
    s[::2, :, 1] = 1                                         # 50 Hz: not above half the ceiling
    s[::10, :, 2] = 1                                        # 10 Hz
    c = ceiling_statistics(s, np.ones((100, 1)), spec)
    assert c == {"ceiling_hz": 100.0, "max_rate_hz": 100.0, "fraction_near_ceiling": 0.25}


def test_a_rate_spec_is_compared_with_a_lif_variant_at_a_finer_step():
    spec = neuro.models.load("romo_rate").replace(**{"populations[0].size": 8})
    r = compare(spec, "2af", "bptt", iterations=2, seed=0, progress=False, batch_size=4, test_trials=8, lif_dt=10.0)
    assert (r["dt_ms"], r["lif_dt_ms"], r["substeps"]) == (20.0, 10.0, 2)
    assert r["lif_lr"] == pytest.approx(0.03 * r["lr"])      # the finer LIF variant's default learning rate
    lif = r["_nets"]["lif"].spec
    assert lif.dt == 10.0 and lif.neuron.v_th == 1.0        # voltages in units of rate_to_lif's threshold
    assert r["lif"]["firing"]["ceiling_hz"] == 100.0
    assert r["traces"]["lif_spikes"].shape[0] == 2 * r["traces"]["rate_rates"].shape[0]
    # notes name what limits the comparison (here: two iterations do not make a rate network learn 2AF)
    assert all(isinstance(n, str) for n in r["notes"])


def test_the_lif_variants_initial_network_spikes_as_rate_to_lif_maps_it():
    # the variant's weights are rate_to_lif's with voltages in units of its threshold (v_th = 1000/(λ dt)):
    # the same spikes, a surrogate gradient of the same width relative to the threshold as a v_th = 1 spec's
    from neuro.compare import LAM, lif_weights, variants
    from neuro.transfer import rate_to_lif, upsample
    spec = neuro.models.load("romo_rate").replace(**{"populations[0].size": 16, "n_inputs": 3, "n_outputs": 3})
    w = neuro.init_weights(spec, 3)
    w.W_in = w.W_in * 40.0                                     # drive the network into spiking
    rate_spec, lif_spec = variants(spec, 1.0)
    ours = neuro.compile(lif_spec, "lif", lif_weights(spec, rate_spec, lif_spec, w), dtype=torch.float64)
    ref_spec, ref_w = rate_to_lif(rate_spec, w, LAM, 1.0, tau_readout=lif_spec.neuron.tau_readout,
                                  tau_mem=lif_spec.neuron.tau_mem, reset="zero")
    ref = neuro.compile(ref_spec, "lif", ref_w, dtype=torch.float64)
    assert ref_spec.neuron.v_th == pytest.approx(20.0) and lif_spec.neuron.v_th == 1.0
    x = upsample(neuro.tasks.get("2af").batch(4, seed=0).inputs.double(), 20)
    with torch.no_grad():
        a, b = ours.run(x), ref.run(x)
    assert a.spikes.sum() > 100
    assert torch.equal(a.spikes, b.spikes)
    assert torch.allclose(a.outputs, b.outputs, atol=1e-9)


def test_a_variant_that_diverges_is_reported_and_marked(tmp_path):
    from neuro.compare import write_outputs
    spec = neuro.models.load("romo_rate").replace(**{"populations[0].size": 8})
    r = compare(spec, "2af", "bptt", iterations=30, seed=0, progress=False, batch_size=4, test_trials=8,
                lif_dt=None, lr=1e4)
    gone = [k for k in ("rate", "lif") if r[k]["diverged"]]
    assert gone, "an lr of 1e4 should make a variant diverge"
    for k in gone:
        n = len(r[k]["history"]["loss"])
        assert n < 30 and f"the {k} variant diverged after {n} of 30 iterations" in " ".join(r["notes"])
        assert math.isfinite(r[k]["accuracy"])                # evaluated with the last good weights
    write_outputs(r, tmp_path)
    data = json.loads((tmp_path / "summary.json").read_text())
    assert data[gone[0]]["diverged"].startswith(("loss", "weights"))
    rows = (tmp_path / "compare.csv").read_text().splitlines()
    assert rows[0] == "panel,variant,neuron,x,value"
    losses = [r_ for r_ in rows[1:] if r_.startswith(f"loss,{gone[0]},")]
    assert len(losses) == len(data[gone[0]]["history"]["loss"])

"""RLS, FORCE and full-FORCE against oracles: ridge least squares, and learning the authors' targets."""
import numpy as np
import pytest
import torch

import neuro
from neuro.rules.rls import RLS
from neuro.studies import force as study
from neuro.tasks.force_targets import Melody, PulseChirp, Sine, SumOfSines


def test_rls_after_one_pass_equals_ridge_least_squares():
    rng = np.random.default_rng(0)
    n, n_out, samples, alpha = 12, 3, 40, 0.5
    R = rng.normal(size=(samples, n))
    Y = rng.normal(size=(samples, n_out))
    W0 = rng.normal(size=(n_out, n))
    rls, W = RLS(n, alpha), torch.as_tensor(W0)
    for r, y in zip(torch.as_tensor(R), torch.as_tensor(Y)):
        W = rls.step(W, r, W @ r - y)
    # argmin Σ‖W r - y‖² + α‖W - W0‖²  →  W = (Yᵀ R + α W0)(Rᵀ R + α I)⁻¹
    ridge = (Y.T @ R + alpha * W0) @ np.linalg.inv(R.T @ R + alpha * np.eye(n))
    np.testing.assert_allclose(W.numpy(), ridge, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(rls.P.numpy(), np.linalg.inv(R.T @ R + alpha * np.eye(n)), rtol=1e-9, atol=1e-11)


def test_batched_rls_equals_independent_problems():
    rng = np.random.default_rng(1)
    R = torch.as_tensor(rng.normal(size=(3, 20, 5)))         # 3 problems, 20 samples, n = 5
    Y = torch.as_tensor(rng.normal(size=(3, 20, 2)))
    batched, Wb = RLS(5, 2.0, batch_shape=(3,)), torch.zeros(3, 2, 5, dtype=torch.float64)
    for t in range(20):
        Wb = batched.step(Wb, R[:, t], torch.einsum("eij,ej->ei", Wb, R[:, t]) - Y[:, t])
    for e in range(3):
        single, W = RLS(5, 2.0), torch.zeros(2, 5, dtype=torch.float64)
        for t in range(20):
            W = single.step(W, R[e, t], W @ R[e, t] - Y[e, t])
        torch.testing.assert_close(Wb[e], W, rtol=1e-12, atol=1e-12)


@pytest.mark.slow
def test_rate_force_learns_the_sum_of_sines():
    """Sussillo & Abbott 2009: g = 1.5, p = 0.1, dt = 0.1 τ, RLS every 2 steps, P(0) = I, period 120 τ.
    Measured: test NMSE 0.058 (N = 300, 6 periods of learning, output fed back, learning off)."""
    history, _ = study.run_sum_of_sines(300, segments=6, progress=False)
    assert history.loss[0] < 0.01                    # FORCE: z follows f from the first period on
    assert history.test_nmse < 0.15
    np.testing.assert_allclose(history.test_targets[:, 0],
                               SumOfSines(dt=1.0, period=1200.0).signal(np.arange(7200, 9600))[:, 0], atol=1e-12)


@pytest.mark.slow
def test_full_force_learns_the_chirp_with_fewer_units_than_force():
    """DePasquale et al. 2018's demo task at N = 200: full-FORCE learns it (measured error 0.006 % after
    50 trials), FORCE with the same units, updates and trials does not (133 %)."""
    full = study.run_chirp("full_force", 200, trials=40, progress=False, test=2)
    force = study.run_chirp("force", 200, trials=40, progress=False, test=2)
    assert full.test_error_pct < 2.0
    assert force.test_error_pct > 20 * full.test_error_pct


@pytest.mark.slow
def test_spiking_force_follows_a_5hz_sine():
    """Nicola & Clopath 2017's network (double-exponential synapses, v_th 25 mV above reset) at N = 400,
    dt = 0.1 ms: RLS every 2.5 ms brings the training NMSE from about 0.1 to 0.01-0.04 in 2 s."""
    history, net = study.run_spiking_sine(400, dt=0.1, seconds=2.0, progress=False)
    assert history.loss[0] > 0.05
    assert max(history.loss[-3:]) < 0.06
    spec = net.spec
    assert spec.neuron.tau_syn_slow == 20.0 and spec.neuron.tau_syn == 2.0


def test_targets_are_the_papers_signals():
    chirp = PulseChirp(dt=1.0)
    x, f = chirp.segment(0)
    assert x.shape == (2000, 1, 1) and float(x[:50].sum()) == 50 and float(x[50:].sum()) == 0
    # the chirp is its own negated mirror image, and its instantaneous frequency rises 1.5 -> 4.5 Hz
    np.testing.assert_allclose(f[:1000, 0, 0].numpy(), -f[999:1999, 0, 0].numpy()[::-1], atol=1e-5)
    crossings = np.flatnonzero(np.diff(np.sign(f[:, 0, 0].numpy())) != 0)
    assert crossings.size == 11          # φ(½) = 3 cycles per half: 6 half-periods each, the middle one shared
    sine = Sine(dt=0.05, n_steps=4000)
    np.testing.assert_allclose(sine.segment(1)[1][:, 0, 0].numpy(), sine.segment(0)[1][:, 0, 0].numpy(), atol=1e-5)
    melody = Melody(dt=1.0, n_steps=3000)
    y = melody.signal(np.arange(3000.0))
    assert y.shape == (3000, 5) and np.all((y > 0).sum(1) <= 1)    # one note at a time
    assert np.argmax(y[100]) == 2 and np.argmax(y[1700]) == 0       # E first, the C of "C C D E" at 1.6-1.8 s


def test_force_options_are_checked():
    with pytest.raises(ValueError, match="every"):
        neuro.rules.get("force", every=0)
    with pytest.raises(ValueError, match="alpha"):
        RLS(4, alpha=0)
    with pytest.raises(ValueError, match="teacher_gain"):
        neuro.rules.get("full_force", teacher_gain=-1)
    with pytest.raises(ValueError, match="note"):
        Melody(notes="C X")
    spec = study.rate_spec(20).replace(**{"recurrent.density": 0.5})
    net = neuro.compile(spec, "rate", neuro.init_weights(spec, 0))
    with pytest.raises(ValueError, match="density"):
        neuro.rules.get("full_force").fit(net, PulseChirp(), iterations=1, progress=False)


@pytest.mark.slow
def test_spiking_full_force_learns_the_slow_currents_of_a_rate_teacher():
    """DePasquale, Churchland & Abbott 2016: RLS trains the slow (100 ms) recurrent current of 300 LIF
    neurons to carry a τ = 100 ms rate teacher's currents, and the readout a 2 Hz sine.  Measured: training
    NMSE 0.002-0.009 over 10 s, test NMSE with learning off 0.54 (the free-running spiking network drifts)."""
    n = 300
    spec = neuro.NetworkSpec(name="full_force_lif", dt=1.0, n_inputs=1, n_outputs=1, populations=[
        neuro.spec.PopulationSpec(size=n, neuron=neuro.spec.NeuronSpec(
            model="lif", tau_mem=20.0, tau_syn=5.0, tau_syn_slow=100.0, tau_readout=100.0, v_th=1.0,
            refractory=2.0))],
        input=neuro.spec.ConnectionSpec(init="uniform", gain=1.0),
        recurrent=neuro.spec.ConnectionSpec(gain=1e-9, density=1.0), readout=neuro.spec.ConnectionSpec(init="zeros"))
    w = neuro.init_weights(spec, 0)
    w.b = np.full(n, 1.2 * (1 - np.exp(-1 / 20)))          # tonic drive to 1.2 v_th: every neuron fires
    net = neuro.compile(spec, "lif", w, dtype=torch.float64)
    history = neuro.rules.get("full_force", warmup=1, test=2).fit(net, Sine(dt=1.0, n_steps=1000, frequency=2.0),
                                                                  iterations=10, seed=0, progress=False)
    assert max(history.loss) < 0.03
    assert history.test_nmse < 0.8
    assert net.effective()["W_slow"].abs().sum() > 0 and float(net.effective()["W_rec"].detach().abs().max()) < 1e-6

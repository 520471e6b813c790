"""Reward-modulated Hebbian learning (Miconi 2017)."""
import numpy as np
import pytest
import torch

import neuro
from neuro.rules.reward_hebbian import RewardHebbian
from neuro.tasks import envs

EASY_2AF = dict(timing={"fixation": 100, "stimulus": 300, "decision": 100}, cohs=[51.2], sigma=0.1)


def _net(n, dt, n_in=3, n_out=3, seed=0):
    spec = neuro.NetworkSpec(dt=dt, n_inputs=n_in, n_outputs=n_out,
                             populations=[neuro.spec.PopulationSpec(size=n, neuron=neuro.spec.NeuronSpec(
                                 tau=30.0, activation="tanh"))],
                             recurrent=neuro.spec.ConnectionSpec(gain=1.5),
                             readout=neuro.spec.ConnectionSpec(init="uniform", bias=False, trainable=False))
    return neuro.compile(spec, "rate", seed=seed, dtype=torch.float64)


def test_trace_equals_stepwise_miconi_rule():
    """The trace as one matrix product equals Miconi's per-step accumulation
    e_ij += (r_j(t-1) (x_i(t) - x̄_i))³, x̄ ← 0.05 x̄ + 0.95 x, written out independently."""
    net = _net(6, 10.0)
    env = envs.make("2af", 2, dt=10.0, dtype=torch.float64, **EASY_2AF)
    rule = RewardHebbian(trials_per_update=2, perturbation_prob=0.02, greedy=True)
    gen = torch.Generator().manual_seed(1)
    outcome, traces, trials = rule.rollout(net, env, 0, gen)
    # replay the same perturbations: same generator stream, same draws
    gen = torch.Generator().manual_seed(1)
    p = {k: v.detach() for k, v in net.effective().items()}
    W, Win, a = p["W_rec"].numpy(), p["W_in"].numpy(), net.alpha
    prob = 1 - (1 - 0.02) ** 10.0
    x = np.zeros((2, 6))
    x_bar, r_prev = x.copy(), np.tanh(x)
    e = np.zeros((2, 6, 6))
    for t in range(trials.inputs.shape[0]):
        kick = np.zeros((2, 6))
        if t >= 3:
            hit = torch.rand(2, 6, generator=gen, dtype=torch.float64).numpy() < prob
            amp = (2 * torch.rand(2, 6, generator=gen, dtype=torch.float64).numpy() - 1) * 16.0
            kick = hit * amp
        x = a * x + (1 - a) * (r_prev @ W.T + trials.inputs[t].numpy() @ Win.T + kick)
        for b in range(2):
            if t >= 3 and outcome.alive[t, b]:
                for i in range(6):
                    for j in range(6):
                        e[b, i, j] += (r_prev[b, j] * (x[b, i] - x_bar[b, i])) ** 3
        x_bar = 0.05 * x_bar + 0.95 * x
        r_prev = np.tanh(x)
    np.testing.assert_allclose(traces["W_rec"].numpy(), e, rtol=1e-10, atol=1e-14)
    assert np.abs(e).max() > 1e-6


def test_update_is_reward_prediction_error_times_trace_clipped():
    net = _net(4, 10.0)
    rule = RewardHebbian(lr=0.5, max_dw=1e-3)
    W0 = net.effective()["W_rec"].detach().clone()
    e = torch.zeros(2, 4, 4, dtype=torch.float64)
    e[0, 0, 1], e[1, 0, 1], e[0, 2, 3] = 1e-3, 3e-3, 1.0
    rule.update(net, {"W_rec": e}, torch.tensor([1.0, 0.0]), torch.tensor([0.5, 0.5]))
    dW = net.effective()["W_rec"].detach() - W0
    assert float(dW[0, 1]) == pytest.approx(0.5 * (0.5 * 1e-3 - 0.5 * 3e-3) / 2)
    assert float(dW[2, 3]) == pytest.approx(1e-3)          # clipped at max_dw
    assert float(dW.abs().sum()) == pytest.approx(abs(float(dW[0, 1])) + 1e-3)


def test_running_baseline_per_trial_type():
    rule = RewardHebbian()
    r = torch.tensor([1.0, 0.0, 1.0], dtype=torch.float64)
    assert rule._baselines(["a", "b", "a"], r).tolist() == [1.0, 0.0, 1.0]   # first trial: its own reward
    rule._update_baselines(["a", "b"], torch.tensor([1.0, 0.0]))
    rule._update_baselines(["a"], torch.tensor([0.0]))
    assert rule.baselines == {"a": pytest.approx(0.75), "b": 0.0}


def test_learns_2af_well_above_chance():
    """2AF (coherence 51.2 %, dt = 10 ms, 64 tanh units): from chance (about 0.5 of trials
    correct) to >= 0.7 in 2400 trials, exploration by perturbations only (greedy actions)."""
    env = envs.make("2af", 8, dt=10.0, dtype=torch.float64, **EASY_2AF)
    rule = RewardHebbian(lr=1.0, max_dw=3e-3, trials_per_update=8, greedy=True)
    history = rule.fit(_net(64, 10.0), env, iterations=300, seed=0, progress=False)
    c = np.asarray(history.correct)
    assert len(c) == 2400 and len(history.baseline) == 2400
    assert c[:400].mean() < 0.62
    assert c[-800:].mean() >= 0.7
    assert np.isfinite(history.baseline).all()


def test_bad_options():
    with pytest.raises(ValueError, match="exponent must be an odd integer"):
        RewardHebbian(exponent=2)
    with pytest.raises(ValueError, match="plastic must be"):
        RewardHebbian(plastic=("W_in",))
    with pytest.raises(TypeError, match="reward rules need a reward env"):
        RewardHebbian().fit(_net(4, 10.0), neuro.tasks.get("romo"), iterations=1, progress=False)

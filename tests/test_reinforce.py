"""REINFORCE with a value network (Song, Yang & Wang 2017) and the batched reward envs."""
import itertools
import warnings

import numpy as np
import pytest
import torch

import neuro
from neuro.rules.reinforce import Reinforce, value_spec
from neuro.tasks import envs

TINY_TIMING = {"fixation": 100, "stimulus": 100, "decision": 100}   # 3 steps at dt = 100 ms


def _tiny_env(batch):
    return envs.make("2af", batch, dt=100, song=True, timing=TINY_TIMING, cohs=[51.2], sigma=0.0,
                     dtype=torch.float64)


def _tiny_net():
    spec = neuro.NetworkSpec(dt=100, n_inputs=3, n_outputs=3,
                             populations=[neuro.spec.PopulationSpec(size=4, neuron=neuro.spec.NeuronSpec(
                                 tau=200.0, activation="tanh"))],
                             recurrent=neuro.spec.ConnectionSpec(gain=1.5),
                             readout=neuro.spec.ConnectionSpec(init="normal", gain=2.0, bias=True))
    return neuro.compile(spec, "rate", seed=3, dtype=torch.float64)


def test_batched_env_matches_neurogym_step():
    """Rewards and trial ends of ``evaluate`` (all steps at once) and ``step`` equal NeuroGym's own
    ``env.step`` on the same trials under random actions (its abort-free default rules)."""
    import neurogym as ngym
    B = 40
    env = envs.make("2af", B, dt=100, timing={"fixation": 200, "stimulus": 300, "decision": 300})
    env.reset(seed=1)
    tr = env.trials
    actions = torch.as_tensor(np.random.default_rng(0).choice(3, size=tr.ground_truth.shape, p=[0.8, 0.1, 0.1]))
    out = env.evaluate(actions)
    stepped = torch.zeros_like(out.rewards)
    for t in range(actions.shape[0]):
        stepped[t] = env.step(actions[t])[1]
    assert torch.equal(stepped, out.rewards)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = ngym.make("PerceptualDecisionMaking-v0", dt=100,
                        timing={"fixation": 200, "stimulus": 300, "decision": 300}).unwrapped
    ref.seed(0)
    for b in range(B):
        ref.new_trial(**{k: tr.info[b][k] for k in ("ground_truth", "coh")})
        rewards = []
        for t in range(actions.shape[0]):
            _, r, _, _, info = ref.step(int(actions[t, b]))
            rewards.append(r)
            if info["new_trial"]:
                break
        assert len(rewards) - 1 == int(out.end[b])
        np.testing.assert_allclose(rewards, out.rewards[: len(rewards), b].numpy(), atol=1e-7)
    assert out.correct.any() and (~out.correct).any()        # the draw exercises both outcomes


def test_song_rules_abort_on_broken_fixation():
    env = envs.make("xor", 2, dt=100, song=True)
    env.reset(seed=0)
    T = env.trials.inputs.shape[0]
    actions = torch.zeros(T, 2, dtype=torch.long)
    actions[3, 0] = 1                              # breaks fixation during the first delay
    gt = env.trials.ground_truth[-1, 1]
    actions[-1, 1] = gt                            # holds, then answers right on the last step
    out = env.evaluate(actions)
    assert out.total.tolist() == [-1.0, 1.0]
    assert out.aborted.tolist() == [True, False] and out.end.tolist() == [3, T - 1]
    assert out.alive[:, 0].sum() == 4


@pytest.mark.slow
def test_reinforce_gradient_equals_enumerated_expectation():
    """The mean of the estimator (value baseline on) equals ∇J, J = Σ_seq P(seq) R(seq) enumerated
    over all 3³ action sequences of a 3-step trial, within its standard error."""
    net = _tiny_net()
    cond = {"ground_truth": 1, "coh": 51.2}
    env1 = _tiny_env(1)
    tr = env1.draw(seed=0, conditions=[cond])
    T = tr.inputs.shape[0]
    seqs = torch.tensor(list(itertools.product(range(3), repeat=T))).T
    R = env1.evaluate(seqs, env1.draw(seqs.shape[1], seed=0, conditions=[cond] * seqs.shape[1])).total
    logp = torch.log_softmax(net.run(tr.inputs).outputs[:, 0], -1)
    J = (torch.stack([logp[t, seqs[t]] for t in range(T)]).sum(0).exp() * R).sum()
    params = net.trainable()
    exact = dict(zip(params, torch.autograd.grad(J, list(params.values()))))

    rule = Reinforce(value_size=3)
    vnet = rule.value_network(net, 3)
    gen = torch.Generator().manual_seed(0)
    K, B = 48, 500
    env = _tiny_env(B)
    samples = {k: [] for k in params}
    for k in range(K):
        g, vg, _ = rule.gradients(net, vnet, env, seed=k, generator=gen, conditions=[cond] * B)
        for n in params:
            samples[n].append(-g[n])
        assert set(vg) == set(vnet.trainable())
    z = []
    for n in params:
        s = torch.stack(samples[n])
        z.append(((s.mean(0) - exact[n]) / (s.std(0) / K ** 0.5)).flatten())
    z = torch.cat(z)
    assert z.abs().max() < 4.5
    assert 0.5 < float((z ** 2).mean()) < 1.7      # z-scores look like N(0, 1): no bias, right spread
    assert max(float(e.abs().max()) for e in exact.values()) > 0.05   # a gradient worth testing


def test_returns_discount():
    rule = Reinforce(gamma=0.5)
    G = rule.returns(torch.tensor([[0.0], [1.0], [0.0], [2.0]]))
    assert G[:, 0].tolist() == [0.5 + 0.25, 1.0 + 0.5, 1.0, 2.0]


def test_value_spec_reads_rates_and_previous_action():
    net = _tiny_net()
    vs = value_spec(net.spec, 3, size=7)
    assert (vs.n_inputs, vs.n_outputs, vs.n_hidden, vs.dt) == (4 + 3, 1, 7, net.spec.dt)


def test_bad_options_and_sizes():
    with pytest.raises(ValueError, match="trials_per_update must be"):
        Reinforce(trials_per_update=0)
    with pytest.raises(ValueError, match="baseline must be"):
        Reinforce(baseline="critic")
    with pytest.raises(ValueError, match="n_outputs = 3"):
        Reinforce().fit(_tiny_net(), envs.make("context", 1), iterations=1, progress=False)
    with pytest.raises(ValueError, match="reward env must be one of"):
        envs.make("nope")


@pytest.mark.slow
def test_learns_2af_well_above_chance():
    """2AF under Song et al.'s rules (fixate or lose the trial with -1): from chance to >= 0.8 of
    trials correct in 3000 trials (32 tanh units, dt = 50 ms); values track the reward."""
    env = envs.make("2af", 10, dt=50, song=True, timing={"fixation": 100, "stimulus": 300, "decision": 300},
                    cohs=[51.2], sigma=0.1)
    spec = neuro.NetworkSpec(dt=50, n_inputs=3, n_outputs=3,
                             populations=[neuro.spec.PopulationSpec(size=32, neuron=neuro.spec.NeuronSpec(
                                 tau=100.0, activation="tanh", noise_std=0.1))],
                             readout=neuro.spec.ConnectionSpec(init="uniform", bias=True))
    history = Reinforce(value_size=32).fit(neuro.compile(spec, "rate", seed=0), env, iterations=300, seed=0,
                                           progress=False)
    c = np.asarray(history.correct)
    assert c[:500].mean() < 0.6 and c[-500:].mean() >= 0.8
    v, r = np.asarray(history.value[-500:]), np.asarray(history.reward[-500:])
    assert abs(v.mean() - r.mean()) < 0.25           # the value before the outcome predicts the reward

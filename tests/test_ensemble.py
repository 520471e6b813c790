"""Ensembles: E networks trained as one batched model equal each trained alone."""
import numpy as np
import pytest
import torch

import neuro
from neuro.ensemble import train_ensemble

MEMBERS = [
    {"seed": 0, "lr": 1e-3, "overrides": {"recurrent.gain": 0.2}},
    {"seed": 1, "lr": 3e-3, "overrides": {"recurrent.gain": 1.0}},
    {"seed": 2, "lr": 1e-2, "overrides": {"recurrent.gain": 1.5, "recurrent.density": 0.5}},
]


@pytest.mark.parametrize("rule", [{"name": "bptt"}, {"name": "eprop"}, {"name": "eprop", "form": "trace"}])
def test_ensemble_equals_members_trained_alone(rule):
    spec = neuro.models.load("romo_rate").replace(**{"populations[0].size": 16,
                                                     "populations[0].neuron.noise_std": 0.1})
    task = neuro.tasks.get("romo")
    res = train_ensemble(spec, task, neuro.rules.get(**rule), MEMBERS, iterations=12, batch_size=4,
                         dtype=torch.float64, progress=False)
    for e, m in enumerate(MEMBERS):
        s = spec.replace(**m["overrides"])
        net = neuro.compile(s, "rate", neuro.init_weights(s, m["seed"]), dtype=torch.float64)
        alone = neuro.train(net, task, neuro.rules.get(**rule), iterations=12, lr=m["lr"], batch_size=4,
                            seed=m["seed"], progress=False)
        np.testing.assert_allclose(res.histories[e].loss, alone.loss, rtol=1e-9, atol=1e-12)
        assert res.histories[e].accuracy == alone.accuracy
        trained = res.weights(e)
        for k in ("W_in", "W_rec", "W_out", "b_out"):
            np.testing.assert_allclose(getattr(trained, k), getattr(net.weights(), k), rtol=1e-9, atol=1e-12)


def test_a_diverging_member_is_frozen_and_the_others_train_on():
    spec = neuro.models.load("romo_rate").replace(**{"populations[0].size": 16})
    members = [{"seed": 0, "lr": 1e-3}, {"seed": 1, "lr": 1e7}]
    with pytest.warns(RuntimeWarning, match=r"1 of 2 members diverged \(member 1: loss became non-finite"):
        res = train_ensemble(spec, neuro.tasks.get("romo"), "bptt", members, iterations=30, batch_size=4,
                             progress=False)
    assert res.diverged == [False, True]
    assert len(res.histories[0]) == 30 and len(res.histories[1]) < 30
    assert all(np.isfinite(res.weights(1).W_rec).ravel())


def test_members_that_change_the_dynamics_are_refused():
    spec = neuro.models.load("romo_rate")
    with pytest.raises(ValueError, match="changes the dynamics"):
        train_ensemble(spec, neuro.tasks.get("romo"), "bptt",
                       [{"seed": 0, "overrides": {"populations[0].neuron.tau": 200.0}}], iterations=1, progress=False)
    with pytest.raises(ValueError, match="must agree on trainable/bias"):
        train_ensemble(spec, neuro.tasks.get("romo"), "bptt",
                       [{"seed": 0}, {"seed": 2, "overrides": {"readout.bias": False}}], iterations=1, progress=False)


def test_from_members_refuses_members_of_different_shapes():
    spec = neuro.models.load("romo_rate").replace(**{"populations[0].size": 8})
    with pytest.raises(ValueError, match="must share shapes; override 'populations\\[0\\].size'"):
        neuro.Ensemble.from_members(spec, [{"seed": 0}, {"seed": 1, "overrides": {"populations[0].size": 16}}],
                                    torch.float64, "cpu")
    small = neuro.init_weights(spec, 0)
    big = neuro.init_weights(spec.replace(**{"populations[0].size": 9}), 0)
    from neuro.ensemble import Member
    with pytest.raises(ValueError, match="must share shapes; W_in has shapes"):
        neuro.Ensemble.from_members(spec, [Member(weights=small), Member(weights=big)], torch.float64, "cpu")
    ens = neuro.Ensemble.from_members(spec, MEMBERS[:2], torch.float64, "cpu")
    assert ens.net.W_rec.shape == (2, 8, 8)
    # member e's weights are init_weights(spec with its overrides, its seed)
    np.testing.assert_array_equal(ens.weights(1).W_rec,
                                  neuro.init_weights(spec.replace(**{"recurrent.gain": 1.0}), 1).W_rec)


class _Interrupt(Exception):
    pass


class _StopAt:
    """A task that raises when asked for iteration ``stop``'s batch: a crash mid-training."""

    def __init__(self, task, stop):
        self.task, self.stop = task, stop

    def member_batches(self, batch_size, seeds, dtype=torch.float32):
        if seeds[0][1] == self.stop:
            raise _Interrupt
        return self.task.member_batches(batch_size, seeds, dtype=dtype)

    def __getattr__(self, name):
        return getattr(self.task, name)


def test_a_resumed_ensemble_equals_an_uninterrupted_one(tmp_path):
    """Weights, Adam moments and each member's noise generator come back from the checkpoint."""
    spec = neuro.models.load("romo_rate").replace(**{"populations[0].size": 8, "populations[0].neuron.noise_std": 0.2})
    task = neuro.tasks.get("romo")
    kw = dict(iterations=9, batch_size=3, dtype=torch.float64, progress=False)
    whole = train_ensemble(spec, task, "bptt", MEMBERS[:2], **kw)
    with pytest.raises(_Interrupt):
        train_ensemble(spec, _StopAt(task, 7), "bptt", MEMBERS[:2], run_dir=tmp_path, checkpoint_every=3, **kw)
    assert torch.load(tmp_path / "ensemble.pt", weights_only=False)["iteration"] == 6
    resumed = train_ensemble(spec, task, "bptt", MEMBERS[:2], run_dir=tmp_path, checkpoint_every=3, **kw)
    for e in range(2):
        assert resumed.histories[e].iteration == list(range(9))
        np.testing.assert_array_equal(resumed.histories[e].loss, whole.histories[e].loss)
        np.testing.assert_array_equal(resumed.weights(e).W_rec, whole.weights(e).W_rec)
    with pytest.raises(ValueError, match="holds a different ensemble"):
        train_ensemble(spec, task, "bptt", MEMBERS[1:], run_dir=tmp_path, **kw)


def test_perturbation_rules_in_an_ensemble_do_not_depend_on_the_global_random_state():
    """NP draws its perturbations from a generator seeded by the members and the iteration."""
    spec = neuro.models.load("romo_rate").replace(**{"populations[0].size": 16})
    task = neuro.tasks.get("romo")
    members = [{"seed": s, "lr": 1e-3} for s in (0, 1)]
    results = []
    for global_seed in (1, 2):
        torch.manual_seed(global_seed)
        res = neuro.train_ensemble(spec, task, "np", members, iterations=3, batch_size=4, progress=False)
        results.append(res.network(0).effective()["W_rec"].detach().clone())
    torch.testing.assert_close(results[0], results[1], rtol=0, atol=0)

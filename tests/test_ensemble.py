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

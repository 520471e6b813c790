"""Reservoir (readout-only RLS) and Laje & Buonomano's innate training, on the rate backend."""
import numpy as np
import pytest
import torch

import neuro
from neuro.studies.force import depasquale_weights, rate_spec
from neuro.tasks.force_targets import PulseChirp


def test_reservoir_readout_is_ridge_regression_of_the_targets_on_the_rates():
    spec = neuro.models.load("romo_rate").replace(**{"populations[0].size": 40})
    net = neuro.compile(spec, "rate", neuro.init_weights(spec, 0), dtype=torch.float64)
    task = neuro.tasks.get("romo")
    W0, b_out = net.effective()["W_out"].detach().numpy().copy(), net.effective()["b_out"].detach().numpy()
    neuro.rules.get("reservoir", alpha=0.5, batch_size=4).fit(net, task, iterations=1, seed=3, progress=False)
    batch = task.batch(4, seed=3 * 1_000_003, dtype=torch.float64)       # the batch the rule learned from
    spec_fresh = neuro.compile(spec, "rate", neuro.init_weights(spec, 0), dtype=torch.float64)
    with torch.no_grad():
        rates = spec_fresh.run(batch.inputs).rates.numpy()
    keep = batch.mask.numpy() > 0
    R = rates[keep]
    Y = batch.targets.numpy()[keep] - b_out                              # Romo: regression targets
    ridge = (Y.T @ R + 0.5 * W0) @ np.linalg.inv(R.T @ R + 0.5 * np.eye(40))
    np.testing.assert_allclose(net.effective()["W_out"].detach().numpy(), ridge, rtol=1e-6, atol=1e-8)


@pytest.mark.slow
def test_reservoir_learns_2af_above_chance():
    """A fixed g = 1.5 ReLU network with an RLS readout: measured 0.38 -> 1.0 on 8-trial batches."""
    task = neuro.tasks.get("2af")
    spec = neuro.models.load("romo_rate").replace(**{"populations[0].size": 100, "recurrent.gain": 1.5,
                                                      "n_inputs": task.n_inputs, "n_outputs": task.n_outputs})
    net = neuro.compile(spec, "rate", neuro.init_weights(spec, 0), dtype=torch.float64)
    test = task.batch(128, seed=12345, dtype=torch.float64)
    with torch.no_grad():
        untrained = task.accuracy(net.run(test.inputs).outputs, test)
    neuro.train(net, task, neuro.rules.get("reservoir", batch_size=8), iterations=8, seed=0, progress=False)
    with torch.no_grad():
        trained = task.accuracy(net.run(test.inputs).outputs, test)
    assert untrained < 0.65 and trained > 0.85


@pytest.mark.slow
def test_innate_training_makes_the_chaotic_transient_reproducible():
    """Laje & Buonomano 2013: after RLS on the recurrent weights, noisy runs from perturbed states stay on
    the innate trajectory (measured: mean squared distance 0.40 -> 0.017); the readout then learns the chirp
    (1 - NMSE 0.93 on its third trial)."""
    spec = rate_spec(200, density=1.0, input_gain=1.0)
    net = neuro.compile(spec, "rate", depasquale_weights(spec, 0), dtype=torch.float64)
    task = PulseChirp(dt=1.0, trial_ms=1000.0)
    rule = neuro.rules.get("innate", readout_iterations=3)
    x = task.batch(1, seed=0, dtype=torch.float64).inputs[:, 0]
    history = rule.fit(net, task, iterations=15, seed=0, progress=False)
    innate = torch.as_tensor(history.innate)

    def distance(params):
        gen = torch.Generator().manual_seed(99)
        runs = [rule.perturbed_run(net, x, history.h0, gen, params) for _ in range(3)]
        return float(torch.stack([((r - innate) ** 2).mean() for r in runs]).mean())

    before = neuro.compile(spec, "rate", depasquale_weights(spec, 0), dtype=torch.float64)
    chaotic = distance(dict(before.effective()))
    trained = distance(dict(net.effective()))
    assert trained < chaotic / 10
    assert history.accuracy[-1] > 0.8          # 1 - NMSE of the chirp readout, before its last update


def test_innate_and_reservoir_options_are_checked():
    with pytest.raises(ValueError, match="alpha"):
        neuro.rules.get("reservoir", alpha=0)
    with pytest.raises(ValueError, match="every"):
        neuro.rules.get("innate", every=0)
    spec = neuro.models.load("2af_lif")
    net = neuro.compile(spec, "lif", neuro.init_weights(spec, 0))
    with pytest.raises(ValueError, match="^rule 'innate' needs the leaky rate map; backend 'lif' does not provide it$"):
        neuro.rules.get("innate").fit(net, PulseChirp(), iterations=1, progress=False)

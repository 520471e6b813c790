"""neuro.train: reproducible, learns, stops clearly on NaN, resumes from its run folder."""
import math

import numpy as np
import pytest
import torch

import neuro


def _setup(seed=0, **changes):
    spec = neuro.models.load("romo_rate").replace(**{"populations[0].size": 32, **changes})
    return neuro.compile(spec, "rate", neuro.init_weights(spec, seed)), neuro.tasks.get("romo")


@pytest.mark.parametrize("rule", ["bptt", "eprop"])
def test_same_seed_gives_identical_loss_history(rule):
    histories = []
    for _ in range(2):
        net, task = _setup(**{"populations[0].neuron.noise_std": 0.1})
        histories.append(neuro.train(net, task, neuro.rules.get(rule), iterations=8, lr=1e-2, batch_size=8,
                                     seed=5, progress=False).loss)
    assert histories[0] == histories[1]
    net, task = _setup(**{"populations[0].neuron.noise_std": 0.1})
    other = neuro.train(net, task, neuro.rules.get(rule), iterations=8, lr=1e-2, batch_size=8, seed=6,
                        progress=False).loss
    assert other != histories[0]


def test_training_reduces_romo_loss():
    net, task = _setup(**{"populations[0].size": 64})
    h = neuro.train(net, task, neuro.rules.get("bptt"), iterations=80, lr=3e-3, batch_size=16, progress=False)
    assert np.mean(h.loss[-5:]) < 0.6 * np.mean(h.loss[:5])


def test_nan_loss_stops_with_clear_error_and_keeps_last_good_weights(tmp_path):
    net, task = _setup()
    with pytest.raises(neuro.TrainingError, match="non-finite at iteration"):
        neuro.train(net, task, neuro.rules.get("bptt"), iterations=200, lr=1e6, batch_size=4,
                    run_dir=tmp_path, progress=False)
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v is not None)
    assert all(torch.isfinite(p).all() for p in net.parameters())
    assert all(math.isfinite(x) for x in state["history"]["loss"])


def test_rerun_resumes_from_checkpoint(tmp_path):
    net, task = _setup()
    full = neuro.train(net, task, neuro.rules.get("eprop"), iterations=10, lr=1e-2, batch_size=4, seed=1,
                       progress=False).loss
    net, task = _setup()
    neuro.train(net, task, neuro.rules.get("eprop"), iterations=6, lr=1e-2, batch_size=4, seed=1,
                run_dir=tmp_path, progress=False)
    net, task = _setup()   # fresh weights: the checkpoint must restore the trained ones
    resumed = neuro.train(net, task, neuro.rules.get("eprop"), iterations=10, lr=1e-2, batch_size=4, seed=1,
                          run_dir=tmp_path, progress=False).loss
    np.testing.assert_allclose(resumed, full, rtol=1e-5)
    assert (tmp_path / "history.csv").read_text().count("\n") == 11


def test_bad_arguments_are_refused():
    net, task = _setup()
    with pytest.raises(ValueError, match="lr must be"):
        neuro.train(net, task, neuro.rules.get("bptt"), iterations=1, lr=-1.0, progress=False)
    with pytest.raises(ValueError, match="iterations must be"):
        neuro.train(net, task, neuro.rules.get("bptt"), iterations=-3, progress=False)

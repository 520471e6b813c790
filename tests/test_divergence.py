"""What "diverged" means for an ensemble member: a non-finite loss, or a final loss far above the start."""
import math

import pytest

import neuro
from neuro.ensemble import DIVERGENCE_FACTOR, EnsembleResult, divergence


def _history(losses):
    h = neuro.History()
    for i, v in enumerate(losses):
        h.append(i, v, math.nan)
    return h


def test_a_loss_that_ends_far_above_its_start_diverged():
    flat = _history([1.0] * 30)
    learned = _history([1.0] * 10 + [0.1] * 20)
    exploded = _history([1.0] * 10 + [3.4e6] * 20)         # seen in a gain sweep: reported as not diverged
    just_below = _history([2.0] * 10 + [DIVERGENCE_FACTOR * 2.0 * 0.99] * 20)
    assert divergence(flat) is None and divergence(learned) is None and divergence(just_below) is None
    assert "3.4e+06 > 100 x the starting loss 1" in divergence(exploded)
    assert "non-finite" in divergence(_history([1.0, 2.0]), nonfinite=True)
    # a run that starts exploded is measured against a silent readout's loss (ln 2 for two classes)
    started_exploded = _history([1e26] * 10 + [2.9e26] * 20)
    assert divergence(started_exploded) is None
    assert "silent readout 0.693" in divergence(started_exploded, silent_loss=math.log(2))


def test_ensemble_results_report_both_kinds():
    hs = [_history([1.0] * 30), _history([1.0] * 10 + [1e8] * 20), _history([1.0] * 3)]
    r = EnsembleResult(hs, ensemble=None, nonfinite=[False, False, True])
    assert r.diverged == [False, True, True]
    assert r.reasons[0] is None and "1e+08" in r.reasons[1] and "non-finite" in r.reasons[2]


def test_train_ensemble_reports_an_exploding_member():
    spec = neuro.models.load("romo_rate").replace(**{"populations[0].size": 16})
    task = neuro.tasks.get("romo", dt=spec.dt)
    # ReLU at g = 4 explodes in the forward pass: a finite loss of ~1e26 that training does not freeze
    members = [{"seed": 0, "lr": 1e-3}, {"seed": 0, "lr": 3.0, "overrides": {"recurrent.gain": 4.0}}]
    with pytest.warns(RuntimeWarning, match="1 of 2 members diverged"):
        res = neuro.train_ensemble(spec, task, "bptt", members, iterations=30, batch_size=4, progress=False)
    assert res.diverged == [False, True] and res.nonfinite == [False, False]
    assert res.histories[1].loss[-1] > 1e6
    # the reference: Romo is a regression, so zero outputs score the masked mean of the squared targets
    b = task.batch(4, seed=(0, 0))
    expected = float(((b.targets ** 2).mean(-1) * b.mask).sum() / b.mask.sum())
    assert res.silent_loss == pytest.approx(expected, rel=1e-5)

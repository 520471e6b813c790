"""Tasks: structure of the trials they generate, and scores that are right on known outputs."""
import numpy as np
import pytest
import torch

import neuro


def test_romo_trials_follow_schuessler_timing():
    task = neuro.tasks.get("romo", dt=20.0, tau=100.0)
    assert task.n_steps == 140          # (3 + 1 + 8 + 1 + 5 + 10) τ / dt
    b = task.batch(64, seed=0)
    f1, f2 = b.info["f1"], b.info["f2"]
    assert np.all(np.abs(f1 - f2) >= 0.2) and np.all((0.5 <= f1) & (f1 <= 1.5))
    x = b.inputs[:, :, 0].numpy()
    np.testing.assert_allclose(x[15:20], np.broadcast_to(f1, (5, 64)))    # stimulus 1 at 3τ..4τ
    assert np.all(x[:15] == 0)
    for i in range(64):
        window = b.info["decision"][:, i]
        assert window.sum() == 50                                      # 10 τ
        winner = 0 if f1[i] > f2[i] else 1
        assert np.all(b.targets[window, i, winner].numpy() == 0.5)
        assert np.all(b.targets[window, i, 1 - winner].numpy() == 0)
        stim2_end = np.nonzero(x[:, i])[0].max() + 1
        m = b.mask[:, i].numpy()
        assert np.all(m[:stim2_end] == 1) and np.all(m[stim2_end:stim2_end + 25] == 0)   # delay unscored


def test_romo_scores_perfect_and_wrong_outputs():
    task = neuro.tasks.get("romo")
    b = task.batch(16, seed=1)
    assert task.accuracy(b.targets, b) == 1.0
    assert task.accuracy(b.targets.flip(-1), b) == 0.0
    assert task.loss(b.targets, b).item() == 0.0
    assert task.normalized_accuracy(b.targets, b) == pytest.approx(1.0)
    # predicting the targets' mean gives NMSE 1 -> normalized accuracy 0
    mean = (b.targets * b.mask[..., None]).sum((0, 1)) / b.mask.sum()
    assert task.normalized_accuracy(mean.expand_as(b.targets).clone(), b) == pytest.approx(0.0, abs=1e-6)


def test_batches_are_reproducible():
    task = neuro.tasks.get("romo")
    torch.testing.assert_close(task.batch(8, seed=3).inputs, task.batch(8, seed=3).inputs)
    assert not torch.equal(task.batch(8, seed=3).inputs, task.batch(8, seed=4).inputs)


@pytest.mark.parametrize("name,n_in,n_out,steps", [("2af", 3, 3, 110), ("dms", 3, 3, 160), ("context", 7, 3, 34)])
def test_neurogym_adapters(name, n_in, n_out, steps):
    task = neuro.tasks.get(name)
    b = task.batch(6, seed=0)
    assert b.inputs.shape == (steps, 6, n_in) and b.targets.shape == (steps, 6)
    assert (task.n_inputs, task.n_outputs) == (n_in, n_out)
    torch.testing.assert_close(b.inputs, task.batch(6, seed=0).inputs)
    onehot = torch.nn.functional.one_hot(b.targets, n_out).float() * 50.0
    assert task.accuracy(onehot, b) == 1.0
    assert task.normalized_accuracy(onehot, b) == pytest.approx(1.0, abs=1e-6)
    wrong = torch.roll(onehot, 1, dims=-1)
    assert task.accuracy(wrong, b) == 0.0


@pytest.mark.parametrize("name", ["2af", "dms"])
@pytest.mark.parametrize("dt,timing", [(100.0, None), (30.0, None), (20.0, {"delay": 200})])
def test_batched_replica_is_bit_identical_to_neurogym(name, dt, timing):
    """PerceptualDecisionMaking and DelayMatchSample are drawn as a batch by a replica of their
    ``new_trial``; the trials must be NeuroGym's own, bit for bit (noise included)."""
    task = neuro.tasks.get(name, dt=dt, **({"timing": timing} if timing else {}))
    x, y, mask, info = task.trials(7, np.random.default_rng(11))
    env = task.env
    env.seed(int(np.random.default_rng(11).integers(2**31 - 1)))
    for b in range(7):
        trial = env.new_trial()
        np.testing.assert_array_equal(x[:, b], env.ob.astype(float))
        np.testing.assert_array_equal(y[:, b], env.gt)
        assert set(trial) == set(info["trials"][b])
        for k in trial:
            np.testing.assert_array_equal(trial[k], info["trials"][b][k])
    assert mask.all() and (info["last"] == len(env.gt) - 1).all()


def test_variable_timing_falls_back_to_neurogym():
    """A period drawn from a distribution has no replica: the trials (of unequal length) come from NeuroGym."""
    task = neuro.tasks.get("2af", dt=100.0, timing={"stimulus": ("choice", [500, 1000])})
    x, y, mask, info = task.trials(6, np.random.default_rng(2))
    lengths = info["last"] + 1
    assert set(lengths) == {7, 12}
    assert (mask.sum(0) == lengths).all()


def test_unknown_task_is_clear():
    with pytest.raises(ValueError, match="task must be one of"):
        neuro.tasks.get("mnist")


def test_making_a_neurogym_task_or_env_prints_no_third_party_warning():
    """gymnasium warns on every make() that NeuroGym's metadata lacks render_modes: noise a user cannot act on."""
    import warnings
    from neuro.tasks import envs
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        neuro.tasks.get("2af").batch(2, seed=0)
        envs.make("2af", 1)
    assert [str(w.message) for w in seen] == []

"""The similarity study end to end on a toy scale: every claim against every reference, the
robustness table, the figures; scales, snapshots, the teacher, and a user's recording."""
import numpy as np
import pytest

from neuro.similarity import procrustes_distance
from neuro.standins import StandInConfig


def _toy(**kw):
    from neuro.studies import similarity as study
    base = dict(tasks=["context"], rules=["bptt", "eprop"], dale_rules=["bptt", "modprop"], seeds=2,
                n_hidden={"context": 8, "reaching": 8}, teacher_hidden={"context": 10, "reaching": 10},
                iterations={"context": 4, "reaching": 3}, teacher_iterations={"context": 3, "reaching": 2},
                gains=[1.0, 2.0], lrs=[1e-3, 1e-4], snapshots=3, context_trials=12, noise_floor_repeats=2,
                batch_size=4, reaching_dt=40.0, teacher_rule=None, dsa={"n_delays": 3, "rank": 4, "iters": 20},
                standin=StandInConfig(n_neurons=6, trials=3, force_units=12,
                                      force_segments={"context": 3, "reaching": 2}))
    base.update(kw)
    return study.Config(**base)


def _mante_layout_file(path):
    """A recording in the README's layout for the context task: [72 conditions, time, neurons] stored as
    [neurons, time, conditions] under key 'psth' in a .mat, 25 ms bins from -350 ms (stimulus onset = 0)."""
    from scipy.io import savemat
    rng = np.random.default_rng(0)
    times = -350 + 25 * np.arange(67)                                 # -350 .. 1300 ms
    latent = np.stack([np.sin(times / 300.0 + k) for k in range(3)], -1)
    act = 10 + rng.normal(size=(72, 1, 3)) * latent[None] @ rng.normal(size=(3, 9)) + rng.random((72, 67, 9))
    savemat(path, {"psth": act.transpose(2, 1, 0), "unit_names": np.array(["a"] * 9)})
    return act


def test_similarity_study_tests_every_claim_against_every_reference(tmp_path):
    import neuro
    from neuro.studies import similarity as study
    _mante_layout_file(tmp_path / "mante.mat")
    args = _args(tmp_path / "mante.mat", tasks=["context"], data_task="context", data_key="psth", data_axes="ntc",
                 data_dt=25, data_t0=-350, data_events="stimulus=0,delay=750,decision=1050")
    recording = study.load(args)
    assert recording.shape == (72, 67, 9) and recording.events["decision"] == 1050.0
    cfg = _toy(teacher_rule="bptt")
    res = study.study(cfg, tmp_path / "run", data={"context": recording}, progress=False)
    tmp_path = tmp_path / "run"
    for f in ("claims.md", "claims.csv", "robustness.csv", "summary.csv", "distance_vs_accuracy_context.png",
              "eigenspectrum_context.png"):
        assert (tmp_path / f).exists(), f
    refs = [r.name for r in res["references"]["context"]]
    assert refs == ["force", "line_attractor", "teacher-bptt", "recording"]
    # the recording, aligned by its events: task time 350 ms (stimulus) is its 0 ms, i.e. bin 14
    aligned = res["references"]["context"][3].activity
    assert aligned.shape == (72, 34, 9)
    np.testing.assert_allclose(aligned[:, 7], recording.activity[:, 14])
    # bptt: default + gain 2 + lr 1e-4 = 3 members; eprop: default + gain 2; dale: bptt, modprop;
    # 2 seeds, 3 snapshots, 4 references
    assert len(res["rows"]) == 2 * 3 * 4 * (3 + 2 + 1 + 1)
    assert all(0 <= r["distance"] <= np.pi / 2 and 0 <= r["accuracy"] <= 1 for r in res["rows"])
    per_ref = {}
    for c in res["claims"]:
        per_ref.setdefault((c["claim"], c["subject"]), set()).add(c["reference"])
        assert c["label"] in ("held", "not held", "inconclusive", "not testable")
    for key, found in per_ref.items():
        assert found == ({"(models only)"} if key[0] == "3b" else set(refs)), key
    assert {k[0] for k in per_ref} >= {"1", "2", "3a", "3b", "5", "6", "7"}
    # claim 7 (DSA) is the paired equivalence test of e-prop's and BPTT's DSA distances, per seed in dsa.csv
    import csv
    dsa = list(csv.DictReader(open(tmp_path / "dsa.csv")))
    assert len(dsa) == 2 * 2 * len(refs) + 2                      # 2 rules x 2 seeds x refs, + bptt vs eprop
    for c in (c for c in res["claims"] if c["claim"] == "7"):
        per = {(r["rule"], int(r["seed"])): float(r["dsa"]) for r in dsa if r["reference"] == c["reference"]}
        assert c["diff"] == pytest.approx(np.mean([per[("eprop", s)] - per[("bptt", s)] for s in range(2)]))
        assert c["neutral"] == (c["reference"] != "teacher-bptt")
    assert all(r["overall"] for r in res["robustness"])
    # the teacher is shown, never counted: a claim's overall reading uses the stand-ins and the recording
    for r in res["robustness"]:
        if r["claim"] != "3b" and set(r["labels"].values()) >= {"held"}:
            neutral = [r["labels"][n] for n in ("force", "line_attractor", "recording")]
            assert (r["overall"] == "supported") == all(x == "held" for x in neutral)
    # the compared activity is the network's own: a rotated copy is at distance 0
    task = neuro.tasks.get("context")
    cond = study.refs_mod.conditions("context", task, cfg)
    assert cond.inputs.shape[1] == 72
    net = neuro.compile(study.refs_mod.spec("context", task, 8), "rate",
                        neuro.init_weights(study.refs_mod.spec("context", task, 8), 0))
    rates, _ = study.condition_activity(net, cond)
    other = rates[0] @ np.linalg.qr(np.random.default_rng(0).normal(size=(8, 8)))[0]
    assert procrustes_distance(rates[0], other) == pytest.approx(0.0, abs=1e-6)


def test_claim_verdicts_follow_the_paired_tests():
    """Hand-made snapshot rows: e-prop 0.3 rad farther than BPTT on every seed is 'not comparable';
    0.01 apart with seed noise is 'comparable' within a 0.1 margin."""
    from neuro.studies import similarity as study
    from neuro.studies.similarity_claims import claims_for
    cfg = study.Config(rules=["bptt", "eprop"], gains=[1.0], lrs=[1e-3], dale_rules=[], seeds=5)
    rng = np.random.default_rng(0)

    def rows(gap, noise):
        out = []
        for s in range(5):
            base = 0.4 + 0.05 * rng.normal()
            for rule, d in (("bptt", base), ("eprop", base + gap + noise * rng.normal())):
                for it, acc, dist in ((0, 0.0, 1.0), (10, 1.0, d)):
                    out.append({"task": "context", "rule": rule, "dale": False, "gain": 1.0, "lr": 1e-3, "seed": s,
                                "iteration": it, "reference": "x", "accuracy": acc, "distance": dist,
                                "diverged": False})
        return out
    far = claims_for(cfg, rows(0.3, 0.01), "context", "x", None, None)
    near = claims_for(cfg, rows(0.0, 0.005), "context", "x", None, None)
    assert [c["label"] for c in far if c["claim"] == "1"] == ["not held"]
    assert [c["label"] for c in near if c["claim"] == "1"] == ["held"]
    # read off at 0.95 of the best accuracy: 95 % of the way from the initial distance 1.0
    c = far[0]
    assert c["level"] == pytest.approx(0.95)


def test_study_scales_keep_quick_and_full_and_medium_fits_the_noise_floor():
    from neuro.studies import similarity as study
    assert study.Config.scaled("quick") == study.Config.quick()
    assert study.Config.scaled("full") == study.Config()
    med = study.Config.medium()
    for name in med.tasks:     # the model-vs-floor comparison needs n_sample <= model units, fewer neurons than units
        assert med.standin.n_neurons < med.n_hidden[name] and med.teacher_hidden[name] // 2 <= med.n_hidden[name]
    with pytest.raises(ValueError):
        study.Config.scaled("huge")


def test_snapshot_iterations_start_at_zero_end_at_the_last_and_add_evenly_spaced_ones():
    from neuro.studies.similarity_training import snapshot_iterations
    assert snapshot_iterations(300, 6) == [0, 1, 4, 17, 72, 300]
    its = snapshot_iterations(1500, 8, 8)
    assert its[0] == 0 and its[-1] == 1500 and its == sorted(set(its))
    assert all(int(i) in its for i in np.round(np.linspace(0, 1500, 9))[1:])
    assert len(its) == 15


def test_the_teacher_can_be_trained_with_another_rule():
    import neuro
    from neuro.studies import similarity as study
    cfg = study.Config(teacher_hidden={"context": 10}, teacher_iterations={"context": 2}, batch_size=4,
                       teacher_rule="eprop")
    task = neuro.tasks.get("context")
    cond = task.batch(6, seed=2013)
    ref = study.refs_mod.teacher_reference("context", task, cond, cfg, progress=False)
    assert ref.activity.shape == (6, cond.inputs.shape[0], 10) and ref.source.startswith("teacher (e-prop")
    assert not ref.neutral


def test_data_for_a_task_the_study_leaves_out_is_an_error_not_ignored(tmp_path):
    from neuro.commands import reproduce  # noqa: F401  (the CLI path exists)
    from neuro.studies import similarity as study
    np.save(tmp_path / "rec.npy", np.random.default_rng(0).random((27, 20, 6)))
    args = _args(tmp_path / "rec.npy", tasks=["context"])
    with pytest.raises(SystemExit, match="leaves out"):
        study.run(args)
    with pytest.raises(ValueError, match="leave out"):
        study.study(_toy(), tmp_path / "x", data={"reaching": None})
    with pytest.raises(ValueError, match="name=ms"):
        study.parse_events("go600")


def _args(data, tasks, **kw):
    import argparse

    from neuro.studies import similarity as study
    p = argparse.ArgumentParser()
    study.add_arguments(p)
    argv = ["--quick", "--data", str(data), "--no-progress", "--tasks", *tasks]
    for k, v in kw.items():
        argv += [f"--{k.replace('_', '-')}", str(v)]
    return p.parse_args(argv)

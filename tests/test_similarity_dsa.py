"""DSA (Ostrow et al. 2023) through dsa-metric: invariant to a change of basis of the same dynamics,
and it tells rotations at different frequencies apart; the study's DSA stage on a run folder."""
import numpy as np
import pytest

pytest.importorskip("DSA")


def _rotation(freq_hz, seed, conditions=6, steps=50, units=6, dt=0.01, decay=0.98):
    rng = np.random.default_rng(seed)
    th = 2 * np.pi * freq_hz * dt
    a = decay * np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    x = np.zeros((conditions, steps, 2))
    x[:, 0] = rng.normal(size=(conditions, 2))
    for t in range(1, steps):
        x[:, t] = x[:, t - 1] @ a.T
    return x @ np.linalg.qr(rng.normal(size=(units, units)))[0][:2]     # embedded by a random orthonormal map


def test_dsa_options_are_checked_before_any_fit():
    from neuro.dsa import dsa_distance
    x = _rotation(3, 0)
    with pytest.raises(ValueError, match="rank = 50 exceeds"):
        dsa_distance(x, x, n_delays=2, rank=50)
    with pytest.raises(ValueError, match="longer than"):
        dsa_distance(x[:, :5], x[:, :5], n_delays=10)
    with pytest.raises(ValueError, match="score_method"):
        dsa_distance(x, x, score_method="cosine")


@pytest.mark.slow
def test_the_study_stage_reads_a_run_folder_and_tests_the_dsa_claim(tmp_path):
    """BPTT's final networks are the reference's dynamics in another basis (DSA ≈ 0), e-prop's rotate
    4x faster (measured 0.57): 'comparable' is not held."""
    import csv
    import json

    from neuro.studies.similarity import save_finals
    from neuro.studies.similarity_dsa import dsa_study
    from neuro.studies.similarity_references import Reference
    finals = {}
    for s in range(2):
        finals[("reaching", "bptt", False, 1.0, 1e-3, s)] = (_rotation(3, 10 + s), np.eye(6))
        finals[("reaching", "eprop", False, 1.0, 1e-3, s)] = (_rotation(12, 20 + s), np.eye(6))
    save_finals(tmp_path, finals, {"reaching": [Reference("rot", _rotation(3, 0), "", True)]})
    (tmp_path / "config.json").write_text(json.dumps({"lr": 1e-3, "equivalence_margin": 0.1}))
    # a run folder made before the study ran DSA: claim 1 held, and a stale claim 7 to be replaced
    head = "task,claim,subject,reference,what,level,numbers,label,reason,diff,ci_low,ci_high,p,effect,n,neutral\n"
    (tmp_path / "claims.csv").write_text(head + "reaching,1,eprop,rot,e-prop ~ BPTT,0.5,x,held,r,0,0,0,1,0,2,True\n"
                                         "reaching,7,dsa,rot,old,,x,held,r,0,0,0,1,0,2,True\n")
    (tmp_path / "claims.md").write_text("# claims\n")
    rows = dsa_study(tmp_path, n_delays=2, rank=2, iters=150)
    to_ref = {(r["rule"], r["seed"]): r["dsa"] for r in rows if r["reference"] == "rot"}
    assert all(to_ref[("bptt", s)] < 0.1 < to_ref[("eprop", s)] for s in range(2))
    assert "| reaching | rot |" in (tmp_path / "dsa.md").read_text() and "not held" in (tmp_path / "dsa.md").read_text()
    claims = list(csv.DictReader(open(tmp_path / "claims.csv")))
    assert [(c["claim"], c["label"]) for c in claims] == [("1", "held"), ("7", "not held")]
    robust = {r["claim"]: r["overall"] for r in csv.DictReader(open(tmp_path / "robustness.csv"))}
    assert robust == {"1": "held (one reference)", "7": "not supported"}
    md = (tmp_path / "claims.md").read_text()
    assert md.startswith("# claims\n") and "reaching: **not supported**" in md
    dsa_study(tmp_path, n_delays=2, rank=2, iters=150)            # again: replaced, not repeated
    assert (tmp_path / "claims.md").read_text().count("claim 7)") == 1

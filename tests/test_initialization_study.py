"""The initialization study end to end on a tiny grid, and the README's table against the committed run."""
import csv
import re
from pathlib import Path

import numpy as np
import pytest

from neuro import curves
from neuro.studies import initialization as ini

ROOT = Path(__file__).parents[1]


def test_a_tiny_study_writes_every_output_and_its_verdicts_follow_the_tests(tmp_path):
    cfg = ini.Config(tasks={"romo": {"dt": 20.0, "tau": 100.0, "iterations": 30, "criterion": 5e-3}},
                     gains=[0.2, 1.0], rules=["bptt", "eprop(form=detach)"], lrs=[3e-3], seeds=2,
                     selection_seeds=[], floss_rules=["eprop(form=detach)"], floss_lrs=[1e-2], floss_steps=2,
                     floss_k=4, lyapunov_k=2, window_start=5, floss_window_start=10, n_hidden=16, chunk_size=4)
    res = ini.study(cfg, tmp_path, progress=False, workers=0)
    for name in ("claims.md", "claims.csv", "runs.csv", "curves.parquet", "learning_curves_romo.png",
                 "flossing.png", "lyapunov_before_after.png", "sensitivity.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    runs = list(csv.DictReader(open(tmp_path / "runs.csv")))
    assert len(runs) == 2 * 2 * 2 + 2 * 2            # rules × gains × seeds, plus the flossed e-prop runs
    # every statistic recomputes from the stored curves
    import pyarrow.parquet as pq
    rows = pq.read_table(tmp_path / "curves.parquet").to_pylist()
    r = runs[0]
    loss = [x["loss"] for x in rows if x["condition"] == r["condition"] and x["rule"] == r["rule"]
            and x["gain"] == float(r["gain"]) and x["seed"] == int(r["seed"]) and x["stage"] == "train"]
    assert float(r["window_log10_loss"]) == pytest.approx(np.mean(np.log10(loss[5:])), rel=1e-5)
    # a verdict is what the paired test of the two groups says
    for c in res["claims"]:
        assert c["verdict"] in ("held", "not held", "inconclusive")
    first = next(c for c in res["claims"] if c["claim"] == "2a")
    lam = {g: [float(x["lyapunov_init"]) for x in runs if x["rule"] == "bptt" and x["condition"] == "none"
               and float(x["gain"]) == g] for g in (0.2, 1.0)}
    expected = curves.verdict(curves.compare(np.abs(lam[0.2]), np.abs(lam[1.0])), "greater")[0]
    assert first["verdict"] == expected
    assert ini.readme_claims(tmp_path) == ini.claims_table(res["claims"])


def test_neuro_plot_redraws_a_study_from_its_tables_with_the_same_inputs(tmp_path, monkeypatch):
    """The figures drawn again from config.json, runs.csv and curves.parquet get what the study gave them."""
    from neuro.cli import main
    cfg = ini.Config(tasks={"romo": {"dt": 20.0, "tau": 100.0, "iterations": 12, "criterion": 5e-3}},
                     gains=[0.2, 1.0], rules=["bptt"], lrs=[3e-3], seeds=2, selection_seeds=[],
                     floss_rules=[], lyapunov_k=2, window_start=2, n_hidden=8, chunk_size=4)
    seen = []
    real = ini._figures
    monkeypatch.setattr(ini, "_figures", lambda *a: (seen.append(a), real(*a)))
    ini.study(cfg, tmp_path, progress=False, workers=0)
    (tmp_path / "learning_curves_romo.png").unlink()
    assert main(["plot", str(tmp_path)]) == 0
    assert (tmp_path / "learning_curves_romo.png").stat().st_size > 0
    (cfg1, _, rows1, stats1, floors1), (cfg2, _, rows2, stats2, floors2) = seen
    assert cfg1 == cfg2 and floors1 == floors2
    train = lambda rows: [(r["task"], r["rule"], r["gain"], r["seed"], r["iteration"], r["loss"])
                          for r in rows if r["stage"] == "train"]
    a, b = train(rows1), train(rows2)
    assert [x[:5] for x in a] == [x[:5] for x in b] and len(a) == 2 * 2 * 12
    np.testing.assert_allclose([x[5] for x in a], [x[5] for x in b], rtol=1e-6)       # float32 in parquet
    assert len(stats1) == len(stats2) == 4
    for s1, s2 in zip(stats1, stats2):
        assert s1.keys() == s2.keys()
        for k in s1:
            if isinstance(s1[k], float) and np.isnan(s1[k]):
                assert np.isnan(s2[k]), k
            else:
                assert s1[k] == pytest.approx(s2[k], rel=1e-12) if isinstance(s1[k], float) else s1[k] == s2[k], k


def test_the_chance_floor_of_romo_by_hand():
    # per scored step the best input-blind output is the mean target: in the decision window each channel
    # is 0.5 or 0 with probability 1/2 (variance 1/16); outside it the targets are 0
    task = ini._task(ini.Config(), "romo")
    b = task.batch(512, seed=987_654)
    decision = b.info["decision"]
    share = decision.sum() / b.mask.numpy().sum()
    assert ini.chance_floor(task) == pytest.approx(share / 16, rel=0.05)


def test_the_readme_claims_table_is_the_committed_full_run():
    text = (ROOT / "README.md").read_text()
    m = re.search(r"<!-- initialization-claims:start -->\n(.*?)<!-- initialization-claims:end -->", text, re.S)
    assert m, "README lacks the generated initialization claims table"
    assert m.group(1) == ini.readme_claims(ROOT / "results" / "initialization")


def test_the_quick_run_uses_the_learning_rates_the_full_run_selected():
    runs = list(csv.DictReader(open(ROOT / "results" / "initialization" / "runs.csv")))
    chosen = {f"{r['rule']}|{float(r['gain']):g}": float(r["lr"]) for r in runs
              if r["condition"] == "none" and r["task"] == "romo"}
    for key, lr in ini.QUICK_LRS.items():
        assert chosen[key] == lr, key


def test_at_alpha_zero_the_trace_form_is_not_run_twice():
    """dt = τ leaves e-prop no trace (tests/test_rules.py holds both forms' gradients equal there):
    2AF and DMS at NeuroGym's dt = 100 ms run the detach form once, named for both."""
    cfg = ini.Config()
    assert ini.task_rules(cfg, "romo") == ["bptt", "eprop(form=detach)", "eprop(form=trace)"]
    assert ini.task_rules(cfg, "2af") == ini.task_rules(cfg, "dms") == ["bptt", "eprop(form=detach)"]
    assert ini.rule_name(cfg, "dms", "eprop(form=detach)") == "e-prop (α = 0: detach = trace)"
    assert ini.rule_name(cfg, "romo", "eprop(form=detach)") == "e-prop (detach, paper's code)"
    slow = ini.Config(tasks={"2af": {"dt": 20.0, "tau": 100.0, "iterations": 10, "criterion": None}})
    assert ini.task_rules(slow, "2af") == cfg.rules


def test_rows_with_different_columns_are_all_written(tmp_path):
    """Romo's runs have an iterations-to-criterion column, 2AF's (no criterion) do not: one table holds both."""
    from neuro.studies import common
    common.write_rows(tmp_path / "t.csv", [{"task": "romo", "iterations_to_criterion": 412}, {"task": "2af"}])
    rows = list(csv.DictReader(open(tmp_path / "t.csv")))
    assert rows == [{"task": "romo", "iterations_to_criterion": "412"}, {"task": "2af", "iterations_to_criterion": ""}]


def test_tasks_at_alpha_zero_are_rerun_at_the_sensitivity_dt():
    cfg = ini.Config()
    assert ini.sensitivity_tasks(cfg) == ["2af", "dms"]          # Romo already runs at dt < τ
    s = ini._sensitivity_config(cfg, "dms")
    assert s.tasks == {"dms": {**cfg.tasks["dms"], "dt": 20.0}} and s.gains == [0.2, 1.0] and s.seeds == 3
    assert ini.task_rules(s, "dms") == cfg.rules                   # α = 0.8: both e-prop forms run
    assert ini.sensitivity_tasks(ini.Config(sensitivity_dt=None)) == []
    assert ini.sensitivity_tasks(ini.Config.quick_config()) == []

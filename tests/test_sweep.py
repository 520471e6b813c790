"""Sweeps: grids packed into ensembles, resumable after SIGKILL, lr selection, executors."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import neuro
from neuro import sweep
from neuro.executors import DaskExecutor, InlineExecutor
from neuro.runs import load_network

TINY = """
name = "tiny"
spec = "romo_rate"
tasks = [{name = "romo", gap = [2, 3], delay = 2, decision = 3}]
rules = ["bptt", "eprop"]
gains = [0.5, 1.5]
lrs = [1e-3, 1e-2]
seeds = 2
iterations = 40
batch_size = 4
chunk_size = 2
checkpoint_every = 5
[overrides]
"populations[0].size" = 8
"populations[0].neuron.noise_std" = 0.05
[lr_selection]
iterations = 10
seeds = [7]
"""


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    path = tmp_path_factory.mktemp("exp") / "tiny.toml"
    path.write_text(TINY)
    return path


@pytest.fixture(scope="module")
def reference(experiment, tmp_path_factory):
    """The uninterrupted run."""
    return sweep.run_sweep(experiment, tmp_path_factory.mktemp("ref"), executor=InlineExecutor(), progress=False)


def _cli(experiment, out, **popen):
    return subprocess.Popen([sys.executable, "-m", "neuro.cli", "sweep", str(experiment), "--out", str(out),
                             "--workers", "1", "--no-progress"], cwd=Path(__file__).parents[1],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **popen)


def test_a_sweep_killed_with_sigkill_resumes_to_the_uninterrupted_table(experiment, reference, tmp_path):
    proc = _cli(experiment, tmp_path, start_new_session=True)     # its own group: the worker dies with it
    run = tmp_path / reference.name
    deadline = time.time() + 60
    while not list(run.glob("chunks/*/done.json")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = sorted(run.glob("chunks/*/done.json"))
    assert 1 <= len(done) < 8 and not (run / "metrics.parquet").exists() and not (run / "metrics.csv").exists()
    for f in run.rglob("*.pt"):          # whatever exists under its final name is complete
        torch.load(f, weights_only=False)
    finished = {p: p.stat().st_mtime_ns for d in done for p in [d] + [run / "members" / m / "checkpoint.pt"
                                                                      for m in json.loads(d.read_text())["member_ids"]]}

    proc = _cli(experiment, tmp_path)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()[-2000:]
    assert {p: p.stat().st_mtime_ns for p in finished} == finished     # finished members were not recomputed
    assert sweep.read_table(run) == sweep.read_table(reference)
    assert (run / "summary.csv").read_text() == (reference / "summary.csv").read_text()
    assert not list(run.rglob(".*.tmp")) and not list(run.glob("chunks/*/ensemble.pt"))


def test_the_table_and_the_chosen_lrs(reference):
    rows = sweep.read_table(reference)
    # one row per member × iteration: 2 rules × 2 gains × (2 lrs × 1 seed × 10 + 2 seeds × 40)
    assert len(rows) == 2 * 2 * (2 * 10 + 2 * 40)
    assert list(rows[0]) == list(sweep.COLUMNS)
    for rule in ("bptt", "eprop"):
        for gain in (0.5, 1.5):
            # the selection statistic: the area under the log10-loss curve (trapezoid rule)
            search = {lr: np.trapz(np.log10([r["loss"] for r in rows if r["stage"] == "lr_search"
                                              and r["rule"] == rule and r["gain"] == gain and r["lr"] == lr]))
                      for lr in (1e-3, 1e-2)}
            trained = {r["lr"] for r in rows if r["stage"] == "train" and r["rule"] == rule and r["gain"] == gain}
            assert trained == {min(search, key=search.get)}
    assert (reference / "figures" / "learning_curves_romo_decision=3_delay=2_gap=_2_3_.png").stat().st_size > 0


def test_a_sweep_member_equals_neuro_train_alone(reference):
    """Wiring oracle: spec overrides, task options, gain, seed and chosen lr reach the member."""
    rows = [r for r in sweep.read_table(reference) if r["stage"] == "train" and r["rule"] == "eprop"
            and r["gain"] == 1.5 and r["seed"] == 1]
    spec = neuro.models.load("romo_rate").replace(**{"populations[0].size": 8, "populations[0].neuron.noise_std": 0.05,
                                                     "recurrent.gain": 1.5})
    task = neuro.tasks.get("romo", dt=spec.dt, tau=spec.neuron.tau, gap=[2, 3], delay=2, decision=3)
    net = neuro.compile(spec, "rate", neuro.init_weights(spec, 1))
    alone = neuro.train(net, task, neuro.rules.get("eprop"), iterations=40, lr=rows[0]["lr"], batch_size=4, seed=1,
                        progress=False)
    np.testing.assert_allclose([r["loss"] for r in rows], alone.loss, rtol=2e-5)
    member = next(reference.glob("members/romo*-eprop-g1.5-lr*-s1"))
    loaded = load_network(member)
    np.testing.assert_allclose(loaded.weights().W_rec, net.weights().W_rec, rtol=1e-5, atol=1e-6)


def test_a_dask_cluster_gives_the_local_numbers(tmp_path):
    from distributed import Client, LocalCluster
    exp = {"name": "dask", "spec": "romo_rate", "tasks": [{"name": "romo", "gap": [2, 3], "delay": 2, "decision": 3}],
           "rules": ["bptt"], "gains": [0.5, 1.5], "lrs": [3e-3], "seeds": [0, 1], "iterations": 5,
           "batch_size": 4, "chunk_size": 2, "overrides": {"populations[0].size": 8}}
    local = sweep.run_sweep(exp, tmp_path / "local", executor=InlineExecutor(), progress=False)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        remote = sweep.run_sweep(exp, tmp_path / "dask", executor=DaskExecutor(client), progress=False)
    assert sweep.read_table(remote) == sweep.read_table(local)


@pytest.mark.parametrize("change, message", [
    ({"gain": [1.0]}, r"unknown experiment key\(s\) \['gain'\]"),
    ({"gains": [0.0]}, "gains must hold finite numbers > 0, got 0.0"),
    ({"seeds": 0}, "seeds must be a count >= 1"),
    ({"rules": ["force"]}, "online rule"),
    ({"rules": ["nope"]}, "rule must be one of"),
    ({"tasks": ["nope"]}, "task must be one of"),
    ({"iterations": 0}, "iterations must be an integer >= 1"),
    ({"device": "gpu"}, "device must be 'cpu', 'cuda'"),
    ({"overrides": {"populations[0].neuron.tau": -1.0}}, "tau"),
])
def test_bad_experiments_fail_with_one_line(change, message):
    exp = {"name": "x", "spec": "romo_rate", "tasks": ["romo"], "rules": ["bptt"], "gains": [1.0], "lrs": [1e-3],
           "seeds": 1, "iterations": 1, **change}
    with pytest.raises(ValueError, match=message):
        sweep.load_experiment(exp)


def test_the_run_folder_is_keyed_by_the_config(tmp_path):
    base = {"name": "x", "spec": "romo_rate", "tasks": ["romo"], "rules": ["bptt"], "gains": [1.0], "lrs": [1e-3],
            "seeds": 1, "iterations": 1}
    a, b = sweep.load_experiment(base), sweep.load_experiment({**base, "lrs": [2e-3]})
    c = sweep.load_experiment({**base, "overrides": {"recurrent.density": 0.5}})
    assert len({a.key(), b.key(), c.key()}) == 3
    assert a.key() == sweep.load_experiment(dict(base)).key()


@pytest.mark.parametrize("parquet", [True, False])
def test_tables_round_trip_exactly(tmp_path, monkeypatch, parquet):
    monkeypatch.setattr(sweep, "_have_pyarrow", lambda: parquet)
    rows = [{"stage": "train", "task": "romo", "rule": "eprop(form=trace)", "gain": 0.2, "lr": 3e-4, "seed": s,
             "iteration": i, "loss": 0.1 + 0.2 * i / 3, "accuracy": float("nan") if i else 0.5}
            for s in range(2) for i in range(3)]
    path = sweep.write_table(tmp_path / "metrics", rows)
    assert path.suffix == (".parquet" if parquet else ".csv")
    back = sweep.read_table(path)
    assert [{k: v for k, v in r.items() if k != "accuracy"} for r in back] == \
           [{k: v for k, v in r.items() if k != "accuracy"} for r in rows]
    np.testing.assert_array_equal([r["accuracy"] for r in back], [r["accuracy"] for r in rows])


def test_a_sweep_whose_member_folders_were_deleted_rebuilds_them(experiment, reference, tmp_path):
    import shutil
    run = sweep.run_sweep(experiment, tmp_path, executor=InlineExecutor(), progress=False)
    shutil.rmtree(run / "members")
    again = sweep.run_sweep(experiment, tmp_path, executor=InlineExecutor(), progress=False)
    assert again == run
    assert len(list(run.glob("members/*/checkpoint.pt"))) == len(list(reference.glob("members/*/checkpoint.pt")))
    assert sweep.read_table(run) == sweep.read_table(reference)


def test_pretraining_lyapunov_and_fixed_lrs_reach_every_member(tmp_path):
    """Oracles: the recorded exponents equal neuro.lyapunov_spectrum on the member's own networks, and
    the flossed start equals flossing that network alone."""
    exp = {"name": "floss", "spec": "romo_rate", "tasks": [{"name": "romo", "gap": [2, 3], "delay": 2, "decision": 3}],
           "rules": [{"name": "eprop", "form": "detach"}], "gains": [0.3, 1.2], "lrs": [1e-3], "seeds": [0, 1],
           "iterations": 3, "batch_size": 4, "overrides": {"populations[0].size": 16},
           "lr_for": {"eprop(form=detach)|0.3": 2e-3, "eprop(form=detach)|1.2": 5e-4},
           "pretrain": {"floss": {"steps": 3, "lr": 1e-2, "k": 4}}, "lyapunov": {"k": 2, "batch_size": 3}}
    run = sweep.run_sweep(exp, tmp_path, executor=InlineExecutor(), progress=False)
    runs = sweep.runs_table(run)
    assert {(r["gain"], r["lr"]) for r in runs} == {(0.3, 2e-3), (1.2, 5e-4)}
    task = neuro.tasks.get("romo", dt=20.0, tau=100.0, gap=[2, 3], delay=2, decision=3)
    inputs = task.batch(3, seed=123).inputs
    for r in runs:
        spec = neuro.models.load("romo_rate").replace(**{"populations[0].size": 16, "recurrent.gain": r["gain"]})
        net = neuro.compile(spec, "rate", neuro.init_weights(spec, r["seed"]))
        init = neuro.lyapunov_spectrum(net, inputs=inputs, k=2).max_exponent
        assert r["lyapunov_init"] == pytest.approx(init, abs=1e-5)
        neuro.floss(net, steps=3, k=4, local=True, lr=1e-2, inputs=task, batch_size=8, seed=0, progress=False)
        assert r["lyapunov_pretrained"] == pytest.approx(neuro.lyapunov_spectrum(net, inputs=inputs, k=2).max_exponent,
                                                         abs=1e-4)
        assert r["lyapunov_pretrained"] != pytest.approx(r["lyapunov_init"], abs=1e-4)
        member = next(run.glob(f"members/*-g{r['gain']:g}-lr*-s{r['seed']}"))
        assert np.isfinite(load_network(member).weights().W_rec).all()


def test_an_lr_for_table_must_cover_every_rule_and_gain(tmp_path):
    exp = {"name": "x", "spec": "romo_rate", "tasks": ["romo"], "rules": ["bptt"], "gains": [1.0], "lrs": [1e-3],
           "seeds": 1, "iterations": 1}
    with pytest.raises(ValueError, match="RULE|GAIN"):
        sweep.load_experiment({**exp, "lr_for": {"bptt": 1e-3}})
    with pytest.raises(ValueError, match="either lr_selection or lr_for"):
        sweep.load_experiment({**exp, "lr_for": {"bptt|1": 1e-3}, "lr_selection": {"iterations": 1}})
    with pytest.raises(ValueError, match="no learning rate for 'bptt|2'"):
        sweep.run_sweep({**exp, "gains": [2.0], "lr_for": {"bptt|1": 1e-3}}, tmp_path, progress=False)

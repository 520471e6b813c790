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
            search = {lr: np.mean([r["loss"] for r in rows if r["stage"] == "lr_search" and r["rule"] == rule
                                   and r["gain"] == gain and r["lr"] == lr]) for lr in (1e-3, 1e-2)}
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

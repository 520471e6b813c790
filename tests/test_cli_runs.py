"""Commands that read what a run folder knows (spec, task, dt, backend), and exports that write files.

Every command runs through the entry point (``neuro.cli.main``) in-process."""
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

import neuro
from neuro.cli import main


def cli(capsys, *argv):
    """(exit code, stdout, stderr) of ``neuro ARGV``."""
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture(scope="module")
def lif_run(tmp_path_factory):
    """``neuro train 2af_lif --task 2af --rule eprop`` (no --backend): two small iterations."""
    folder = tmp_path_factory.mktemp("runs") / "lif"
    assert main(["train", "2af_lif", "--task", "2af", "--rule", "eprop", "--iterations", "2", "--batch-size", "4",
                 "--lr", "0.01", "--out", str(folder), "--no-progress"]) == 0
    return folder


def test_train_takes_the_backend_from_the_spec_and_load_run_reads_the_folder(lif_run):
    assert json.loads((lif_run / "args.json").read_text())["backend"] == "lif"
    run = neuro.load_run(lif_run)
    assert (run.backend, run.task_name, run.rule, run.dt) == ("lif", "2af", "eprop", 10.0)
    assert run.net.backend == "lif" and run.net.spec == run.spec
    assert run.task.dt == run.spec.dt == 10.0            # the task is built at the network's dt
    assert run.history.iteration == [0, 1] and all(np.isfinite(run.history.loss))
    # the network holds the checkpoint's trained weights, not the initial ones
    saved = torch.load(lif_run / "checkpoint.pt", weights_only=True)["model"]
    state = run.net.state_dict()
    assert saved.keys() == state.keys()
    for k in saved:
        assert torch.equal(saved[k], state[k])
    init = neuro.compile(run.spec, "lif", neuro.init_weights(run.spec, 0)).state_dict()
    assert any(not torch.equal(init[k], state[k]) for k in state)


def test_a_refused_train_command_leaves_no_run_folder(tmp_path, capsys):
    out = tmp_path / "refused"
    rc, _, err = cli(capsys, "train", "romo_rate", "--backend", "lif", "--iterations", "1", "--out", out,
                     "--no-progress")
    assert rc == 2 and "error" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_lyapunov_of_a_run_uses_its_task_and_dt_and_says_lif_is_surrogate(lif_run, capsys):
    rc, out, _ = cli(capsys, "lyapunov", lif_run, "-k", "2", "--batch-size", "2", "--json")
    assert rc == 0
    r = json.loads(out)
    assert (r["task"], r["dt_ms"], r["backend"], r["surrogate"]) == ("2af", 10.0, "lif", True)
    # oracle: the same spectrum computed directly on the loaded run with its own task's inputs
    run = neuro.load_run(lif_run)
    inputs = run.task.batch(2, seed=0).inputs
    direct = neuro.lyapunov_spectrum(run.net, inputs=inputs, k=2, batch_size=2, seed=0)
    np.testing.assert_allclose(r["exponents_per_step"], np.asarray(direct.exponents, dtype=float), rtol=1e-6)
    np.testing.assert_allclose(r["per_second"], np.asarray(r["exponents_per_step"]) * 1000 / 10.0)
    rc, out, _ = cli(capsys, "lyapunov", lif_run, "-k", "2", "--batch-size", "2")
    assert "surrogate" in out and "dt 10 ms" in out and "task 2af" in out


@pytest.mark.parametrize("arg, message", [("runs/nonexistent", "no such run folder"),
                                          ("nonexistent_model", "neither a run folder, a spec file nor")])
def test_lyapunov_and_export_name_a_missing_network(arg, message, capsys):
    for command in (["lyapunov", arg], ["export", arg, "--format", "nir"]):
        rc, _, err = cli(capsys, *command)
        assert rc == 2 and message in err


def test_export_nir_writes_the_trained_graph_and_a_summary(lif_run, tmp_path, capsys):
    path = tmp_path / "net.nir"
    rc, out, _ = cli(capsys, "export", lif_run, "--format", "nir", "--out", path)
    assert rc == 0 and path.exists()
    assert "NIRGraph" not in out and "<" not in out and len(out.splitlines()) <= 5
    run = neuro.load_run(lif_run)
    w = run.net.weights()
    assert f"{np.count_nonzero(w.W_rec)} recurrent" in out and "64 LIF neurons" in out and "dt 10 ms" in out
    spec, back = neuro.load_nir(path)
    assert spec.dt == 10.0
    np.testing.assert_allclose(back.W_rec, w.W_rec, rtol=1e-6)
    np.testing.assert_allclose(back.W_out, w.W_out, rtol=1e-6)


def test_export_brian2_writes_a_standalone_script_that_reproduces_the_spikes(lif_run, tmp_path, capsys):
    script = tmp_path / "net_b2.py"
    rc, out, _ = cli(capsys, "export", lif_run, "--format", "brian2", "--out", script)
    assert rc == 0 and script.exists() and "Brian2Model" not in out and "64 LIF neurons" in out
    assert "import neuro" not in script.read_text()
    run = neuro.load_run(lif_run, dtype=torch.float64)
    x = 3 * torch.rand(60, 2, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ours = run.net.run(x)
    np.save(tmp_path / "x.npy", x.numpy())
    res = subprocess.run([sys.executable, str(script), "--inputs", str(tmp_path / "x.npy"), "--out",
                          str(tmp_path / "r.npz")], capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    theirs = np.load(tmp_path / "r.npz")
    assert ours.spikes.sum() > 10
    np.testing.assert_array_equal(theirs["spikes"], ours.spikes.numpy())
    np.testing.assert_allclose(theirs["outputs"], ours.outputs.numpy(), atol=1e-9)


def test_export_pynn_writes_a_standalone_pynn_script(lif_run, tmp_path, capsys):
    script = tmp_path / "net_pynn.py"
    rc, out, _ = cli(capsys, "export", lif_run, "--format", "pynn", "--out", script)
    assert rc == 0 and script.exists() and f"wrote {script}" in out
    assert "Lava" not in out and "64 LIF neurons" in out
    text = script.read_text()
    compile(text, str(script), "exec")
    w = neuro.load_run(lif_run).net.weights()
    i, j = np.argwhere(w.W_rec != 0)[0]
    assert "sim.IF_curr_exp(**params)" in text and repr(float(w.W_rec[i, j])) in text
    rc, out, _ = cli(capsys, "list", "exports")
    assert "(no description)" not in out and "PyNN" in out


@pytest.mark.parametrize("fmt", ["nir", "brian2", "pynn"])
def test_export_into_a_missing_folder_is_one_line_naming_it(lif_run, tmp_path, capsys, fmt):
    target = tmp_path / "no" / "such" / f"net.{fmt}"
    rc, out, err = cli(capsys, "export", lif_run, "--format", fmt, "--out", target)
    assert rc == 2 and out == "" and not target.parent.exists()
    assert err.strip().splitlines() == [f"neuro export: error: cannot write {target}: the folder "
                                        f"{target.parent} does not exist"]


def test_export_lava_refuses_a_file_and_reports_its_quantization(lif_run, capsys):
    rc, _, err = cli(capsys, "export", lif_run, "--format", "lava", "--out", "x.lava")
    assert rc == 2 and "--out is refused for lava" in err
    rc, out, _ = cli(capsys, "export", lif_run, "--format", "lava", "--precision", "fixed", "--weight-bits", "6")
    assert rc == 0 and "LavaNetwork" not in out
    assert "Loihi fixed point, 6-bit recurrent weights" in out and "refused: a file" in out


def test_export_of_a_rate_run_is_refused_in_one_line(tmp_path, capsys):
    spec = neuro.models.load("romo_rate").replace(**{"populations[0].size": 8})
    neuro.save_spec(spec, tmp_path / "small.toml")
    rc, _, err = cli(capsys, "export", tmp_path / "small.toml", "--format", "nir")
    assert rc == 2 and "rate neurons" in err and len(err.strip().splitlines()) == 1


def test_plot_titles_the_run_with_its_spec_task_and_backend(lif_run, capsys, monkeypatch):
    from neuro import plots
    seen = {}
    real = plots.learning_curves
    monkeypatch.setattr(plots, "learning_curves",
                        lambda panels, path, **kw: seen.update(panels) or real(panels, path, **kw))
    rc, out, _ = cli(capsys, "plot", lif_run)
    assert rc == 0 and (lif_run / "learning_curve.png").exists()
    (title, lines), = seen.items()
    assert title == "2af_lif (lif, dt 10 ms): 2af / eprop"
    assert lines["loss"][0] == pytest.approx(neuro.load_run(lif_run).history.loss)


def test_train_accepts_a_rule_name():
    spec = neuro.models.load("romo_rate").replace(**{"populations[0].size": 8})
    task = neuro.tasks.get("romo", dt=spec.dt)
    a = neuro.compile(spec, "rate", neuro.init_weights(spec, 0))
    b = neuro.compile(spec, "rate", neuro.init_weights(spec, 0))
    ha = neuro.train(a, task, "bptt", iterations=3, batch_size=4, progress=False)
    hb = neuro.train(b, task, neuro.rules.get("bptt"), iterations=3, batch_size=4, progress=False)
    assert ha.loss == hb.loss

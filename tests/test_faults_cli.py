"""Bad input gets one line that says what is wrong (exit 2 / a ValueError subclass), never a traceback."""
import shutil
from collections import namedtuple

import pytest
import torch

import neuro
from neuro import cli
from neuro.spec import SpecError


def _cli(*argv):
    return cli.main([str(a) for a in argv])


def _one_line_error(capsys, *fragments):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for f in fragments:
        assert f in err, err
    return err


@pytest.fixture
def small(tmp_path):
    path = tmp_path / "small.toml"
    neuro.save_spec(neuro.models.load("romo_rate").replace(**{"populations[0].size": 16}), path)
    return path


def _train(small, out, *extra):
    return _cli("train", small, "--iterations", 1, "--batch-size", 2, "--no-progress", "--out", out, *extra)


# -- neuro train ------------------------------------------------------------------------------

def test_zero_iterations(small, tmp_path, capsys):
    assert _train(small, tmp_path / "r", "--iterations", 0) == 2
    _one_line_error(capsys, "--iterations must be >= 1")


def test_out_is_a_file_under_a_file_or_unwritable(small, tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    assert _train(small, tmp_path / "f") == 2
    _one_line_error(capsys, "is a file, not a folder")
    assert _train(small, tmp_path / "f" / "run") == 2
    _one_line_error(capsys, "which is a file")
    assert _train(small, "/proc/neuro-run") == 2          # unwritable even for root
    _one_line_error(capsys, "cannot be written")


def test_full_disk_is_refused_before_training(small, tmp_path, capsys, monkeypatch):
    Usage = namedtuple("Usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: Usage(10**9, 10**9 - 1000, 1000))
    assert _train(small, tmp_path / "r") == 2
    _one_line_error(capsys, "MiB free")
    assert not (tmp_path / "r" / "checkpoint.pt").exists()


def test_reward_rule_on_a_supervised_task(small, tmp_path, capsys):
    assert _train(small, tmp_path / "r", "--rule", "reinforce") == 2
    _one_line_error(capsys, "learns from rewards")


def test_compare_with_an_online_rule(capsys):
    assert _cli("compare", "romo_rate", "--rule", "force", "--iterations", 1) == 2
    _one_line_error(capsys, "online rule")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda():
    spec = neuro.models.load("romo_rate").replace(**{"populations[0].size": 16})
    with pytest.raises(ValueError, match="no CUDA device"):
        neuro.train_ensemble(spec, neuro.tasks.get("romo"), "bptt", [{"seed": 0}], iterations=1, batch_size=2,
                             device="cuda", progress=False)
    with pytest.raises(ValueError, match="device must be"):
        neuro.ensemble.check_device("gpu7")


@pytest.mark.cluster
def test_unreachable_cluster(monkeypatch):
    pytest.importorskip("distributed")
    monkeypatch.setenv("NEURO_CLUSTER_TIMEOUT", "0.3")
    from neuro.executors import ClusterError, make_executor
    with pytest.raises(ClusterError, match="cannot reach the Dask scheduler at tcp://127.0.0.1:9"):
        make_executor("tcp://127.0.0.1:9")
    with pytest.raises(ValueError, match="cluster address must be"):
        make_executor("http://nowhere")


def test_plot_of_an_empty_history(tmp_path, capsys):
    (tmp_path / "history.csv").write_text("iteration,loss,accuracy\n")
    assert _cli("plot", tmp_path) == 2
    _one_line_error(capsys, "no rows yet")
    (tmp_path / "history.csv").write_text("iteration,loss,accuracy\n0,abc,1\n")
    assert _cli("plot", tmp_path) == 2
    _one_line_error(capsys, "not a history table")


# -- spec files -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name,content,match", [
    ("empty.toml", "", "the spec is empty"),
    ("nodt.toml", None, "no dt"),
    ("nopop.toml", 'dt = 20.0\nn_inputs = 1\n', "no populations"),
    ("nosize.toml", 'dt = 20.0\n[[populations]]\nname = "h"\n', r"populations\[0\] has no size"),
    ("booltrue.toml", None, r"populations\[0\].size must be an integer"),
    ("bad.json", '{"dt": 20.0,', "not valid JSON"),
    ("list.json", '[1, 2]', "must be a table"),
    ("latin.toml", b'name = "caf\xe9"\n', "not UTF-8"),
])
def test_bad_spec_files(tmp_path, name, content, match):
    text = neuro.spec.dumps(neuro.models.load("romo_rate"))
    if name == "nodt.toml":
        content = text.replace("dt = 20.0\n", "")
    if name == "booltrue.toml":
        content = text.replace("size = 64", "size = true")
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(SpecError, match=match) as info:
        neuro.load_spec(path)
    assert len(str(info.value).splitlines()) == 1
    assert str(path) in str(info.value)


def test_a_directory_as_spec(tmp_path, capsys):
    (tmp_path / "d.toml").mkdir()
    with pytest.raises(SpecError, match="is a directory"):
        neuro.load_spec(tmp_path / "d.toml")
    assert _cli("train", tmp_path / "d.toml", "--out", tmp_path / "r") == 2
    _one_line_error(capsys, "is a directory")


@pytest.mark.parametrize("key", ["populations[3].size", "populations[x].size", "populations[-1].size",
                                 "populations[0.size"])
def test_replace_with_a_bad_population_index(key):
    with pytest.raises(SpecError, match="populations index"):
        neuro.models.load("romo_rate").replace(**{key: 8})


def test_bools_are_not_sizes():
    spec = neuro.models.load("romo_rate")
    for key in ("n_inputs", "n_outputs", "populations[0].size"):
        with pytest.raises(SpecError, match="an integer >= 1"):
            spec.replace(**{key: True})


# -- experiment files: task and rule options -------------------------------------------------------

_EXPERIMENT = ('name = "opts"\nspec = "romo_rate"\ngains = [1.0]\nlrs = [1e-3]\nseeds = 1\niterations = 2\n'
               'batch_size = 2\n[overrides]\n"populations[0].size" = 16\n')


@pytest.mark.parametrize("tables,fragments", [
    ('[[tasks]]\nname = "romo"\nfoo = 1\n[[rules]]\nname = "bptt"\n',
     ["task 'romo' has no option 'foo'", "accepts dt, tau, fixation", "min_diff, target"]),
    ('[[tasks]]\nname = "2af"\nfoo = 1\nbar = 2\n[[rules]]\nname = "bptt"\n',          # options of the NeuroGym env
     ["task '2af' has no options 'foo', 'bar'", "accepts dt, rewards, timing, cohs, sigma, dim_ring"]),
    ('[[tasks]]\nname = "romo"\n[[rules]]\nname = "tbptt"\nkk = 3\n', ["rule 'tbptt' has no option 'kk'; it accepts k"]),
    ('[[tasks]]\nname = "romo"\n[[rules]]\nname = "bptt"\nk = 3\n', ["rule 'bptt' has no option 'k'; it accepts no options"]),
    ('[[tasks]]\nname = "2af"\nsigma = "x"\n[[rules]]\nname = "bptt"\n',             # a TypeError inside the env
     ["task 2af(sigma=x) cannot be built from its options"]),
], ids=["task", "env-option", "rule", "rule-without-options", "mistyped"])
def test_unknown_or_mistyped_task_and_rule_options(tmp_path, capsys, monkeypatch, tables, fragments):
    import neuro.ensemble
    import neuro.sweep
    path = tmp_path / "exp.toml"
    path.write_text(_EXPERIMENT + tables)
    with pytest.raises(ValueError) as info:
        neuro.sweep.load_experiment(path)
    assert not isinstance(info.value, TypeError) and len(str(info.value).splitlines()) == 1
    for f in fragments:
        assert f in str(info.value)

    def no_training(*a, **k):
        raise AssertionError("training started")
    monkeypatch.setattr(neuro.ensemble, "train_ensemble", no_training)
    assert _cli("sweep", path, "--out", tmp_path / "runs", "--workers", 0, "--no-progress") == 2
    _one_line_error(capsys, "neuro sweep: error:", *fragments)
    assert not (tmp_path / "runs").exists()


# -- the rate backend: inputs of the wrong width ---------------------------------------------------

@pytest.mark.parametrize("event_driven", [True, False])
def test_wrong_input_width_on_the_lif_backend(event_driven):
    net = neuro.compile(neuro.models.load("2af_lif").replace(**{"populations[0].size": 8}), "lif")
    net.event_driven = event_driven
    cases = [(torch.zeros(5, 2, 4), r"inputs have width 4 but the network has n_inputs = 3 \(inputs must be "
                                    r"\[T, B, 3\], got shape \(5, 2, 4\)\)"),
             (torch.zeros(5, 3), r"must be a tensor \[T, B, 3\], got shape \(5, 3\)")]
    for x, match in cases:
        with pytest.raises(ValueError, match=match) as info:
            net.run(x)
        assert len(str(info.value).splitlines()) == 1
    assert net.run(torch.ones(5, 2, 3)).outputs.shape == (5, 2, 3)


@pytest.mark.parametrize("path", ["float64", "stepwise", "kernel-or-float32"])
def test_wrong_input_width_on_the_rate_backend(path):
    from neuro.ensemble import Ensemble
    spec = neuro.models.load("romo_rate").replace(**{"populations[0].size": 16})
    dtype = torch.float32 if path == "kernel-or-float32" else torch.float64
    net = neuro.compile(spec, "rate", neuro.init_weights(spec, 0), dtype=dtype)
    ens = Ensemble(spec, [{"seed": s} for s in range(3)], dtype=dtype).net
    for n in (net, ens):
        n.fused = path != "stepwise"
    cases = [(net, torch.zeros(5, 2, 3), "inputs have width 3 but the network has n_inputs = 1"),
             (ens, torch.zeros(5, 3, 2, 4), r"width 4 .* n_inputs = 1 \(inputs must be \[T, 3, B, 1\]"),
             (ens, torch.zeros(5, 2, 2, 1), r"shape \(5, 2, 2, 1\) do not fit an ensemble of 3 members"),
             # no member axis: time steps would pair with members (silently, where T = E)
             (ens, torch.zeros(3, 2, 1), r"shape \(3, 2, 1\) do not fit an ensemble of 3 members"),
             (net, torch.zeros(5, 2), r"must be a tensor \[T, B, 1\], got shape \(5, 2\)")]
    for n, x, match in cases:
        with pytest.raises(ValueError, match=match) as info:
            n.run(x)
        assert len(str(info.value).splitlines()) == 1
    with pytest.raises(ValueError, match=r"width 3 reached a network with n_inputs = 1"):
        net.step(torch.zeros(2, 16, dtype=dtype), torch.zeros(2, 3, dtype=dtype))
    with pytest.raises(ValueError, match=r"width 2 reached a network with n_inputs = 1"):
        ens.advance(ens.init_state(2), torch.zeros(2, 2, dtype=dtype))
    # the right shapes still run, and agree: member 0 of the ensemble is net; a member axis of 1 broadcasts
    x = torch.rand(5, 2, 1, dtype=dtype)
    with torch.no_grad():
        shared = ens.run(x[:, None].expand(5, 3, 2, 1)).outputs
        torch.testing.assert_close(shared[:, 0], net.run(x).outputs)
        torch.testing.assert_close(ens.run(x[:, None]).outputs, shared)


# -- executors: only what is tested is offered ------------------------------------------------------

def test_ray_is_not_offered_and_asking_for_it_without_ray_is_one_line(tmp_path, capsys, monkeypatch):
    import argparse
    import sys
    import pathlib

    import neuro.sweep
    readme = (pathlib.Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert all("not" in line for line in readme.splitlines() if "Ray" in line)       # no untested claim
    p = argparse.ArgumentParser()
    neuro.sweep.add_arguments(p)
    assert "Dask" in p.format_help() and "Ray" not in p.format_help()
    monkeypatch.setitem(sys.modules, "ray", None)      # as on a machine without Ray, even where it is installed
    path = tmp_path / "exp.toml"
    path.write_text(_EXPERIMENT.replace("[overrides]", 'tasks = ["romo"]\nrules = ["bptt"]\n[overrides]'))
    assert _cli("sweep", path, "--cluster", "ray", "--out", tmp_path / "runs", "--no-progress") == 2
    _one_line_error(capsys, "needs the 'ray' package", "pip install ray")

"""Run folders tell the truth: no code runs from them, resumes are exact, divergence stops, and a
folder that is missing its weights, or holds another run, is refused by name."""
import csv
import functools
import json
import os
import pickle
import shutil
import signal
from pathlib import Path

import pytest
import torch

import neuro
import neuro.io as nio
from neuro import cli


def _spec(size=16, noise=0.0, **changes):
    return neuro.models.load("romo_rate").replace(**{"populations[0].size": size,
                                                     "populations[0].neuron.noise_std": noise, **changes})


def _net(spec, seed=0, backend="rate"):
    return neuro.compile(spec, backend, neuro.init_weights(spec, seed))


def _romo(spec):
    return neuro.tasks.get("romo", dt=spec.dt, tau=spec.neuron.tau)


def _cli(*argv):
    return cli.main([str(a) for a in argv])


def _train_cli(out, *extra, spec=None):
    spec_arg = spec or "romo_rate"
    return _cli("train", spec_arg, "--iterations", 2, "--batch-size", 2, "--no-progress", "--out", out, *extra)


@pytest.fixture
def small_spec_file(tmp_path):
    path = tmp_path / "small.toml"
    neuro.save_spec(_spec(16), path)
    return path


@pytest.fixture(scope="module")
def _trained_once(tmp_path_factory):
    base = tmp_path_factory.mktemp("trained")
    spec = base / "small.toml"
    neuro.save_spec(_spec(16), spec)
    assert _train_cli(base / "run", spec=spec) == 0
    return base / "run"


@pytest.fixture
def trained_run(_trained_once, tmp_path):
    """A copy of one `neuro train` run folder (small.toml, 2 iterations), trained once for the module."""
    return Path(shutil.copytree(_trained_once, tmp_path / "run"))


# -- 1. no code execution from run folders --------------------------------------------------------

class _Payload:
    def __reduce__(self):
        return (os.system, ("touch PWNED_MARKER",))


def _plant_payload(path):
    with open(path, "wb") as fh:
        torch.save({"model": _Payload()}, fh)


@pytest.mark.slow
def test_checkpoint_with_code_is_refused_by_lyapunov_export_and_resume(tmp_path, small_spec_file, trained_run,
                                                                       capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = trained_run
    _plant_payload(run / "checkpoint.pt")
    assert _cli("lyapunov", run, "--task", "none", "--steps", 5, "-k", 1) == 2
    assert "checkpoint.pt" in capsys.readouterr().err
    assert _cli("export", run, "--format", "nir", "--out", tmp_path / "n.nir") == 2
    assert _train_cli(run, spec=small_spec_file) == 2
    err = capsys.readouterr().err
    assert "checkpoint.pt" in err and "not loaded" in err
    assert not (tmp_path / "PWNED_MARKER").exists()


def test_ensemble_checkpoint_with_code_is_refused(tmp_path):
    spec = _spec(16)
    _plant_payload(tmp_path / "ensemble.pt")
    with pytest.raises(nio.CheckpointError, match="ensemble.pt"):
        neuro.train_ensemble(spec, _romo(spec), "bptt", [{"seed": 0}], iterations=1, batch_size=2,
                             run_dir=tmp_path, progress=False)
    assert not (tmp_path / "PWNED_MARKER").exists()


def test_saving_anything_but_plain_data_is_refused(tmp_path):
    with pytest.raises(TypeError, match="plain data"):
        nio.atomic_torch_save({"model": {"w": torch.zeros(2)}, "rule": neuro.rules.get("bptt")}, tmp_path / "c.pt")
    assert not (tmp_path / "c.pt").exists()
    nio.atomic_torch_save({"w": torch.arange(3.0), "n": 1, "h": [1.5, None], "g": torch.Generator().get_state()},
                      tmp_path / "ok.pt")
    back = nio.load_checkpoint(tmp_path / "ok.pt")
    assert back["w"].tolist() == [0.0, 1.0, 2.0] and back["h"] == [1.5, None]


# -- 2. a rerun with other arguments never silently resumes ----------------------------------------

def test_rerun_with_other_arguments_is_refused_before_anything_is_rewritten(small_spec_file, trained_run, capsys):
    run = trained_run
    before = {f: (run / f).read_bytes() for f in ("spec.toml", "args.json", "checkpoint.pt", "history.csv")}
    assert _train_cli(run, "--seed", 3, spec=small_spec_file) == 2
    assert "seed: 0 there, 3 now" in capsys.readouterr().err
    assert _train_cli(run, "--task", "2af", spec=small_spec_file) == 2
    err = capsys.readouterr().err
    assert "task" in err and "delete" in err and len(err.strip().splitlines()) == 1
    assert _train_cli(run, "--gain", 0.5, spec=small_spec_file) == 2
    assert "recurrent" in capsys.readouterr().err
    assert {f: (run / f).read_bytes() for f in before} == before
    # the same arguments (with more iterations) resume it
    assert _cli("train", small_spec_file, "--iterations", 3, "--batch-size", 2, "--no-progress", "--out", run) == 0
    rows = list(csv.DictReader(open(run / "history.csv")))
    assert [int(r["iteration"]) for r in rows] == [0, 1, 2]


# -- 3. kill + resume is bit-identical ------------------------------------------------------------

class _Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs, only what is on disk survives."""


class _DiesAt:
    def __init__(self, rule, at):
        self.rule, self.at, self.calls, self.name = rule, at, 0, getattr(rule, "name", "rule")

    def loss_and_gradients(self, *a, **k):
        if self.calls == self.at:
            raise _Killed()
        self.calls += 1
        return self.rule.loss_and_gradients(*a, **k)


def _interrupted_equals_uninterrupted(tmp_path, make_net, task, rule_name, iterations=7, **kw):
    kw = {"lr": 1e-2, "batch_size": 3, "seed": 2, "progress": False, **kw}
    full_net = make_net()
    full = neuro.train(full_net, task, neuro.rules.get(rule_name), iterations=iterations, **kw)
    net = make_net()
    with pytest.raises(_Killed):
        neuro.train(net, task, _DiesAt(neuro.rules.get(rule_name), 5), iterations=iterations, run_dir=tmp_path,
                    checkpoint_every=3, **kw)
    assert nio.load_checkpoint(tmp_path / "checkpoint.pt")["iteration"] == 3
    net = make_net()
    resumed = neuro.train(net, task, neuro.rules.get(rule_name), iterations=iterations, run_dir=tmp_path,
                          checkpoint_every=3, **kw)
    assert resumed.loss == full.loss          # bit-identical, not close
    for (k, a), b in zip(full_net.state_dict().items(), net.state_dict().values()):
        assert torch.equal(a, b), k


@pytest.mark.parametrize("rule", ["bptt", "np", "es"])
def test_noisy_rate_network_resumes_bit_identical(tmp_path, rule):
    spec = _spec(16, noise=0.1)
    _interrupted_equals_uninterrupted(tmp_path, lambda: _net(spec), _romo(spec), rule)


def test_lif_network_resumes_bit_identical(tmp_path):
    spec = neuro.load_spec("models/2af_lif.toml").replace(**{"populations[0].size": 16})
    task = neuro.tasks.get("2af", dt=spec.dt)
    _interrupted_equals_uninterrupted(tmp_path, lambda: _net(spec, backend="lif"), task, "bptt", iterations=6,
                                      batch_size=2)


def test_sigkilled_cli_run_resumes_bit_identical(tmp_path, monkeypatch):
    noisy = tmp_path / "noisy.toml"
    neuro.save_spec(_spec(16, noise=0.1), noisy)
    argv = ("train", noisy, "--iterations", 9, "--batch-size", 2, "--no-progress", "--out")

    def killed_run():
        monkeypatch.setattr(neuro, "train", functools.partial(neuro.training.train, checkpoint_every=4))
        _cli(*argv, tmp_path / "killed")
    _sigkilled(killed_run, neuro.training.History, "append", 6)     # SIGKILL after iteration 5's row
    assert nio.load_checkpoint(tmp_path / "killed" / "checkpoint.pt")["iteration"] == 4
    assert _cli(*argv, tmp_path / "killed") == 0
    assert _cli(*argv, tmp_path / "straight") == 0
    assert (tmp_path / "killed" / "history.csv").read_text() == (tmp_path / "straight" / "history.csv").read_text()
    assert len((tmp_path / "straight" / "history.csv").read_text().splitlines()) == 10


def _sigkilled(run, hook_cls, hook, after):
    """Run ``run()`` in a forked child that SIGKILLs itself right after the ``after``-th call of
    ``hook_cls.hook`` (a real kill: nothing after it runs, only what is on disk survives)."""
    pid = os.fork()
    if pid == 0:                                    # the child never returns into pytest
        try:
            original, calls = getattr(hook_cls, hook), []

            def dying(*a, **k):
                out = original(*a, **k)
                calls.append(1)
                if len(calls) == after:
                    os.kill(os.getpid(), signal.SIGKILL)
                return out
            setattr(hook_cls, hook, dying)
            run()
        except BaseException:                       # shown by the parent's assertion
            import traceback
            traceback.print_exc()
        finally:
            os._exit(3)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, status


def _counting(monkeypatch, cls, name):
    calls = []
    original = getattr(cls, name)
    monkeypatch.setattr(cls, name, lambda *a, **k: calls.append(1) or original(*a, **k))
    return calls


_EASY_2AF = dict(timing={"fixation": 100, "stimulus": 300, "decision": 100}, cohs=[51.2], sigma=0.1)


def _reward_net(dt, noise=0.0, seed=0):
    spec = neuro.NetworkSpec(dt=dt, n_inputs=3, n_outputs=3, populations=[neuro.spec.PopulationSpec(
        size=8, neuron=neuro.spec.NeuronSpec(tau=50.0, activation="tanh", noise_std=noise))],
        recurrent=neuro.spec.ConnectionSpec(gain=1.5), readout=neuro.spec.ConnectionSpec(init="uniform", bias=True))
    return neuro.compile(spec, "rate", seed=seed, dtype=torch.float64)


def test_reward_hebbian_resumes_bit_identical_after_sigkill(tmp_path, monkeypatch):
    from neuro.rules.reward_hebbian import RewardHebbian
    from neuro.tasks import envs
    env = lambda: envs.make("2af", 2, dt=20.0, dtype=torch.float64, **_EASY_2AF)
    rule = lambda: RewardHebbian(lr=1.0, max_dw=3e-2, trials_per_update=2, perturbation_prob=0.02,
                                 plastic=("W_rec", "W_out"))
    fit = lambda net, **kw: rule().fit(net, env(), iterations=7, seed=4, progress=False, **kw)
    full_net = _reward_net(20.0)
    full = fit(full_net)
    _sigkilled(lambda: fit(_reward_net(20.0), run_dir=tmp_path, checkpoint_every=3), RewardHebbian, "update", 5)
    assert nio.load_checkpoint(tmp_path / "checkpoint.pt")["iteration"] == 3
    rollouts = _counting(monkeypatch, RewardHebbian, "rollout")
    net = _reward_net(20.0)
    resumed = fit(net, run_dir=tmp_path, checkpoint_every=3)
    assert len(rollouts) == 4                     # iterations 3..6, not a silent restart
    # bit-identical, not close (repr: the shortest text that reads back as the same float; NaN == NaN)
    assert repr(resumed.state()) == repr(full.state()) and len(set(full.baseline)) > 2
    for (k, a), b in zip(full_net.state_dict().items(), net.state_dict().values()):
        assert torch.equal(a, b), k
    assert not torch.equal(full_net.W_rec, _reward_net(20.0).W_rec)      # it did learn something
    assert len((tmp_path / "trials.csv").read_text().splitlines()) == 1 + 14


def test_reinforce_resumes_bit_identical_after_sigkill(tmp_path, monkeypatch):
    from neuro.rules import reinforce
    from neuro.tasks import envs
    env = envs.make("2af", 2, dt=50, song=True, timing={"fixation": 100, "stimulus": 200, "decision": 200},
                    cohs=[51.2], sigma=0.1)
    rule = lambda: reinforce.Reinforce(lr=0.02, value_lr=0.02, value_size=8, trials_per_update=2)

    def train(net, r, **kw):                       # through neuro.train, as `neuro train` runs it
        return neuro.train(net, env, r, iterations=7, seed=5, progress=False, **kw)
    full_rule, full_net = rule(), _reward_net(50.0, noise=0.1)
    full = train(full_net, full_rule)
    _sigkilled(lambda: train(_reward_net(50.0, noise=0.1), rule(), run_dir=tmp_path, checkpoint_every=3),
               reinforce, "_step", 9)               # killed in the 5th iteration (two steps each)
    state = nio.load_checkpoint(tmp_path / "checkpoint.pt")
    assert state["iteration"] == 3 and state["optimizer"]["state"] and state["value_optimizer"]["state"]
    batches = _counting(monkeypatch, reinforce.Reinforce, "losses")
    net, resumed_rule = _reward_net(50.0, noise=0.1), rule()
    resumed = train(net, resumed_rule, run_dir=tmp_path, checkpoint_every=3)
    assert len(batches) == 4
    assert repr(resumed.state()) == repr(full.state())      # rewards, values, baselines: bit-identical
    assert len(set(full.value)) > 10
    for a, b in ((full_net, net), (full_rule.value_net, resumed_rule.value_net)):
        for (k, x), y in zip(a.state_dict().items(), b.state_dict().values()):
            assert torch.equal(x, y), k
    assert not torch.equal(full_net.W_rec, _reward_net(50.0, noise=0.1).W_rec)
    with pytest.raises(nio.CheckpointError, match="written by reinforce"):      # not another rule's folder
        neuro.train(_reward_net(50.0), env, neuro.rules.get("reward_hebbian"), iterations=8, run_dir=tmp_path,
                    progress=False)


# -- 6. divergence stops every backend ------------------------------------------------------------

def test_lif_training_stops_when_it_diverges(tmp_path):
    spec = neuro.load_spec("models/2af_lif.toml").replace(**{"populations[0].size": 16})
    net = _net(spec, backend="lif")
    task = neuro.tasks.get("2af", dt=spec.dt)
    with pytest.raises(neuro.TrainingError, match="diverge|grew beyond|non-finite") as info:
        neuro.train(net, task, neuro.rules.get("bptt"), iterations=10, lr=1e9, batch_size=2, run_dir=tmp_path,
                    progress=False)
    assert len(info.value.history) < 10
    w = nio.load_checkpoint(tmp_path / "checkpoint.pt")["model"]
    assert max(float(v.abs().max()) for v in w.values() if v is not None and v.is_floating_point()) < 1e3


def test_online_rule_divergence_is_an_error():
    spec = _spec(16)
    net = _net(spec)

    class Exploding:
        name = "exploding"

        def fit(self, net, task, **_):
            with torch.no_grad():
                net.trainable()["W_rec"].fill_(float("inf"))
            return neuro.training.History([0], [float("nan")], [0.0])

    with pytest.raises(neuro.TrainingError, match="diverged"):
        neuro.train(net, _romo(spec), Exploding(), iterations=1, progress=False)


# -- 7. a divergence rerun neither duplicates history rows nor keeps the stored lr --------------------

def test_divergence_rerun_keeps_history_and_takes_the_new_lr(tmp_path, small_spec_file, capsys):
    run = tmp_path / "run"
    args = ("train", small_spec_file, "--iterations", 6, "--batch-size", 2, "--no-progress", "--out", run)
    assert _cli(*args, "--lr", 1e9) == 2
    assert "iteration" in capsys.readouterr().err
    stored = nio.load_checkpoint(run / "checkpoint.pt")
    assert stored["optimizer"] is None or stored["optimizer"]["param_groups"][0]["lr"] == 1e-3
    assert _cli(*args, "--lr", 1e-3) == 0
    rows = [int(r["iteration"]) for r in csv.DictReader(open(run / "history.csv"))]
    assert rows == list(range(6))
    state = nio.load_checkpoint(run / "checkpoint.pt")
    assert state["optimizer"]["param_groups"][0]["lr"] == 1e-3


def test_resume_uses_the_given_lr_not_the_stored_one(tmp_path):
    spec = _spec(16)
    task = _romo(spec)
    neuro.train(_net(spec), task, neuro.rules.get("bptt"), iterations=2, lr=0.05, batch_size=2, run_dir=tmp_path,
                progress=False)
    neuro.train(_net(spec), task, neuro.rules.get("bptt"), iterations=3, lr=1e-4, batch_size=2, run_dir=tmp_path,
                progress=False)
    assert nio.load_checkpoint(tmp_path / "checkpoint.pt")["optimizer"]["param_groups"][0]["lr"] == 1e-4


# -- 9. a run folder without its checkpoint is refused ------------------------------------------------

@pytest.mark.parametrize("command", [("lyapunov", "--task", "none", "--steps", "5", "-k", "1"),
                                     ("export", "--format", "nir")])
def test_run_folder_without_checkpoint_is_refused(tmp_path, trained_run, capsys, command):
    run = trained_run
    (run / "checkpoint.pt").unlink()
    argv = [command[0], run, *command[1:]] + (["--out", tmp_path / "x.nir"] if command[0] == "export" else [])
    assert _cli(*argv) == 2
    err = capsys.readouterr().err
    assert "checkpoint.pt is missing" in err and len(err.strip().splitlines()) == 1


# -- 10. memory is estimated before anything is allocated ------------------------------------------

def test_oversized_network_is_refused_with_the_estimate(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("NEURO_MEMORY_LIMIT", "4G")
    spec = tmp_path / "huge.toml"
    spec.write_text((neuro.spec.dumps(_spec(16))).replace("size = 16", "size = 10000000"))
    assert _cli("train", spec, "--iterations", 1, "--no-progress", "--out", tmp_path / "r") == 2
    err = capsys.readouterr().err
    assert "GiB" in err and "limit of 4 GiB" in err and "NEURO_MEMORY_LIMIT" in err


def test_oversized_batch_is_refused_in_ensembles_and_train(monkeypatch):
    monkeypatch.setenv("NEURO_MEMORY_LIMIT", "2G")
    spec = _spec(16)
    with pytest.raises(neuro.training.MemoryEstimateError, match="limit of 2 GiB"):
        neuro.train_ensemble(spec, _romo(spec), "bptt", [{"seed": 0}], iterations=1, batch_size=100_000_000,
                             progress=False)
    with pytest.raises(neuro.training.MemoryEstimateError):
        neuro.train(_net(spec), _romo(spec), neuro.rules.get("bptt"), iterations=1, batch_size=100_000_000,
                    progress=False)
    monkeypatch.setenv("NEURO_MEMORY_LIMIT", "none")     # overridable
    assert neuro.training.memory_limit() is None


def test_memory_estimate_counts_activations_and_weights():
    # [T+1, E, B] x (8 N + 2 (n_in + n_out)) activations plus per-weight copies, 4 bytes a value
    got = neuro.training.estimate_memory(64, 1, 2, steps=139, batch_size=32, members=1)
    acts = 140 * 32 * (8 * 64 + 2 * 3) * 4
    weights = (64 * 64 + 64 * 5) * (6 * 4 + 8)
    assert got == acts + weights


# -- files are written with the user's umask --------------------------------------------------------

def test_atomic_writes_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        nio.atomic_write_text(tmp_path / "a.txt", "x")
        nio.atomic_torch_save({"w": torch.zeros(1)}, tmp_path / "c.pt")
        os.umask(0o027)
        nio.atomic_write_text(tmp_path / "b.txt", "x")
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "c.pt").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "b.txt").stat().st_mode & 0o777 == 0o640


# -- broken checkpoints name the file ----------------------------------------------------------------

@pytest.mark.parametrize("content", [b"", b"garbage, not a checkpoint", "truncate", pickle.dumps([1, 2])])
def test_broken_checkpoints_name_the_file(tmp_path, content):
    path = tmp_path / "checkpoint.pt"
    if content == "truncate":
        nio.atomic_torch_save({"w": torch.zeros(1000)}, path)
        path.write_bytes(path.read_bytes()[:300])
    else:
        path.write_bytes(content)
    with pytest.raises(nio.CheckpointError, match="checkpoint.pt") as info:
        nio.load_checkpoint(path)
    assert len(str(info.value).splitlines()) == 1


def test_broken_checkpoint_in_a_run_folder_is_a_clean_cli_error(small_spec_file, trained_run, capsys):
    run = trained_run
    (run / "checkpoint.pt").write_bytes(b"")
    assert _cli("lyapunov", run, "--task", "none", "--steps", 5, "-k", 1) == 2
    assert _train_cli(run, spec=small_spec_file) == 2
    err = capsys.readouterr().err
    assert err.count("checkpoint.pt is empty") == 2


# -- 5. Lyapunov exponents of an overflowing trajectory ----------------------------------------------

def test_lyapunov_of_an_overflowing_float32_trajectory_is_recomputed_in_float64():
    spec = neuro.models.load("romo_rate").replace(**{"recurrent.gain": 2.0})
    net = _net(spec)
    with pytest.warns(RuntimeWarning, match="overflowed at step"):
        res = neuro.lyapunov_spectrum(net, k=1, steps=1500, batch_size=2)
    assert "float64" in res.note
    ref = neuro.lyapunov_spectrum(net, k=1, steps=1500, batch_size=2, dtype=torch.float64)
    assert res.max_exponent == pytest.approx(ref.max_exponent, abs=1e-12)
    assert res.max_exponent > 0.1       # an exploding ReLU network: exponential growth, not decay
    steep = _net(spec.replace(**{"recurrent.gain": 40.0}))        # float64 overflows too (near step 250)
    with pytest.raises(neuro.lyapunov.NonFiniteError, match="non-finite at step"):
        neuro.lyapunov_spectrum(steep, k=1, steps=1500, batch_size=1, dtype=torch.float64)


def test_lyapunov_cli_says_when_it_recomputed(capsys):
    assert _cli("lyapunov", "romo_rate", "--gain", 2, "--task", "none", "--steps", 1200, "-k", 1,
                "--batch-size", 2, "--json") == 0
    captured = capsys.readouterr()
    assert "recomputed in float64" in captured.err
    assert json.loads(captured.out)["max_exponent"] > 0.1

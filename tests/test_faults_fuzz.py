"""Generated bad input — spec files, experiment files, command lines — ends in a one-line user error
(exit code 2, or a ValueError/SpecError subclass), never in a traceback from inside torch, numpy or
the kernel, and never hangs (an alarm bounds every case)."""
import json
import random
import signal
from contextlib import contextmanager

import pytest
import tomli_w

import neuro
import neuro.sweep
from neuro import cli
from neuro.spec import SpecError

BAD_VALUES = [None, "", "x", -1, 0, -0.5, 1e300, -1e300, float("nan"), float("inf"), True, False, [], {},
              [1, 2], {"a": 1}, 10**30, "1e3", 3.5]


@contextmanager
def _deadline(seconds):
    def stop(*_):
        raise TimeoutError(f"no answer within {seconds} s (a hang)")
    old = signal.signal(signal.SIGALRM, stop)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _paths(d, prefix=""):
    for k, v in d.items():
        p = f"{prefix}{k}"
        if isinstance(v, dict):
            yield from _paths(v, p + ".")
        elif isinstance(v, list) and v and isinstance(v[0], dict):
            for i, item in enumerate(v):
                yield from _paths(item, f"{p}[{i}].")
            yield p
        else:
            yield p


def _set(d, path, value, delete=False):
    keys = path.replace("]", "").replace("[", ".").split(".")
    node = d
    for k in keys[:-1]:
        node = node[int(k)] if isinstance(node, list) else node[k]
    last = keys[-1]
    if isinstance(node, list):
        node[int(last)] = value
    elif delete:
        node.pop(last, None)
    else:
        node[last] = value


def _write(path, data, rng):
    if path.suffix == ".json":
        path.write_text(json.dumps(data))
        return
    try:
        path.write_text(tomli_w.dumps(data))
    except (TypeError, ValueError):      # None has no TOML form: write it as JSON text (invalid TOML)
        path.write_text(json.dumps(data))


def _mutations(base, rng, n):
    paths = list(_paths(base))
    for i in range(n):
        data = json.loads(json.dumps(base))
        kind = rng.random()
        for _ in range(rng.randint(1, 3)):
            path = rng.choice(paths)
            try:
                if kind < 0.15:
                    _set(data, path, None, delete=True)
                elif kind < 0.25:
                    data[f"unknown_{rng.randint(0, 9)}"] = 1
                else:
                    _set(data, path, rng.choice(BAD_VALUES))
            except (TypeError, KeyError, IndexError, ValueError):   # a parent was replaced already
                pass
        yield i, data


def _check_error(exc, where):
    assert isinstance(exc, (ValueError, FileNotFoundError)), f"{where}: {type(exc).__name__}: {exc}"
    text = str(exc)
    assert text and len(text.splitlines()) == 1, f"{where}: {text!r}"


def test_generated_bad_spec_files(tmp_path):
    rng = random.Random(0)
    base = neuro.spec.to_dict(neuro.models.load("romo_rate"))
    outcomes = {"error": 0, "loaded": 0}
    for i, data in _mutations(base, rng, 200):
        path = tmp_path / f"s{i}.{'json' if i % 3 == 0 else 'toml'}"
        _write(path, data, rng)
        with _deadline(20):
            try:
                neuro.load_spec(path)
                outcomes["loaded"] += 1
            except Exception as exc:            # noqa: BLE001 - the assertion names what it was
                _check_error(exc, f"{path.name} {data}")
                assert isinstance(exc, SpecError), f"{path.name}: {type(exc).__name__}: {exc}"
                outcomes["error"] += 1
    for i in range(20):                     # bytes that are not a spec at all
        path = tmp_path / f"b{i}.toml"
        path.write_bytes(bytes(rng.randrange(256) for _ in range(rng.randint(0, 200))))
        with pytest.raises(SpecError) as info:
            neuro.load_spec(path)
        _check_error(info.value, path.name)
    assert outcomes["error"] > 150          # the mutations are mostly fatal; a few (e.g. 3.5 → gain) are fine


def test_generated_bad_experiment_files(tmp_path):
    rng = random.Random(1)
    base = {"name": "fz", "spec": "romo_rate", "tasks": ["romo"], "rules": ["bptt"], "gains": [1.0],
            "lrs": [1e-3], "seeds": 1, "iterations": 2, "batch_size": 2,
            "overrides": {"populations[0].size": 16}, "lr_selection": {"iterations": 1, "seeds": [5]}}
    errors = 0
    for i, data in _mutations(base, rng, 80):
        path = tmp_path / f"e{i}.toml"
        _write(path, data, rng)
        with _deadline(20):
            try:
                neuro.sweep.load_experiment(path)
            except Exception as exc:            # noqa: BLE001
                _check_error(exc, f"{path.name} {data}")
                errors += 1
    assert errors > 50


def _argv_cases(rng, spec_file, tmp_path):
    out = str(tmp_path / "out")
    bad = {
        "--iterations": ["0", "-3", "x", "1.5", ""],
        "--lr": ["0", "-1", "nan", "inf", "x"],
        "--batch-size": ["0", "-2", "x"],
        "--task": ["nosuch", "", "ROMO"],
        "--rule": ["nosuch", "reinforce", "reward_hebbian", ""],
        "--backend": ["lava", "", "gpu"],
        "--gain": ["-1", "nan", "inf", "x"],
        "--out": [str(spec_file), str(spec_file) + "/under", "/proc/neuro-fuzz"],
    }
    good = {"--iterations": "1", "--lr": "1e-3", "--batch-size": "2", "--task": "romo", "--rule": "bptt",
            "--backend": "rate", "--out": out}
    cases = []
    for _ in range(60):
        args = dict(good)
        for key in rng.sample(sorted(bad), rng.randint(1, 2)):
            args[key] = rng.choice(bad[key])
        cases.append(["train", str(spec_file), *[x for kv in args.items() for x in kv], "--no-progress"])
    others = [["lyapunov", str(spec_file), "-k", "0"], ["lyapunov", str(spec_file), "-k", "99"],
              ["lyapunov", str(spec_file), "--steps", "0", "--task", "none"],
              ["lyapunov", str(spec_file), "--task", "nosuch"], ["lyapunov", str(tmp_path / "missing.toml")],
              ["lyapunov", str(tmp_path), "--task", "none"], ["export", str(tmp_path), "--format", "nir"],
              ["export", "nosuch_model", "--format", "nir"], ["plot", str(tmp_path)],
              ["plot", str(spec_file)], ["sweep", str(spec_file)], ["sweep", str(tmp_path / "nope.toml")],
              ["train", str(tmp_path / "missing.toml")], ["train", "nosuch_model"],
              ["train", str(spec_file), "--seed", "x"], ["compare", "romo_rate", "--rule", "force"],
              ["compare", "romo_rate", "--task", "nosuch"], ["nosuchcommand"], ["train"], ["lyapunov"]]
    return cases + others


@pytest.mark.slow
def test_generated_bad_command_lines(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec_file = tmp_path / "small.toml"
    neuro.save_spec(neuro.models.load("romo_rate").replace(**{"populations[0].size": 16}), spec_file)
    rng = random.Random(2)
    for argv in _argv_cases(rng, spec_file, tmp_path):
        with _deadline(30):
            try:
                code = cli.main(argv)
            except SystemExit as e:             # argparse: usage errors exit 2
                code = e.code
        err = capsys.readouterr().err
        assert code == 2, f"{argv}: exit {code}\n{err[-800:]}"
        assert "Traceback" not in err, f"{argv}: {err[-800:]}"
        lines = [line for line in err.strip().splitlines() if "error" in line]
        assert len(lines) == 1, f"{argv}: {err[-800:]}"

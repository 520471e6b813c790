"""Every code block of the README runs as written, with iteration counts cut down.

Python blocks run in order in one namespace (a later block uses the names an earlier one made);
shell lines that call ``neuro`` run through the entry point.  ``bash install.sh`` and the test
command itself are what CI runs (``.ci/run``).  A block the README marks with
``<!-- not run: REASON -->`` on the line before it is skipped, with its reason shown.
"""
import re
import shlex
from pathlib import Path

import pytest

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()
SHORTER = [(r"\biterations=\d+", "iterations=2"), (r"--iterations \d+", "--iterations 2"),
           (r"\bsteps=\d+", "steps=10"), (r"\bwarmup=\d+", "warmup=2"), (r"\bk=(\d{2,})", "k=4"),
           (r"\brange\(\d+\)", "range(1)")]


def blocks():
    out = []
    for m in re.finditer(r"(?:^(?P<before>[^\n]*)\n)?^```(?P<lang>\w*)\n(?P<body>.*?)^```", README, re.M | re.S):
        skip = re.match(r"<!-- not run: (.*) -->", (m.group("before") or "").strip())
        line = README[:m.start("body")].count("\n")
        out.append((line, m.group("lang"), m.group("body"), skip.group(1) if skip else None))
    return out


def shorter(code: str) -> str:
    for pattern, repl in SHORTER:
        code = re.sub(pattern, repl, code)
    return code


def test_the_readme_has_code_blocks():
    langs = [lang for _, lang, _, _ in blocks()]
    assert "python" in langs and "bash" in langs


def test_every_python_block_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace = {}
    for line, lang, body, skip in blocks():
        if lang != "python" or skip:
            continue
        try:
            exec(compile(shorter(body), f"README.md:{line}", "exec"), namespace)
        except Exception as e:    # name the block
            pytest.fail(f"README.md line {line}: {type(e).__name__}: {e}")


def _neuro_lines():
    for line, lang, body, skip in blocks():
        if lang not in ("bash", "sh", "console") or skip:
            continue
        for cmd in body.splitlines():
            cmd = cmd.strip()
            if cmd.startswith("bash install.sh") or "pytest" in cmd or not cmd or cmd.startswith("#"):
                continue
            yield line, cmd


@pytest.mark.parametrize("line, cmd", list(_neuro_lines()))
def test_every_neuro_command_runs(line, cmd, tmp_path, monkeypatch):
    from neuro.cli import main
    monkeypatch.chdir(tmp_path)
    argv = shlex.split(shorter(cmd))
    assert argv[0] in ("neuro", ".venv/bin/neuro"), f"README.md line {line}: not a neuro command: {cmd}"
    assert main(argv[1:] + (["--no-progress"] if argv[1] in ("train", "compare") else [])) == 0

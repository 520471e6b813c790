"""Every code block of the README and of the documentation pages (docs/*.md) runs as written, with
iteration counts cut down.

Python blocks run in order in one namespace, the README's first and then each page's (a later block
uses the names an earlier one made);
shell lines that call ``neuro`` run through the entry point.  ``bash install.sh`` and the test
command itself are what CI runs (``.ci/run``).  A block the README marks with
``<!-- not run: REASON -->`` on the line before it is skipped, with its reason shown.
"""
import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = {path.relative_to(ROOT).as_posix(): path.read_text()
         for path in [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))}
SHORTER = [(r"\biterations=\d+", "iterations=2"), (r"--iterations \d+", "--iterations 2"),
           (r"\bsteps=\d+", "steps=10"), (r"\bwarmup=\d+", "warmup=2"), (r"\bk=(\d{2,})", "k=4"),
           (r"\brange\(\d+\)", "range(1)")]


def blocks():
    """(where: "page:line", language, code, reason to skip or None) of every fenced block."""
    out = []
    for page, text in PAGES.items():
        for m in re.finditer(r"(?:^(?P<before>[^\n]*)\n)?^```(?P<lang>\w*)\n(?P<body>.*?)^```", text, re.M | re.S):
            skip = re.match(r"<!-- not run: (.*) -->", (m.group("before") or "").strip())
            line = text[:m.start("body")].count("\n")
            out.append((f"{page}:{line}", m.group("lang"), m.group("body"), skip.group(1) if skip else None))
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
            exec(compile(shorter(body), line, "exec"), namespace)
        except Exception as e:    # name the block
            pytest.fail(f"{line}: {type(e).__name__}: {e}")


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
    assert argv[0] in ("neuro", ".venv/bin/neuro"), f"{line}: not a neuro command: {cmd}"
    assert main(argv[1:] + (["--no-progress"] if argv[1] in ("train", "compare") else [])) == 0

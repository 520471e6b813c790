"""Progress output: tqdm is imported in neuro/progress.py only, and a log gets a bounded number of lines."""
import ast
import io
import itertools
import pathlib

import tqdm.std

from neuro import progress

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _slow_clock(monkeypatch):
    """tqdm's clock advancing one second per reading: a 1000-iteration loop 'takes' well over 1000 s."""
    clock = itertools.count(0.0, 1.0)
    monkeypatch.setattr(tqdm.std, "time", lambda: float(next(clock)))
    return clock


def test_a_log_gets_a_bounded_number_of_plain_lines(monkeypatch):
    _slow_clock(monkeypatch)
    log = io.StringIO()                        # not a terminal
    bar = progress.tqdm(range(1000), desc="train", file=log, leave=False, mininterval=1.0)
    for i in bar:
        bar.set_postfix(loss=f"{1.0 / (i + 1):.4f}")     # as the training loops do, every iteration
    text = log.getvalue()
    lines = text.splitlines()
    assert "\r" not in text and "\x1b" not in text
    assert 2 <= len(lines) <= progress.LOG_LINES + 2
    assert lines[0].startswith("train:") and "0/1000" in lines[0]
    assert "1000/1000" in lines[-1] and "loss=0.0010" in lines[-1]


def test_stock_tqdm_would_redraw_on_every_iteration(monkeypatch):
    # the premise of the test above: with the same clock tqdm's own bar writes ~1000 redraws
    _slow_clock(monkeypatch)
    log = io.StringIO()
    bar = tqdm.std.tqdm(range(1000), file=log, leave=False, mininterval=1.0)
    for i in bar:
        bar.set_postfix(loss=f"{i}")
    assert log.getvalue().count("\r") > 900


def test_a_loop_of_unknown_length_writes_at_most_one_line_per_interval(monkeypatch):
    clock = _slow_clock(monkeypatch)
    log = io.StringIO()
    bar = progress.tqdm(iter(range(3000)), desc="sweep", file=log)
    for _ in bar:
        pass
    bar.close()
    lines = log.getvalue().splitlines()
    elapsed = next(clock)                      # seconds on tqdm's clock
    assert lines[-1].startswith("sweep: 3000it")
    assert 2 <= len(lines) <= 2 + elapsed / progress.LOG_INTERVAL


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_terminal_gets_tqdms_bar_redrawn_at_most_once_per_mininterval(monkeypatch):
    _slow_clock(monkeypatch)
    term = _Terminal()
    bar = progress.tqdm(range(1000), file=term, leave=False)
    for i in bar:
        bar.set_postfix(loss=f"{i}")
    redraws = term.getvalue().count("\r")
    assert progress.is_terminal(term) and not progress.is_terminal(io.StringIO())
    assert 100 < redraws < 1000 // progress.MININTERVAL + 5    # the bar moves, set_postfix forces nothing


def test_disabled_bars_write_nothing():
    log = io.StringIO()
    assert list(progress.tqdm(range(5), file=log, disable=True)) == list(range(5))
    assert log.getvalue() == ""


def test_tqdm_is_imported_only_by_neuro_progress():
    importers = []
    for folder in ("neuro", "backends", "tasks", "models"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                         [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
                if any(n.split(".")[0] == "tqdm" for n in names):
                    importers.append(str(path.relative_to(ROOT)))
    assert sorted(set(importers)) == ["neuro/progress.py"]

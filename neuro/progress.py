"""Progress bars for every loop in neuro: the one module that imports tqdm.

``tqdm(iterable, desc=..., disable=..., ...)`` takes tqdm's arguments and picks how to show them:

- on a terminal or in a notebook, tqdm's bar (a notebook widget in Jupyter), redrawn at most once
  every ``MININTERVAL`` seconds unless the caller asks for another interval;
- when the stream is not a terminal (a log file, a pipe, CI), plain lines instead of
  carriage-return redraws: at most one every ``LOG_INTERVAL`` seconds and, over a loop of known
  length, at most ``LOG_LINES`` of them plus the first and the last, whatever the loop's speed.

``set_postfix`` does not force a redraw (the next throttled redraw shows the new values), so a loop
that updates its postfix on every iteration costs no more output than one that does not.
"""
from __future__ import annotations

import math
import sys

from tqdm.auto import tqdm as _auto_tqdm
from tqdm.std import tqdm as _std_tqdm

MININTERVAL = 1.0     # s between redraws of a bar on a terminal
LOG_INTERVAL = 30.0   # s between lines in a log
LOG_LINES = 20        # most lines a loop of known length writes into a log (plus its first and last)

__all__ = ["tqdm", "MININTERVAL", "LOG_INTERVAL", "LOG_LINES", "is_terminal"]


def is_terminal(file) -> bool:
    """Whether ``file`` (None: stderr) is an interactive terminal."""
    file = sys.stderr if file is None else file
    try:
        return bool(file.isatty())
    except (AttributeError, ValueError):      # no isatty, or a closed stream
        return False


def _in_notebook() -> bool:
    """Whether tqdm chose its notebook widget (it decides when it is first imported)."""
    return any(c.__module__.startswith("tqdm.notebook") for c in _auto_tqdm.__mro__)


class _Bar(_auto_tqdm):
    """tqdm's bar on a terminal or in a notebook; postfix changes wait for the next redraw."""

    def set_postfix(self, ordered_dict=None, refresh=False, **kwargs):
        return super().set_postfix(ordered_dict, refresh=refresh, **kwargs)


class _LogLines(_std_tqdm):
    """One plain line per redraw, throttled by time and by the fraction of the loop done."""

    def __init__(self, iterable=None, *args, **kwargs):
        kwargs["mininterval"] = max(float(kwargs.get("mininterval") or 0.0), LOG_INTERVAL)
        kwargs["maxinterval"] = max(float(kwargs.get("maxinterval") or 0.0), kwargs["mininterval"])
        kwargs.pop("dynamic_ncols", None)
        kwargs.setdefault("ncols", 0)          # stats only: no bar drawn in characters
        total = kwargs.get("total")
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)
        if total and "miniters" not in kwargs:
            kwargs["miniters"] = max(1, math.ceil(total / LOG_LINES))
        self._last_line = None
        super().__init__(iterable, *args, **kwargs)

    def moveto(self, n):          # no cursor movement in a log
        pass

    def set_postfix(self, ordered_dict=None, refresh=False, **kwargs):
        return super().set_postfix(ordered_dict, refresh=refresh, **kwargs)

    def display(self, msg=None, pos=None):
        if msg == "":             # tqdm clearing a bar: a log line cannot be taken back
            return True
        line = str(self) if msg is None else msg
        if line != self._last_line:
            self.fp.write(line.rstrip() + "\n")
            self.fp.flush() if hasattr(self.fp, "flush") else None
            self._last_line = line
        return True

    def close(self):
        """Write the final state once (whatever ``leave`` says: a log keeps every line), nothing else."""
        if getattr(self, "disable", True):
            return
        if hasattr(self, "last_print_n") and self.n != self.last_print_n:
            self.display()
        self.disable = True
        self._decr_instances(self)


def tqdm(iterable=None, *args, **kwargs):
    """A progress bar over ``iterable`` with tqdm's arguments (see the module docstring)."""
    file = kwargs.get("file")
    if kwargs.get("disable") or is_terminal(file) or (file is None and _in_notebook()):
        kwargs.setdefault("mininterval", MININTERVAL)
        return _Bar(iterable, *args, **kwargs)
    return _LogLines(iterable, *args, **kwargs)

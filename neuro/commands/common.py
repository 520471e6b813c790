"""Argument helpers shared by CLI subcommands (they live in ``neuro.resolve``, below the CLI)."""
from __future__ import annotations

from neuro.resolve import fit_spec_to_task, load_spec_arg, task_for

__all__ = ["fit_spec_to_task", "load_spec_arg", "task_for"]

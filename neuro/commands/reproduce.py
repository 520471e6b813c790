"""``neuro reproduce NAME``: run a paper reproduction from ``neuro.studies``."""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

import neuro.studies


def _studies() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(neuro.studies.__path__) if m.name != "common")


def add_arguments(p: argparse.ArgumentParser) -> None:
    names = _studies()
    p.add_argument("study", choices=names, help="which study: " + ", ".join(names))
    # the chosen study adds its own options (--quick, --out, …)
    chosen = next((a for a in sys.argv[1:] if a in names), None)
    if chosen:
        importlib.import_module(f"neuro.studies.{chosen}").add_arguments(p)


def run(args) -> int:
    return importlib.import_module(f"neuro.studies.{args.study}").run(args)

"""``neuro reproduce NAME``: run a paper reproduction from ``neuro.studies``."""
from __future__ import annotations

import argparse
import importlib
import sys
import textwrap

import neuro.studies


def _studies() -> list[str]:
    from neuro.catalog import study_names         # a study's stage modules (STUDY_stage.py) are not studies
    return study_names()


def add_arguments(p: argparse.ArgumentParser) -> None:
    names = _studies()
    p.add_argument("study", choices=names, help="which study: " + ", ".join(names))
    # the chosen study adds its own options (--quick, --out, …)
    chosen = next((a for a in sys.argv[1:] if a in names), None)
    if chosen:
        importlib.import_module(f"neuro.studies.{chosen}").add_arguments(p)
    elif {"-h", "--help"} & set(sys.argv[1:]):
        p.epilog = study_options(names)
        p.formatter_class = argparse.RawDescriptionHelpFormatter


def study_options(names: list[str]) -> str:
    """Each study's options, as its own ``--help`` lists them (for ``neuro reproduce --help``)."""
    from neuro.cli import HelpFormatter
    parts = ["each study's options (neuro reproduce STUDY --help for one):"]
    for name in names:
        sp = argparse.ArgumentParser(prog=f"neuro reproduce {name}", add_help=False, formatter_class=HelpFormatter)
        importlib.import_module(f"neuro.studies.{name}").add_arguments(sp)
        fmt = sp._get_formatter()
        for group in sp._action_groups:
            fmt.add_arguments(group._group_actions)
        parts.append(f"\n{name}:\n" + textwrap.indent(fmt.format_help().rstrip(), "  "))
    return "\n".join(parts)


def run(args) -> int:
    return importlib.import_module(f"neuro.studies.{args.study}").run(args)

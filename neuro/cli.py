"""The ``neuro`` command line.

Subcommands live in their own modules, each with ``add_arguments(parser)`` and
``run(args) -> int``; this file only wires them up, importing a module when its
command runs.  A user error (bad spec, unknown task…) prints one line and exits 2.
"""
from __future__ import annotations

import argparse
import importlib
import sys

# command -> (module, one-line help)
COMMANDS = {
    "train": ("neuro.commands.train", "train a network spec on a task with a learning rule"),
    "reproduce": ("neuro.commands.reproduce", "reproduce a paper's study (initialization, similarity, …)"),
    "sweep": ("neuro.sweep", "run a declarative experiment grid (resumable)"),
    "lyapunov": ("neuro.commands.lyapunov", "Lyapunov spectrum of a (trained) network"),
    "export": ("neuro.commands.export", "export a network to NIR, Brian2 or Lava"),
    "compare": ("neuro.compare", "train the rate and LIF variants of one spec side by side"),
    "plot": ("neuro.commands.plot", "redraw the figures of a run folder"),
    "list": ("neuro.commands.list", "list the ready models, tasks, rules, backends, export formats and studies"),
}

USER_ERRORS = (ValueError, FileNotFoundError, NotImplementedError, ImportError, KeyError)


class HelpFormatter(argparse.HelpFormatter):
    """Every option's help ends with its default (unless it has none or already says it)."""

    def _get_help_string(self, action):
        text = action.help or ""
        if ("default" in text.lower() or action.default is None or action.default is False
                or action.default == argparse.SUPPRESS):
            return text
        if action.option_strings or action.nargs in ("?", "*"):
            return f"{text} (default: %(default)s)".strip()
        return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="neuro", formatter_class=HelpFormatter,
                                     description="One network spec, three backends: rate RNN "
                                     "(PyTorch), LIF (snnTorch), Lava; learning rules, Lyapunov analysis, flossing.")
    parser.add_argument("--version", action="version", version=f"neuro {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text, formatter_class=HelpFormatter)
        p.set_defaults(_module=module)
        if name in _requested():   # only import the module whose arguments are needed
            _module(module).add_arguments(p)
            for action in p._actions:      # an option without help still shows its default
                if (action.help is None and action.option_strings and action.default is not None
                        and action.default is not False):
                    action.help = "(default: %(default)s)"
    return parser


def _version() -> str:
    from neuro import __version__
    return __version__


def _requested() -> set[str]:
    return {a for a in sys.argv[1:] if a in COMMANDS}


def _module(name: str):
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name and e.name.startswith("neuro"):
            raise SystemExit(f"neuro: this command is not available in this version ({name} is missing)")
        raise


def main(argv: list[str] | None = None) -> int:
    import warnings
    # gymnasium warns about NeuroGym's environment metadata on every task: nothing a user can act on
    warnings.filterwarnings("ignore", message=".*environment creator metadata.*")
    if argv is not None:
        sys.argv = [sys.argv[0]] + list(argv)
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:])
    if not args.command:
        parser.print_help()
        return 0
    try:
        return int(_module(args._module).run(args) or 0)
    except USER_ERRORS as e:
        print(f"neuro {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""``neuro list models|tasks|rules|backends|exports|studies``: what is available by name, one line each."""
from __future__ import annotations

import argparse

from neuro import catalog


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("kind", nargs="?", choices=sorted(catalog.KINDS), default=None,
                   help="what to list (default: everything)")


def run(args) -> int:
    kinds = [args.kind] if args.kind else list(catalog.KINDS)
    for i, kind in enumerate(kinds):
        entries = catalog.KINDS[kind]()
        if len(kinds) > 1:
            print(("\n" if i else "") + f"{kind}:")
        width = max(len(n) for n in entries)
        for name, text in entries.items():
            print(f"  {name:<{width}}  {text}")
    return 0

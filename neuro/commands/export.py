"""``neuro export RUN_OR_SPEC --format nir --out net.nir``: hand a network to another simulator."""
from __future__ import annotations

import argparse

import neuro
from neuro.runs import load_network


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("network", help="a run folder (trained weights), a spec file or a ready model name")
    p.add_argument("--format", required=True, choices=sorted(neuro.compiler.EXPORTERS))
    p.add_argument("--out", default=None, help="output file (NIR: .nir)")


def run(args) -> int:
    net = load_network(args.network)
    result = neuro.export(net, args.format, args.out)
    print(f"exported to {args.format}" + (f": {args.out}" if args.out else f": {result!r}"))
    return 0

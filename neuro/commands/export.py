"""``neuro export RUN_OR_SPEC --format nir|brian2|lava [--out FILE]``: hand a trained LIF network to another tool.

- ``nir`` writes the NIR graph (HDF5; default ``network.nir``, in the run folder for a run);
- ``brian2`` writes a standalone Brian2 script (default ``network_brian2.py``): run it with
  ``python FILE --inputs x.npy`` to simulate the network in Brian2;
- ``pynn`` writes a standalone PyNN script (default ``network_pynn.py``): ``python FILE pyNN.nest 1000``
  builds the network on that simulator (PyNN's Brian2 backend when none is named) and runs it for 1 s;
- ``lava`` builds the network in Lava (``--precision float|fixed``) to check that it is
  accepted; Lava has no file format, so ``--out`` is refused.

Every export prints a short summary (neurons, synapses, dt, quantization) and what it refused.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import neuro
from neuro import artefacts

DEFAULT_NAMES = {"nir": "network.nir", "brian2": "network_brian2.py", "pynn": "network_pynn.py"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("network", help="a run folder (trained weights), a spec file or a ready model name")
    p.add_argument("--format", required=True, choices=sorted(neuro.compiler.EXPORTERS))
    p.add_argument("--out", default=None, help="output file (default: network.nir / network_brian2.py / network_pynn.py, in the "
                   "run folder for a run, else here); refused for lava, which has no file format")
    p.add_argument("--precision", default="float", choices=["float", "fixed"],
                   help="lava only: floating point or Loihi fixed point")
    p.add_argument("--weight-bits", type=int, default=None,
                   help="lava only: recurrent weight bits (fixed point: 8 unless given)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")


def run(args) -> int:
    from neuro.runfolder import resolve
    fmt = args.format
    if fmt == "lava" and args.out is not None:
        raise ValueError("--out is refused for lava: Lava builds processes in memory and has no file format; "
                         "export with --format nir for a file, or load the run with neuro.load_run and call "
                         "neuro.export(run.net, 'lava')")
    if fmt != "lava" and (args.precision != "float" or args.weight_bits is not None):
        raise ValueError(f"--precision and --weight-bits apply to lava only (format {fmt} keeps float64 weights)")
    if args.out is not None and not Path(args.out).parent.is_dir():
        raise ValueError(f"cannot write {args.out}: the folder {Path(args.out).parent} does not exist")
    net, run_info = resolve(args.network)
    refused, quant_detail = [], None
    if fmt == "nir":
        out = Path(args.out) if args.out else _default_out(args, run_info)
        neuro.export(net, "nir", out)
    elif fmt in ("brian2", "pynn"):
        out = Path(args.out) if args.out else _default_out(args, run_info)
        neuro.export(net, fmt, out)
    else:
        out = None
        options = {"precision": args.precision, "progress": False}
        if args.weight_bits is not None:
            options["weight_bits"] = args.weight_bits
        lava_net = neuro.export(net, "lava", None, **options)
        q = lava_net.quantization
        if q is not None:
            quant_detail = (f"threshold mantissa {q.vth_mant}, weight exponent {q.weight_exp}, "
                            f"{q.sign_mode} weights")
        refused.append("a file: Lava has no file format (use --format nir to write one)")
    s = artefacts.summary(net, fmt, precision=args.precision, weight_bits=args.weight_bits)
    if quant_detail:
        s["quantization"] += f" ({quant_detail})"
    s["file"] = None if out is None else str(out)
    s["source"] = str(args.network) + (" (trained weights)" if run_info is not None else " (fresh weights)")
    s["refused"] = refused
    if args.json:
        print(json.dumps(s))
        return 0
    where = f"wrote {out}" if out is not None else ("accepted by the Lava backend (its processes are built when "
                                                    "it runs; nothing written)")
    print(f"exported {s['source']} to {fmt}: {where}")
    for line in artefacts.summary_lines(s):
        print("  " + line)
    for r in refused:
        print(f"  refused: {r}")
    if fmt == "brian2":
        print(f"  run it: python {out} --inputs x.npy   (x: [T, B, {s['inputs']}])")
    if fmt == "pynn":
        print(f"  run it: python {out} pyNN.brian2 1000   (simulator module, duration in ms; no input)")
    return 0


def _default_out(args, run_info) -> Path:
    folder = run_info.folder if run_info is not None else Path(".")
    return folder / DEFAULT_NAMES[args.format]

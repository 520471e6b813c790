"""``neuro lyapunov RUN_OR_SPEC --task romo -k 10``: the Lyapunov spectrum along task-driven trajectories."""
from __future__ import annotations

import argparse
import json

import numpy as np

import neuro
from neuro.commands.common import task_for
from neuro.runs import load_network


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("network", help="a run folder (trained weights), a spec file or a ready model name")
    p.add_argument("--task", default="romo", help="drive the network with this task's inputs; 'none' = autonomous")
    p.add_argument("-k", type=int, default=10, help="number of leading exponents")
    p.add_argument("--steps", type=int, default=1000, help="time steps (autonomous) ")
    p.add_argument("--batch-size", type=int, default=8, help="trajectories to average over")
    p.add_argument("--gain", type=float, default=None, help="override the recurrent gain (fresh networks)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args) -> int:
    net = load_network(args.network)
    if args.gain is not None:
        spec = net.spec.replace(**{"recurrent.gain": args.gain})
        net = neuro.compile(spec, net.backend, neuro.init_weights(spec, args.seed))
    inputs = None
    if args.task != "none":
        inputs = task_for(args.task, net.spec).batch(args.batch_size, seed=args.seed).inputs
    import warnings
    with warnings.catch_warnings():      # the note is printed below, once
        warnings.simplefilter("ignore", RuntimeWarning)
        res = neuro.lyapunov_spectrum(net, inputs=inputs, k=args.k, steps=args.steps, batch_size=args.batch_size,
                                      seed=args.seed)
    if res.note:
        import sys
        print(f"note: {res.note}", file=sys.stderr)
    exps = np.asarray(res.exponents, dtype=float)
    if args.json:
        print(json.dumps({"exponents_per_step": exps.tolist(), "max_exponent": float(res.max_exponent),
                          "per_second": np.asarray(res.per_second, dtype=float).tolist()}))
    else:
        print(f"max exponent {float(res.max_exponent):+.4f} per step ({float(res.max_exponent) * 1000 / net.spec.dt:+.2f} /s)")
        print("leading exponents per step: " + " ".join(f"{e:+.4f}" for e in exps))
    return 0

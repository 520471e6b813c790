"""``neuro lyapunov RUN_OR_SPEC -k 10``: the Lyapunov spectrum along task-driven trajectories.

A run folder gives the trained network with the task, dt and backend it was trained with;
a spec file or ready model name gives a fresh network (sized for ``--task``).
"""
from __future__ import annotations

import argparse
import json

import numpy as np

import neuro
from neuro.commands.common import fit_spec_to_task, load_spec_arg, task_for

SURROGATE_NOTE = ("LIF network: the spectrum of the surrogate (pseudo-)Jacobian, where the spike's derivative "
                  "is replaced by the surrogate's; not the exponents of the discontinuous spiking map")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("network", help="a run folder (trained weights), a spec file or a ready model name")
    p.add_argument("--task", default=None, help="drive the network with this task's inputs; 'none' = autonomous "
                   "(default: the run's task; romo for a spec)")
    p.add_argument("-k", type=int, default=10, help="number of leading exponents")
    p.add_argument("--steps", type=int, default=1000, help="time steps (autonomous)")
    p.add_argument("--batch-size", type=int, default=8, help="trajectories to average over")
    p.add_argument("--gain", type=float, default=None, help="override the recurrent gain (fresh weights)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def _network(args):
    """(net, task name or 'none') for the NETWORK argument (see the module docstring)."""
    from neuro.runfolder import check_network_arg, default_backend, load_run
    path = check_network_arg(args.network)
    if path.is_dir():
        run = load_run(path, task=False)
        task_name = args.task or run.task_name or "none"
        net = run.net
        if args.gain is not None:
            spec = net.spec.replace(**{"recurrent.gain": args.gain})
            net = neuro.compile(spec, run.backend, neuro.init_weights(spec, args.seed))
        return net, task_name
    spec = load_spec_arg(args.network)
    if args.gain is not None:
        spec = spec.replace(**{"recurrent.gain": args.gain})
    task_name = args.task or "romo"
    if task_name != "none":
        spec = fit_spec_to_task(spec, task_for(task_name, spec))
    return neuro.compile(spec, default_backend(spec), neuro.init_weights(spec, args.seed)), task_name


def run(args) -> int:
    net, task_name = _network(args)
    spec = net.spec
    inputs = None
    if task_name != "none":
        task = task_for(task_name, spec)
        if task.n_inputs != spec.n_inputs:
            raise ValueError(f"task {task_name!r} has {task.n_inputs} inputs, the network {spec.n_inputs}; "
                             f"choose the run's own task or --task none")
        inputs = task.batch(args.batch_size, seed=args.seed).inputs
    import warnings
    with warnings.catch_warnings():      # the note is printed below, once
        warnings.simplefilter("ignore", RuntimeWarning)
        res = neuro.lyapunov_spectrum(net, inputs=inputs, k=args.k, steps=args.steps, batch_size=args.batch_size,
                                      seed=args.seed)
    if res.note:
        import sys
        print(f"note: {res.note}", file=sys.stderr)
    exps = np.asarray(res.exponents, dtype=float)
    per_second = exps * 1000.0 / spec.dt
    surrogate = getattr(net, "backend", None) == "lif" or spec.neuron.model == "lif"
    if args.json:
        print(json.dumps({"exponents_per_step": exps.tolist(), "max_exponent": float(res.max_exponent),
                          "per_second": per_second.tolist(), "dt_ms": spec.dt, "task": task_name,
                          "backend": getattr(net, "backend", None), "surrogate": surrogate}))
    else:
        print(f"{spec.name} ({getattr(net, 'backend', '?')}, dt {spec.dt:g} ms), driven by "
              f"{'no input (autonomous)' if task_name == 'none' else 'task ' + task_name}")
        print(f"max exponent {float(res.max_exponent):+.4f} per step ({float(per_second[0]):+.2f} /s)")
        print("leading exponents per step: " + " ".join(f"{e:+.4f}" for e in exps))
        if surrogate:
            print(f"note: {SURROGATE_NOTE}")
    return 0

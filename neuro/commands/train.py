"""``neuro train SPEC --task romo --rule eprop --gain 0.2``: one training run into a run folder."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import neuro
from neuro.commands.common import check_out_dir, fit_spec_to_task, load_spec_arg, task_for

# arguments that define a run: a rerun into the same folder must repeat them to resume it
# (--iterations extends a run, --lr continues it with another learning rate)
RUN_KEYS = ("task", "rule", "backend", "batch_size", "seed")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", help="spec file (.toml/.json) or a ready model name, e.g. romo_rate")
    p.add_argument("--task", default="romo", help=f"one of {neuro.tasks.names()}")
    p.add_argument("--rule", default="eprop", help=f"one of {neuro.rules.names()}")
    p.add_argument("--backend", default=None, choices=["rate", "lif"],
                   help="default: the spec's neuron model (lif for LIF neurons, else rate)")
    p.add_argument("--gain", type=float, default=None, help="recurrent gain g (W_rec ~ N(0, g²/N))")
    p.add_argument("--iterations", type=int, default=500)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="run folder (default runs/train-TASK-RULE-gG-sSEED); a rerun with "
                   "the same spec, task, rule, backend, batch size and seed resumes it (other arguments are refused)")
    p.add_argument("--no-progress", action="store_true")


def _check_same_run(out: Path, spec, config: dict) -> None:
    """Refuse to resume a folder that holds another run (before anything in it is rewritten)."""
    has_run = any((out / f).exists() for f in ("checkpoint.pt", "history.csv", "spec.toml", "args.json"))
    if not has_run:
        return
    fresh = f"use another --out, or delete {out} to start afresh"
    try:
        old_spec = neuro.load_spec(out / "spec.toml")
        old = json.loads((out / "args.json").read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"{out} holds files of a run but its spec.toml/args.json cannot be read "
                         f"({str(e).splitlines()[0][:120]}); {fresh}") from None
    diffs = [f"{k}: {old.get(k)!r} there, {config[k]!r} now" for k in RUN_KEYS if old.get(k) != config[k]]
    if old_spec != spec:
        a, b = neuro.spec.to_dict(old_spec), neuro.spec.to_dict(spec)
        diffs.append("spec: " + ", ".join(k for k in a if a[k] != b[k]) + " differ")
    if diffs:
        raise ValueError(f"{out} holds another run ({'; '.join(diffs)}); {fresh}")


def run(args) -> int:
    if args.iterations < 1:
        raise ValueError(f"--iterations must be >= 1, got {args.iterations}")
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {args.batch_size}")
    if not (args.lr > 0 and args.lr < float("inf")):
        raise ValueError(f"--lr must be a finite number > 0, got {args.lr}")
    spec = load_spec_arg(args.spec)
    if args.gain is not None:
        spec = spec.replace(**{"recurrent.gain": args.gain})
    task = task_for(args.task, spec)
    spec = fit_spec_to_task(spec, task)
    rule = neuro.rules.get(args.rule)
    if hasattr(rule, "fit") and not hasattr(rule, "loss_and_gradients") and args.rule in ("reinforce",
                                                                                          "reward_hebbian"):
        from neuro.tasks.envs import as_env
        try:
            as_env(task, 1)
        except TypeError:
            raise ValueError(f"rule {args.rule} learns from rewards; task {args.task!r} is a supervised task "
                             f"without a reward environment (use a gradient rule such as eprop or bptt)") from None
    from neuro.runfolder import default_backend
    args.backend = args.backend or default_backend(spec)
    if hasattr(rule, "loss_and_gradients"):      # before any weights are drawn
        from neuro.training import check_run_memory
        check_run_memory(spec, task, args.batch_size, 1, what="this run")
    # compile before the run folder exists: a refused spec/backend pair leaves nothing behind
    net = neuro.compile(spec, args.backend, neuro.init_weights(spec, args.seed))
    out = Path(args.out or f"runs/train-{args.task}-{args.rule}-g{spec.recurrent.gain}-s{args.seed}")
    config = {k: v for k, v in vars(args).items() if not k.startswith("_")}
    fresh = not out.exists()
    check_out_dir(out)
    try:
        _check_same_run(out, spec, config)
        check_out_dir(out, need_bytes=_checkpoint_bytes(spec))
        from neuro.io import atomic_write_text
        atomic_write_text(out / "spec.toml", neuro.spec.dumps(spec))
        atomic_write_text(out / "args.json", json.dumps(config, indent=2))
        history = neuro.train(net, task, rule, iterations=args.iterations, lr=args.lr, batch_size=args.batch_size,
                              seed=args.seed, run_dir=out, progress=not args.no_progress,
                              desc=f"{args.task} {args.rule} g={spec.recurrent.gain}")
    except neuro.TrainingError as e:
        import sys
        print(f"neuro train: error: {e}. Rerun with a lower --lr and the same --out to continue from there",
              file=sys.stderr)
        return 2
    except BaseException:
        if fresh and not (out / "checkpoint.pt").exists():   # refused before any training: leave nothing
            import shutil
            shutil.rmtree(out, ignore_errors=True)
        raise
    if len(history.loss) == 0:
        print(f"no iterations were run; run folder {out}")
        return 0
    from neuro import plots
    plots.learning_curves({f"{args.task} / {args.rule}": {f"g = {spec.recurrent.gain}": [history.loss]}},
                          out / "learning_curve.png")
    tail = history.loss[-20:]
    acc = [a for a in history.accuracy[-20:] if a == a]
    print(f"final loss {sum(tail) / len(tail):.4f}, accuracy {sum(acc) / max(len(acc), 1):.3f} "
          f"(mean of the last {len(tail)} iterations); run folder {out}")
    return 0


def _checkpoint_bytes(spec) -> int:
    """Room a checkpoint and the tables need: weights, Adam moments, history (with a margin)."""
    n, i, o = spec.n_hidden, spec.n_inputs, spec.n_outputs
    return 3 * 4 * (n * n + n * (i + o + 2)) * 2 + (1 << 20)

"""``neuro train SPEC --task romo --rule eprop --gain 0.2``: one training run into a run folder."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import neuro
from neuro.commands.common import fit_spec_to_task, load_spec_arg, task_for


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", help="spec file (.toml/.json) or a ready model name, e.g. romo_rate")
    p.add_argument("--task", default="romo", help=f"one of {neuro.tasks.names()}")
    p.add_argument("--rule", default="eprop", help=f"one of {neuro.rules.names()}")
    p.add_argument("--backend", default="rate", choices=["rate", "lif"])
    p.add_argument("--gain", type=float, default=None, help="recurrent gain g (W_rec ~ N(0, g²/N))")
    p.add_argument("--iterations", type=int, default=500)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="run folder (default runs/train-TASK-RULE-gG-sSEED); reruns resume")
    p.add_argument("--no-progress", action="store_true")


def run(args) -> int:
    spec = load_spec_arg(args.spec)
    if args.gain is not None:
        spec = spec.replace(**{"recurrent.gain": args.gain})
    task = task_for(args.task, spec)
    spec = fit_spec_to_task(spec, task)
    rule = neuro.rules.get(args.rule)
    out = Path(args.out or f"runs/train-{args.task}-{args.rule}-g{spec.recurrent.gain}-s{args.seed}")
    out.mkdir(parents=True, exist_ok=True)
    neuro.save_spec(spec, out / "spec.toml")
    (out / "args.json").write_text(json.dumps({k: v for k, v in vars(args).items() if not k.startswith("_")},
                                              indent=2))
    net = neuro.compile(spec, args.backend, neuro.init_weights(spec, args.seed))
    history = neuro.train(net, task, rule, iterations=args.iterations, lr=args.lr, batch_size=args.batch_size,
                          seed=args.seed, run_dir=out, progress=not args.no_progress,
                          desc=f"{args.task} {args.rule} g={spec.recurrent.gain}")
    from neuro import plots
    plots.learning_curves({f"{args.task} / {args.rule}": {f"g = {spec.recurrent.gain}": [history.loss]}},
                          out / "learning_curve.png")
    tail = history.loss[-20:]
    acc = [a for a in history.accuracy[-20:] if a == a]
    print(f"final loss {sum(tail) / len(tail):.4f}, accuracy {sum(acc) / max(len(acc), 1):.3f} "
          f"(mean of the last {len(tail)} iterations); run folder {out}")
    return 0

"""``neuro reproduce reward``: learning from reward alone (the review's Sect. 4).

Trains rate networks with Miconi 2017's reward-modulated Hebbian rule and with
REINFORCE + value network (Song, Yang & Wang 2017) on 2AF and on delayed XOR
(Miconi's delayed non-match-to-sample), several seeds each, and writes into the
run folder: ``trials.csv`` (one row per trial: reward, baseline, value
prediction, correct), ``summary.csv`` / ``summary.md`` (final % correct and trials
to 80 % correct, mean ± std over seeds), ``learning_curves.png`` and
``rewards_baselines.png`` (per-trial reward, running baseline R̄ and value
prediction of one seed).  ``--quick`` is a reduced version (2AF only, 3 seeds).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import neuro
from neuro.io import atomic_write_text
from neuro.studies import common

EASY_2AF = dict(timing={"fixation": 100, "stimulus": 300, "decision": 300}, cohs=[25.6, 51.2], sigma=0.1)


def _spec(n_inputs, n_actions, size, dt, tau, noise, readout_trainable=True):
    return neuro.NetworkSpec(
        dt=dt, n_inputs=n_inputs, n_outputs=n_actions,
        populations=[neuro.spec.PopulationSpec(size=size, neuron=neuro.spec.NeuronSpec(
            tau=tau, activation="tanh", noise_std=noise))],
        recurrent=neuro.spec.ConnectionSpec(gain=1.5 if not readout_trainable else 1.0),
        readout=neuro.spec.ConnectionSpec(init="uniform", bias=readout_trainable, trainable=readout_trainable))


def conditions(quick: bool) -> list[dict]:
    """(rule, task) runs: the env, the network and the rule's options."""
    runs = [
        {"rule": "reinforce", "task": "2af", "env": dict(dt=50, song=True, **EASY_2AF),
         "net": dict(size=64, dt=50, tau=100, noise=0.1), "iterations": 400 if quick else 1500,
         "options": dict(value_size=64)},
        {"rule": "reward_hebbian", "task": "2af",
         "env": dict(dt=10, timing={"fixation": 100, "stimulus": 300, "decision": 100}, cohs=[51.2], sigma=0.1),
         "net": dict(size=100, dt=10, tau=30, noise=0.0, readout_trainable=False),
         "iterations": 400 if quick else 1500, "options": dict(lr=1.0, max_dw=3e-3, trials_per_update=8, greedy=True)},
    ]
    if not quick:
        runs += [
            {"rule": "reinforce", "task": "xor", "env": dict(dt=20, song=True),
             "net": dict(size=100, dt=20, tau=100, noise=0.1), "iterations": 3000, "options": dict()},
            {"rule": "reward_hebbian", "task": "xor", "env": dict(dt=1),     # Miconi's own setup
             "net": dict(size=200, dt=1, tau=30, noise=0.0, readout_trainable=False),
             "iterations": 10000, "options": dict()},
        ]
    return runs


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quick", action="store_true", help="2AF only, 3 seeds, a few minutes on 2 cores")
    p.add_argument("--out", default=None, help="run folder (default runs/reward[-quick])")
    p.add_argument("--seeds", type=int, default=None, help="independent runs per condition (default 3 / 5)")
    p.add_argument("--no-progress", action="store_true")


def run(args) -> int:
    out = Path(args.out or ("runs/reward-quick" if args.quick else "runs/reward"))
    seeds = args.seeds or (3 if args.quick else 5)
    study(conditions(args.quick), seeds, out, progress=not args.no_progress)
    print(f"results in {out}/ (summary.md, summary.csv, trials.csv, *.png)")
    return 0


def train_one(cond: dict, seed: int, progress: bool = True):
    from neuro.tasks import envs
    rule = neuro.rules.get(cond["rule"], **cond["options"])
    env = envs.make(cond["task"], getattr(rule, "trials_per_update", 1), **cond["env"])
    spec = _spec(env.n_inputs, env.n_actions, **cond["net"])
    net = neuro.compile(spec, "rate", seed=seed)
    return rule.fit(net, env, iterations=cond["iterations"], seed=seed, progress=progress)


def study(conds: list[dict], seeds: int, out: Path, progress: bool = True) -> list[dict]:
    out.mkdir(parents=True, exist_ok=True)
    rows, summary, curves, example = [], [], {}, {}
    for cond in conds:
        key = f"{cond['task']} / {cond['rule']}"
        histories = [train_one(cond, s, progress) for s in range(seeds)]
        for s, h in enumerate(histories):
            rows.extend({"task": cond["task"], "rule": cond["rule"], "seed": s, "trial": i, "reward": r,
                         "baseline": b, "value": v, "correct": c}
                        for i, (r, b, v, c) in enumerate(zip(h.reward, h.baseline, h.value, h.correct)))
        final = [h.fraction_correct(500) for h in histories]
        crit = [h.trials_to_criterion(0.8, 200) for h in histories]
        reached = [c for c in crit if c is not None]
        summary.append({"task": cond["task"], "rule": cond["rule"], "seeds": seeds,
                        "trials": histories[0].trials,
                        "final_correct_mean": float(np.mean(final)), "final_correct_std": float(np.std(final)),
                        "trials_to_80_mean": float(np.mean(reached)) if reached else float("nan"),
                        "trials_to_80_std": float(np.std(reached)) if reached else float("nan"),
                        "reached_80": f"{len(reached)}/{seeds}"})
        curves[key] = {"fraction correct": [_running(h.correct, 200) for h in histories]}
        example[key] = histories[0]
        common.write_rows(out / "trials.csv", rows)
        common.write_rows(out / "summary.csv", summary)
    atomic_write_text(out / "summary.md", _markdown(summary))
    _plots(curves, example, out)
    return summary


def _running(x, w):
    x = np.asarray(x, dtype=float)
    return list(np.convolve(x, np.ones(w) / w, mode="valid")) if len(x) >= w else list(x)


def _markdown(summary: list[dict]) -> str:
    lines = ["| task | rule | trials | % correct (last 500 trials) | trials to 80 % | seeds reaching 80 % |",
             "|---|---|---|---|---|---|"]
    for s in summary:
        lines.append(f"| {s['task']} | {s['rule']} | {s['trials']} | "
                     f"{100 * s['final_correct_mean']:.1f} ± {100 * s['final_correct_std']:.1f} | "
                     f"{s['trials_to_80_mean']:.0f} ± {s['trials_to_80_std']:.0f} | {s['reached_80']} |")
    return "\n".join(lines) + "\n"


def _plots(curves: dict, example: dict, out: Path) -> None:
    from neuro import plots
    plt = plots.plt
    fig, axes = plt.subplots(1, len(curves), figsize=(4.2 * len(curves), 3.2), squeeze=False)
    for ax, (key, lines) in zip(axes[0], curves.items()):
        for c in lines["fraction correct"]:
            ax.plot(c, lw=1)
        ax.axhline(0.5, color="gray", ls=":", lw=1)
        ax.set(title=key, xlabel="trial", ylabel="fraction correct (running 200)", ylim=(0, 1.02))
    fig.tight_layout()
    fig.savefig(out / "learning_curves.png", dpi=120)
    plt.close(fig)
    fig, axes = plt.subplots(1, len(example), figsize=(4.2 * len(example), 3.2), squeeze=False)
    for ax, (key, h) in zip(axes[0], example.items()):
        ax.plot(_running(h.reward, 50), label="reward", lw=1)
        ax.plot(_running(h.baseline, 50), label="baseline (R̄ or v at t=0)", lw=1)
        if not np.all(np.isnan(h.value)):
            ax.plot(_running(h.value, 50), label="value before outcome", lw=1)
        ax.set(title=key, xlabel="trial", ylabel="running mean over 50 trials")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "rewards_baselines.png", dpi=120)
    plt.close(fig)


__all__ = ["add_arguments", "run", "study", "conditions", "train_one"]

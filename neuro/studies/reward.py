"""``neuro reproduce reward``: learning from reward alone — REINFORCE with a value network (Song,
Yang & Wang 2017) and reward-modulated Hebbian learning (Miconi 2017) on 2AF and delayed XOR.

Trains networks with Miconi 2017's reward-modulated Hebbian rule and with
REINFORCE + value network (Song, Yang & Wang 2017) on 2AF and on delayed XOR
(Miconi's delayed non-match-to-sample), several seeds each, and the Hebbian
rule on 2AF on the LIF backend too; writes into the run folder: ``trials.csv``
(one row per trial: reward, baseline, value prediction, correct),
``seeds.csv`` (each seed's % correct in its first and last 500 trials),
``summary.csv`` / ``summary.md`` (final % correct and trials to 80 % correct,
mean ± std over seeds), ``learning_curves.png`` and ``rewards_baselines.png``
(per-trial reward, running baseline R̄ and value prediction of one seed).
``--quick`` is a reduced version (2AF only, 3 seeds, rate networks).

Delayed XOR, what differs from Miconi's setup and why.  Miconi: dt = 1 ms,
τ = 30 ms, 200 units, one output unit whose continuous error over the last
200 ms is the (negative) reward, one trial per update, 10000-20000 trials per
run.  Here:

* Both rules play the same env: Miconi's timing (200-ms stimuli at 0 and
  400 ms, answer in the last 200 ms of a 1000-ms trial) and no fixation
  requirement (``abort`` reward 0; Miconi has none — with NeuroGym's -0.1 per
  broken-fixation step, or Song et al.'s fixation rule, the reward was
  dominated by fixation and both rules learned to never answer).  % correct is
  the env's judgement of the first non-fixation argmax in the decision period.
* ``reward_hebbian``: Miconi's setup — dt = 1 ms, τ = 30 ms, 200 tanh units,
  g = 1.5, A = 16, p = 0.003, η = 0.1, ``max_dw`` 3e-4, one trial per update,
  no update for the first 100 trials — with his graded reward
  (``reward="error"``: minus the mean |tanh(z_c) ∓ 0.98| of the two choice
  outputs of a fixed random readout over the decision period; the step scaled
  by |R̄| as in his code), 6000 trials, 3 seeds.  With the env's 0/1 reward
  instead it stays at chance in every setting tried (dt 1-20 ms, greedy or
  sampled actions, up to 12000 trials): with greedy actions a trial type's
  outcome is fixed unless a kick flips the answer, so R = R̄ and there is
  nothing to learn from; at dt = 5 ms the graded error does not learn either
  (a kick then moves x by A·dt/τ ≈ 2.7 and saturates tanh).
* ``reinforce``: dt = 50 ms, τ = 100 ms, 64 units (as its 2AF condition), Adam
  lr 0.001 (at 0.003 the accuracy reached 95-98 % and then fell back to
  50-60 %), 10000 trials, 3 seeds; a seed stuck at 75 % (3 of 4 trial types)
  stayed there for 25000 trials.
* ``reward_hebbian`` on 2AF: Miconi's setup and graded error as for XOR (the
  2AF trial: 100 ms fixation, 300 ms stimulus at coherence 51.2, 100 ms
  decision), 3000 trials.  With the env's 0/1 reward (dt = 10 ms, 8 trials
  per update) the networks peaked at 83-96 % and drifted back (59.6 ± 12.8 %).
* The Hebbian rule on the LIF backend: NeuroGym's 2AF at dt = 10 ms with the
  env's reward (A = 16, 8 trials per update, ``max_dw`` 3e-3, greedy actions)
  on the project's ``2af_lif`` network (64 LIF units) with a fixed readout,
  ``lif_post="v"``.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import neuro
from neuro.io import atomic_write_text
from neuro.rules.reward_hebbian import RewardHistory
from neuro.studies import common

EASY_2AF = dict(timing={"fixation": 100, "stimulus": 300, "decision": 300}, cohs=[25.6, 51.2], sigma=0.1)


def _spec(n_inputs, n_actions, size, dt, tau, noise, readout_trainable=True):
    return neuro.NetworkSpec(
        dt=dt, n_inputs=n_inputs, n_outputs=n_actions,
        populations=[neuro.spec.PopulationSpec(size=size, neuron=neuro.spec.NeuronSpec(
            tau=tau, activation="tanh", noise_std=noise))],
        recurrent=neuro.spec.ConnectionSpec(gain=1.5 if not readout_trainable else 1.0),
        readout=neuro.spec.ConnectionSpec(init="uniform", bias=readout_trainable, trainable=readout_trainable))


SEED_WINDOW = 500     # trials: each seed's first and last window in seeds.csv


def conditions(quick: bool) -> list[dict]:
    """(rule, task) runs: the env, the network and the rule's options (``seeds``: runs of
    this condition unless ``--seeds`` says otherwise; ``backend``: ``rate`` unless given)."""
    hebbian_2af_env = dict(dt=10, timing={"fixation": 100, "stimulus": 300, "decision": 100}, cohs=[51.2], sigma=0.1)
    hebbian_options = dict(lr=1.0, max_dw=3e-3, trials_per_update=8, greedy=True)
    runs = [
        {"rule": "reinforce", "task": "2af", "env": dict(dt=50, song=True, **EASY_2AF),
         "net": dict(size=64, dt=50, tau=100, noise=0.1), "iterations": 400 if quick else 1500,
         "options": dict(value_size=64)},
        # Miconi's setup (dt = 1 ms, τ = 30 ms, 200 units, one trial per update) with his graded error
        {"rule": "reward_hebbian", "task": "2af", "env": dict(hebbian_2af_env, dt=1),
         "net": dict(size=200, dt=1, tau=30, noise=0.0, readout_trainable=False),
         "iterations": 1000 if quick else 3000, "options": dict(reward="error", greedy=True, warmup_trials=100)},
    ]
    if not quick:
        no_fixation_rule = {"abort": 0.0}          # Miconi's XOR has no fixation requirement
        runs += [
            {"rule": "reinforce", "task": "xor", "env": dict(dt=50, rewards=no_fixation_rule),
             "net": dict(size=64, dt=50, tau=100, noise=0.1), "iterations": 1000, "seeds": 3,
             "options": dict(value_size=64, lr=0.001, fixation_bias=None)},
            {"rule": "reward_hebbian", "task": "xor", "env": dict(dt=1, rewards=no_fixation_rule),
             "net": dict(size=200, dt=1, tau=30, noise=0.0, readout_trainable=False),     # Miconi's setup
             "iterations": 6000, "seeds": 3,
             "options": dict(reward="error", greedy=True, warmup_trials=100)},
            # the same rule and env as the rate 2AF condition, on the project's 2AF LIF network
            {"rule": "reward_hebbian", "task": "2af", "backend": "lif", "env": hebbian_2af_env,
             "net": dict(model="2af_lif", dt=10), "iterations": 1500, "seeds": 3,
             "options": dict(hebbian_options, lif_post="v")},
        ]
    return runs


def _lif_spec(n_inputs, n_actions, model, dt):
    """The stored LIF model with a fixed readout (no bias), as Miconi's rule wants."""
    spec = neuro.models.load(model).replace(**{"dt": float(dt), "readout.bias": False, "readout.trainable": False})
    if spec.n_inputs != n_inputs or spec.n_outputs != n_actions:
        raise ValueError(f"{model} has {spec.n_inputs} inputs / {spec.n_outputs} outputs; the env needs "
                         f"{n_inputs} / {n_actions}")
    return spec


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quick", action="store_true", help="2AF only, 3 seeds, a few minutes on 2 cores")
    p.add_argument("--out", default=None, help="run folder (default runs/reward[-quick])")
    p.add_argument("--seeds", type=int, default=None,
                   help="independent runs per condition (default: 3 with --quick; else 5 for 2AF on rate "
                        "networks, 3 for the rest)")
    p.add_argument("--workers", type=int, default=1,
                   help="seeds trained in parallel processes (one torch thread each); default 1")
    p.add_argument("--no-progress", action="store_true")


def run(args) -> int:
    out = Path(args.out or ("runs/reward-quick" if args.quick else "runs/reward"))
    seeds = args.seeds or (3 if args.quick else 5)
    conds = conditions(args.quick)
    if args.seeds:
        conds = [dict(c, seeds=args.seeds) for c in conds]
    if not (isinstance(args.workers, int) and args.workers >= 1):
        raise ValueError(f"--workers must be an integer >= 1, got {args.workers!r}")
    study(conds, seeds, out, progress=not args.no_progress, workers=args.workers)
    print(f"results in {out}/ (summary.md, summary.csv, trials.csv, *.png)")
    return 0


def train_one(cond: dict, seed: int, progress: bool = True):
    from neuro.tasks import envs
    rule = neuro.rules.get(cond["rule"], **cond["options"])
    env = envs.make(cond["task"], getattr(rule, "trials_per_update", 1), **cond["env"])
    backend = cond.get("backend", "rate")
    spec = (_lif_spec if backend == "lif" else _spec)(env.n_inputs, env.n_actions, **cond["net"])
    net = neuro.compile(spec, backend, seed=seed)
    return rule.fit(net, env, iterations=cond["iterations"], seed=seed, progress=progress)


def _train_seeds(cond: dict, n_seeds: int, progress: bool, workers: int) -> list:
    """The condition's seeds, one after another or in ``workers`` processes (same numbers either way:
    each seed's run depends only on its seed)."""
    if workers == 1 or n_seeds == 1:
        return [train_one(cond, s, progress) for s in range(n_seeds)]
    import concurrent.futures as cf
    import multiprocessing as mp
    with cf.ProcessPoolExecutor(min(workers, n_seeds), mp_context=mp.get_context("spawn"),
                                initializer=_one_thread) as pool:
        return list(pool.map(train_one, [cond] * n_seeds, range(n_seeds), [False] * n_seeds))


def _one_thread() -> None:
    import torch
    torch.set_num_threads(1)


def study(conds: list[dict], seeds: int, out: Path, progress: bool = True, workers: int = 1) -> list[dict]:
    out.mkdir(parents=True, exist_ok=True)
    rows, summary, curves, example = [], [], {}, {}
    for cond in conds:
        backend = cond.get("backend", "rate")
        key = f"{cond['task']} / {cond['rule']}" + (f" ({backend})" if backend != "rate" else "")
        n_seeds = cond.get("seeds", seeds)
        histories = _train_seeds(cond, n_seeds, progress, workers)
        for s, h in enumerate(histories):
            rows.extend({"task": cond["task"], "rule": cond["rule"], "backend": backend, "seed": s, "trial": i,
                         "reward": r,
                         "baseline": b, "value": v, "correct": c}
                        for i, (r, b, v, c) in enumerate(zip(h.reward, h.baseline, h.value, h.correct)))
        final = [h.fraction_correct(500) for h in histories]
        crit = [h.trials_to_criterion(0.8, 200) for h in histories]
        reached = [c for c in crit if c is not None]
        summary.append({"task": cond["task"], "rule": cond["rule"], "backend": backend, "seeds": n_seeds,
                        "trials": histories[0].trials,
                        "final_correct_mean": float(np.mean(final)), "final_correct_std": float(np.std(final)),
                        "trials_to_80_mean": float(np.mean(reached)) if reached else float("nan"),
                        "trials_to_80_std": float(np.std(reached)) if reached else float("nan"),
                        "reached_80": f"{len(reached)}/{n_seeds}"})
        curves[key] = {"fraction correct": [_running(h.correct, 200) for h in histories]}
        example[key] = histories[0]
        common.write_rows(out / "trials.csv", rows)
        common.write_rows(out / "seeds.csv", per_seed(rows))
        common.write_rows(out / "summary.csv", summary)
    atomic_write_text(out / "summary.md", _markdown(summary))
    _plots(curves, example, out)
    return summary


def per_seed(rows, window: int = SEED_WINDOW, solved: float = 0.99, solved_window: int = 200) -> list[dict]:
    """One row per (task, rule, backend, seed) of ``trials.csv``'s rows: its trials, the % correct in
    its first and last ``window`` trials (the table in docs/reward/README.md is generated from these),
    and ``trials_to_99``: the last trial of the first ``solved_window`` trials at >= ``solved`` correct
    (empty if none), when a run that stops at a criterion, as Song, Yang & Wang's code does, would have
    stopped at the latest."""
    runs = {}
    for r in rows:
        runs.setdefault((r["task"], r["rule"], r["backend"], int(r["seed"])), []).append(float(r["correct"]))
    out = []
    for (t, rule, b, s), c in runs.items():
        h = RewardHistory(correct=c)
        out.append({"task": t, "rule": rule, "backend": b, "seed": s, "trials": len(c),
                    "first_correct": float(np.mean(c[:window])), "last_correct": h.fraction_correct(window),
                    "trials_to_99": h.trials_to_criterion(solved, solved_window)})
    return out


def _running(x, w):
    x = np.asarray(x, dtype=float)
    return list(np.convolve(x, np.ones(w) / w, mode="valid")) if len(x) >= w else list(x)


def _markdown(summary: list[dict]) -> str:
    lines = ["| task | rule | backend | seeds | trials | % correct (last 500 trials) | trials to 80 % "
             "| seeds reaching 80 % |",
             "|---|---|---|---|---|---|---|---|"]
    for s in summary:
        lines.append(f"| {s['task']} | {s['rule']} | {s['backend']} | {s['seeds']} | {s['trials']} | "
                     f"{100 * s['final_correct_mean']:.1f} ± {100 * s['final_correct_std']:.1f} | "
                     f"{s['trials_to_80_mean']:.0f} ± {s['trials_to_80_std']:.0f} | {s['reached_80']} |")
    return "\n".join(lines) + "\n"


def _plots(curves: dict, example: dict, out: Path) -> None:
    """``learning_curves.png`` (running fraction correct, one colour per seed, with a seeds legend) and
    ``rewards_baselines.png`` (seed 0's reward, baseline and value), each with its data in a CSV of the
    same name.  A seed whose curve stops being finite is marked where it does ("diverged")."""
    from neuro import plots
    plt = plots.pyplot()
    n_seeds = max(len(v["fraction correct"]) for v in curves.values())
    colors = plots.categorical(n_seeds)
    fig, axes = plt.subplots(1, len(curves), figsize=(3.6 * len(curves) + 1.2, 3.0), squeeze=False, sharey=True)
    rows = []
    for ax, (key, lines) in zip(axes[0], curves.items()):
        for s, c in enumerate(lines["fraction correct"]):
            c = np.asarray(c, dtype=float)
            ax.plot(np.arange(len(c)) + 200, c, lw=1, color=colors[s], label=f"seed {s}")
            rows += [[key, s, i + 200, float(v)] for i, v in enumerate(c)]
            if not np.all(np.isfinite(c)):
                plots.mark_diverged(ax, int(np.argmax(~np.isfinite(c))) + 200, colors[s])
        ax.axhline(0.5, color="gray", ls=":", lw=1, label="chance")
        ax.set(title=key, xlabel="trial", ylim=(0, 1.02))
    axes[0][0].set_ylabel("fraction correct\n(running mean, 200 trials)")
    handles = {lab: h for ax in axes[0] for h, lab in zip(*ax.get_legend_handles_labels())}
    labels = sorted((lab for lab in handles if lab.startswith("seed")), key=lambda x: int(x.split()[1])) + ["chance"]
    plots.legend_outside(axes[0][-1], handles=[handles[lab] for lab in labels], labels=labels)
    plots.write_csv(out / "learning_curves.csv", ["condition", "seed", "trial", "fraction_correct"], rows)
    plots.save(fig, out / "learning_curves.png")
    fig, axes = plt.subplots(1, len(example), figsize=(3.6 * len(example) + 1.6, 3.0), squeeze=False)
    rows = []
    styles = {"reward": "C0", "baseline": "C1", "value": "C2"}
    for ax, (key, h) in zip(axes[0], example.items()):
        series = {"reward": h.reward, "baseline": h.baseline}
        if not np.all(np.isnan(h.value)):
            series["value"] = h.value
        for name, v in series.items():
            r = np.asarray(_running(v, 50), dtype=float)
            label = {"reward": "reward", "baseline": "baseline (R̄, or v at t = 0)",
                     "value": "value before the outcome"}[name]
            ax.plot(np.arange(len(r)) + 50, r, lw=1, color=styles[name], label=label)
            rows += [[key, name, i + 50, float(x)] for i, x in enumerate(r)]
        ax.set(title=f"{key} (seed 0)", xlabel="trial")
    axes[0][0].set_ylabel("reward per trial\n(running mean, 50 trials)")
    handles = {lab: h for ax in axes[0] for h, lab in zip(*ax.get_legend_handles_labels())}
    plots.legend_outside(axes[0][-1], handles=list(handles.values()), labels=list(handles))
    plots.write_csv(out / "rewards_baselines.csv", ["condition", "series", "trial", "running_mean_50"], rows)
    plots.save(fig, out / "rewards_baselines.png")


__all__ = ["add_arguments", "run", "study", "conditions", "train_one"]

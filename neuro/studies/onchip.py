"""``neuro reproduce onchip``: e-prop learning on the simulated chip — does the initial-gain effect
(Liu, Zhang & Liu) survive Loihi's learning engine and its precision?

The 2AF LIF network (``models/2af_lif.toml`` at N = 32, dt = 20 ms, τ_syn = 20 ms: the setup of
``neuro reproduce quantization``; inputs fixed, so every condition learns ``W_rec`` and the readout)
is trained from several initial recurrent gains g (``W_rec ~ N(0, g²/N)``), with seeds paired
across conditions (same initial weights, same batches):

- ``bptt``: BPTT with surrogate gradients on the LIF backend;
- ``eprop``: the torch e-prop (``neuro.rules.get("eprop")``), one step per batch;
- ``chip-float``: e-prop as Loihi's three-factor rule (``neuro.onchip``), in floating point:
  trial after trial, the weights written every step, the rule's constants as Lava's literals;
- ``chip-fixed``: the same with Loihi's widths (7-bit traces and y values, 8-bit tags, weights on
  the 8-bit grid) and stochastic rounding.

All four take plain gradient steps at one learning rate (the chip has no Adam).  Each run's
statistic is its mean log10 training loss from iteration ``window_start`` to the end, as in the
initialization study (``neuro.curves``); claims are paired tests across seeds with held / not held /
inconclusive verdicts.  ``chip-float`` is the numpy model of the chip, which equals Lava's
``LearningDense`` run of the rule to 1e-15, and ``chip-fixed`` the numpy model of Lava's fixed-point
engine, which equals Lava's bit-approximate ``LearningDense`` bit for bit when it draws Lava's random
numbers (``tests/test_onchip.py``); one Lava trial per chip run checks each again here (``lava_check``).

Writes ``metrics.csv`` (run × iteration), ``summary.csv`` (one row per run), ``claims.md`` and
``claims.csv``, ``learning_curves.png``, ``approximations.csv`` (the size of each approximation of the
rule, per gain), ``config.json``.
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from neuro.progress import tqdm

import neuro
from neuro import curves
from neuro.io import atomic_write_text
from neuro.studies import common
from neuro.studies.quantization import base_spec as loihi_2af_spec

CONDITIONS = ("bptt", "eprop", "chip-float", "chip-fixed")


@dataclass
class Config:
    gains: list = field(default_factory=lambda: [0.5, 1.0, 2.0])
    seeds: int = 3
    iterations: int = 150
    batch_size: int = 8
    lr: float = 0.5             # plain SGD; every condition learns the task at 0.5 (1 and 2 destabilize the torch rules)
    n_hidden: int = 32
    window_start: int = 30      # a run's statistic: its mean log10 loss from this iteration on
    final_window: int = 20      # iterations at the end whose accuracy is a run's final accuracy
    test_trials: int = 200
    lava_check: bool = True

    @classmethod
    def quick(cls) -> "Config":
        return cls(gains=[0.5, 2.0], seeds=2, iterations=60, window_start=20, final_window=10, test_trials=64,
                   lava_check=False)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quick", action="store_true", help="2 gains, 2 seeds, 60 iterations: a few minutes on 2 cores")
    p.add_argument("--out", default=None, help="run folder (default runs/onchip[-quick])")
    p.add_argument("--iterations", type=int, default=None)
    p.add_argument("--seeds", type=int, default=None)
    p.add_argument("--gains", type=float, nargs="+", default=None, help="initial recurrent gains")
    p.add_argument("--no-progress", action="store_true")


def run(args) -> int:
    cfg = Config.quick() if args.quick else Config()
    for name in ("iterations", "seeds", "gains"):
        if getattr(args, name, None) is not None:
            setattr(cfg, name, getattr(args, name))
    if cfg.seeds < 2:
        raise ValueError(f"--seeds must be >= 2 for paired tests, got {cfg.seeds}")
    if cfg.iterations <= max(cfg.window_start, cfg.final_window):
        raise ValueError(f"--iterations must be > {max(cfg.window_start, cfg.final_window)}, got {cfg.iterations}")
    out = Path(args.out or ("runs/onchip-quick" if args.quick else "runs/onchip"))
    study(cfg, out, progress=not args.no_progress)
    print(f"results in {out}/ (claims.md, summary.csv, metrics.csv, learning_curves.png)")
    return 0


def base_spec(n_hidden: int):
    """The quantization study's 2AF LIF network with its inputs fixed (the chip learns ``W_rec``)."""
    return loihi_2af_spec(n_hidden, **{"input.trainable": False})


def _train(condition: str, spec, task, cfg: Config, seed: int):
    """(loss curve, accuracy curve, final Weights) of one run."""
    w = neuro.init_weights(spec, seed)
    if condition.startswith("chip"):
        from neuro.onchip import train_onchip
        h = train_onchip(spec, w, task, cfg.iterations, cfg.batch_size, cfg.lr,
                         precision=condition.split("-")[1], seed=seed)
        return h.loss, h.accuracy, h.weights
    torch.manual_seed(seed)
    net = neuro.compile(spec, "lif", w)
    try:
        h = neuro.train(net, task, neuro.rules.get(condition), iterations=cfg.iterations, lr=cfg.lr,
                        batch_size=cfg.batch_size, seed=seed, optimizer="sgd", progress=False)
        loss = [float(np.mean(v)) if isinstance(v, list) else float(v) for v in h.loss]
        return loss + [float("nan")] * (cfg.iterations - len(loss)), list(h.accuracy), net.weights()
    except neuro.TrainingError as e:            # diverged: the curve stops, the run ranks worst
        loss = [float(np.mean(v)) if isinstance(v, list) else float(v) for v in e.history.loss]
        return loss + [float("inf")] * (cfg.iterations - len(loss)), list(e.history.accuracy), net.weights()


def _lava_check(spec, task, seed: int, precision: str = "float") -> float:
    """Max |ΔW| difference between Lava's LearningDense and the numpy chip on one trial (fixed point:
    Lava's bit-approximate engine against ``ChipEprop`` drawing Lava's random numbers)."""
    from neuro.onchip import ChipEprop, FixedPoint, lava_trial
    w = neuro.init_weights(spec, seed)
    b = task.batch(1, seed=(seed, 10_000), dtype=torch.float64)
    x, tg, m = b.inputs[:, 0].numpy(), b.targets[:, 0].numpy(), b.mask[:, 0].numpy()
    lava = lava_trial(spec, w, x, tg, m, task.kind, eta=0.05, precision=precision, seed=seed)
    chip = ChipEprop(spec, w) if precision == "float" else ChipEprop(spec, w, precision="fixed", seed=seed,
                                                                    fixed=FixedPoint(random="lava"))
    ours = chip.trial(x, tg, m, task.kind, eta=0.05)
    return float(np.abs(lava["dW"] - ours["dW"]).max())


def approximations(spec, task, seed: int, trials: int = 4, eta: float = 1e-3, fixed_eta: float = 0.1,
                   fixed_seeds: int = 8, lava: bool = True) -> dict:
    """Relative size ``|ΔW - ΔW_torch| / |ΔW_torch|`` of each approximation of the chip's rule, on
    ``trials`` 2AF trials (mean), against the torch e-prop gradient of each trial (float64); the fixed
    point rows against the float chip on the same weight grid.  ``lava``: also one trial of Lava's
    fixed-point engine (online, as the chip learns) against the float chip, beside the numpy model's."""
    from neuro.onchip import ChipEprop, FixedPoint, lava_trial
    w = neuro.init_weights(spec, seed)
    rel = lambda a, b: float(np.linalg.norm(a - b) / np.linalg.norm(b))
    rows = {k: [] for k in ("exact constants, frozen weights", "Lava literals (2^-7)", "online writes",
                            "Lava literals + online (the chip, float)", "separable eligibility (no reset)",
                            "fixed point, one trial (stochastic)", "fixed point, mean of seeds (stochastic)",
                            "fixed point, nearest rounding", "fixed point online, one trial (numpy)",
                            "fixed point online, one trial (Lava)")}
    for k in range(trials):
        b = task.batch(1, seed=(seed, 20_000 + k), dtype=torch.float64)
        x, tg, m = b.inputs[:, 0].numpy(), b.targets[:, 0].numpy(), b.mask[:, 0].numpy()
        net = neuro.compile(spec, "lif", w, dtype=torch.float64)
        G = neuro.rules.get("eprop").gradients(net, b, task)["W_rec"].numpy()
        upd = lambda eta_, **o: -ChipEprop(spec, w, **{k_: v for k_, v in o.items() if k_ != "online"}).trial(
            x, tg, m, task.kind, eta=eta_, online=o.get("online", True))["dW"] / eta_
        rows["exact constants, frozen weights"].append(rel(upd(eta, constants="exact", online=False), G))
        rows["Lava literals (2^-7)"].append(rel(upd(eta, online=False), G))
        rows["online writes"].append(rel(upd(eta, constants="exact"), G))
        rows["Lava literals + online (the chip, float)"].append(rel(upd(eta), G))
        rows["separable eligibility (no reset)"].append(rel(upd(eta, constants="exact", separable=True,
                                                                online=False), G))
        grid = ChipEprop(spec, w, precision="fixed")
        wq = w.copy()
        wq.W_rec = grid.W.copy()
        ref = -ChipEprop(spec, wq).trial(x, tg, m, task.kind, eta=fixed_eta, online=False)["dW"] / fixed_eta
        runs = np.array([upd(fixed_eta, precision="fixed", seed=s, online=False) for s in range(fixed_seeds)])
        rows["fixed point, one trial (stochastic)"].append(float(np.mean([rel(r, ref) for r in runs])))
        rows["fixed point, mean of seeds (stochastic)"].append(rel(runs.mean(0), ref))
        rows["fixed point, nearest rounding"].append(rel(upd(fixed_eta, precision="fixed", online=False,
                                                             fixed=FixedPoint(rounding="nearest")), ref))
        if lava and k == 0:
            online_ref = ChipEprop(spec, wq).trial(x, tg, m, task.kind, eta=fixed_eta)["dW"]
            rows["fixed point online, one trial (numpy)"].append(rel(ChipEprop(spec, w, precision="fixed", seed=1).trial(
                x, tg, m, task.kind, eta=fixed_eta)["dW"], online_ref))
            rows["fixed point online, one trial (Lava)"].append(rel(lava_trial(
                spec, w, x, tg, m, task.kind, eta=fixed_eta, precision="fixed", seed=1)["dW"], online_ref))
    return {k: float(np.mean(v)) if v else float("nan") for k, v in rows.items()}


def study(cfg: Config, out: Path, progress: bool = True) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    if (out / "config.json").exists():
        old = json.loads((out / "config.json").read_text())
        if any(old.get(k) != v for k, v in asdict(cfg).items() if k not in ("gains", "seeds")):
            raise ValueError(f"{out} holds a run with another configuration; use another --out")
    atomic_write_text(out / "config.json", json.dumps(asdict(cfg), indent=2))
    t0 = time.time()
    spec = base_spec(cfg.n_hidden)
    task = neuro.tasks.get("2af", dt=spec.dt)
    test = task.batch(cfg.test_trials, seed=999)
    done_approx = {float(r["gain"]): r for r in _read(out / "approximations.csv")}
    approx = [{"gain": g, **({k: float(v) for k, v in done_approx[g].items() if k != "gain"} if g in done_approx else
                             approximations(spec.replace(**{"recurrent.gain": g}), task, seed=0,
                                            trials=1 if cfg.test_trials < 100 else 4, lava=cfg.lava_check))}
              for g in cfg.gains]
    common.write_rows(out / "approximations.csv", approx)
    # a rerun into the same folder keeps the runs it finished (same config) and trains the rest
    runs = [_typed(r) for r in _read(out / "summary.csv") if float(r["gain"]) in cfg.gains and int(r["seed"]) < cfg.seeds]
    done = {(r["condition"], r["gain"], r["seed"]) for r in runs}
    metrics = [_typed(r) for r in _read(out / "metrics.csv")
               if (r["condition"], float(r["gain"]), int(r["seed"])) in done]
    jobs = [(c, g, s) for g in cfg.gains for s in range(cfg.seeds) for c in CONDITIONS if (c, g, s) not in done]
    for condition, gain, seed in tqdm(jobs, desc="onchip", disable=not progress):
        gspec = spec.replace(**{"recurrent.gain": gain})
        t1 = time.time()
        loss, acc, w = _train(condition, gspec, task, cfg, seed)
        with torch.no_grad():
            test_acc = task.accuracy(neuro.compile(gspec, "lif", w).run(test.inputs).outputs, test)
        row = {"condition": condition, "gain": gain, "seed": seed, "seconds": round(time.time() - t1, 1),
               "test_accuracy": float(test_acc),
               **curves.run_statistics(loss, acc, window=(cfg.window_start, None), final_window=cfg.final_window)}
        row["lava_max_abs_dW_diff"] = (_lava_check(gspec, task, seed, condition.split("-")[1])
                                       if cfg.lava_check and condition.startswith("chip") else float("nan"))
        runs.append(row)
        metrics += [{"condition": condition, "gain": gain, "seed": seed, "iteration": i, "loss": l,
                     "accuracy": acc[i] if i < len(acc) else float("nan")} for i, l in enumerate(loss)]
        common.write_rows(out / "summary.csv", runs)
        common.write_rows(out / "metrics.csv", metrics)
    common.write_rows(out / "summary.csv", runs)
    common.write_rows(out / "metrics.csv", metrics)
    claims = _claims(cfg, runs)
    elapsed = time.time() - t0
    common.write_rows(out / "claims.csv", claims)
    atomic_write_text(out / "claims.md", _claims_markdown(cfg, claims, runs, elapsed, approx))
    plot(cfg, metrics, out)
    return {"runs": runs, "claims": claims, "seconds": elapsed}


def _read(path: Path) -> list[dict]:
    import csv
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _typed(row: dict) -> dict:
    """A CSV row back as numbers (condition stays a string, diverged a bool)."""
    out = {}
    for k, v in row.items():
        if k == "condition":
            out[k] = v
        elif k == "diverged":
            out[k] = v == "True"
        elif k in ("seed", "iteration", "iterations"):
            out[k] = int(v)
        else:
            try:
                out[k] = float(v)
            except ValueError:
                out[k] = v
    return out


def _stat(runs, condition, gain, key="window_log10_loss"):
    rows = sorted((r for r in runs if r["condition"] == condition and r["gain"] == gain), key=lambda r: r["seed"])
    return np.array([r[key] if not r["diverged"] else np.inf for r in rows], dtype=float)


def _claims(cfg: Config, runs) -> list[dict]:
    """The paper's gain claim per condition, and the chip against the torch rule."""
    claims = []
    small = min(cfg.gains)
    ref = 1.0 if 1.0 in cfg.gains and small != 1.0 else max(cfg.gains)
    for cond in CONDITIONS:
        cmp = curves.compare(_stat(runs, cond, small), _stat(runs, cond, ref))
        v, why = curves.verdict(cmp, "greater")
        claims.append({"claim": f"gain/{cond}", "what": f"{cond}: g={small} learns worse than g={ref} "
                       f"(higher mean log10 loss from iteration {cfg.window_start})", "numbers": _numbers(cmp), "verdict": v, "why": why})
    for chip, other, margin in (("chip-float", "eprop", 0.1), ("chip-fixed", "chip-float", 0.1)):
        for g in cfg.gains:
            cmp = curves.compare(_stat(runs, chip, g), _stat(runs, other, g))
            v, why = curves.verdict(cmp, "equivalent", margin=margin)
            claims.append({"claim": f"{chip}~{other}/g={g}", "what": f"{chip} learns as {other} does at g={g} "
                           f"(mean log10 loss from iteration {cfg.window_start} within ±{margin})", "numbers": _numbers(cmp),
                           "verdict": v, "why": why})
    return claims


def _numbers(cmp) -> str:
    return f"{cmp.mean_a:.3f} ± {cmp.std_a:.3f} vs {cmp.mean_b:.3f} ± {cmp.std_b:.3f} (n = {cmp.n})"


def claims_table(claims) -> str:
    lines = ["| claim | statement | measured (a vs b, mean ± sd over seeds) | verdict | why |", "|---|---|---|---|---|"]
    lines += [f"| {c['claim']} | {c['what']} | {c['numbers']} | {c['verdict']} | {c['why']} |" for c in claims]
    return "\n".join(lines)


def runs_table(runs) -> str:
    """Per condition and gain: the statistic (mean ± sd over seeds), held-out accuracy, seconds per run."""
    lines = ["| condition | gain | mean log10 loss (window) | final training accuracy | held-out accuracy | "
             "seconds per run |", "|---|---|---|---|---|---|"]
    gains = sorted({r["gain"] for r in runs})
    for cond in CONDITIONS:
        for g in gains:
            rs = [r for r in runs if r["condition"] == cond and r["gain"] == g]
            if not rs:
                continue
            st = _stat(runs, cond, g)
            sd = f" ± {np.std(st, ddof=1):.3f}" if len(st) > 1 else ""
            lines.append(f"| {cond} | {g} | {np.mean(st):.3f}{sd} | {np.mean([r['final_accuracy'] for r in rs]):.3f} | "
                         f"{np.mean([r['test_accuracy'] for r in rs]):.3f} | {np.mean([r['seconds'] for r in rs]):.0f} |")
    return "\n".join(lines)


def approximations_table(approx) -> str:
    keys = [k for k in approx[0] if k != "gain"]
    lines = ["| approximation | " + " | ".join(f"g = {a['gain']}" for a in approx) + " |",
             "|---|" + "---|" * len(approx)]
    lines += [f"| {k} | " + " | ".join(f"{a[k]:.3g}" for a in approx) + " |" for k in keys]
    return "\n".join(lines)


def readme_tables(folder: Path) -> dict:
    """The README's generated tables from a finished run folder (``scripts/readme_tables.py``)."""
    runs = [_typed(r) for r in _read(folder / "summary.csv")]
    return {"runs": runs_table(runs), "claims": claims_table(_read(folder / "claims.csv"))}


def _claims_markdown(cfg, claims, runs, elapsed, approx) -> str:
    lines = ["# On-chip e-prop — the gain claim on Loihi's learning engine", "",
             f"2AF, LIF N = {cfg.n_hidden}, gains {cfg.gains}, {cfg.seeds} paired seeds, {cfg.iterations} "
             f"iterations of {cfg.batch_size} trials, SGD lr = {cfg.lr}; statistic: mean log10 training loss from "
             f"iteration {cfg.window_start} on; paired tests across seeds (`neuro.curves`).", "",
             claims_table(claims), "", runs_table(runs), "",
             "Size of each approximation: |ΔW - ΔW_torch| / |ΔW_torch| for one trial (mean over trials; "
             "fixed point against the float chip on the same weight grid, η = 0.1 per trial), seed 0:", "",
             approximations_table(approx)]
    for precision in ("float", "fixed"):
        checks = [r["lava_max_abs_dW_diff"] for r in runs if r["condition"] == f"chip-{precision}"
                  and np.isfinite(r["lava_max_abs_dW_diff"])]
        if checks:
            what = ("Lava's LearningDense against the numpy chip" if precision == "float" else
                    "Lava's fixed-point LearningDense against the numpy fixed-point engine drawing Lava's random numbers")
            lines += ["", f"{what}, one trial per chip-{precision} run: max |ΔW| difference {max(checks):.2g} "
                          f"({len(checks)} runs)."]
    lines += ["", f"{elapsed / 60:.1f} min on a shared 2-core machine."]
    return "\n".join(lines) + "\n"


def plot(cfg: Config, metrics, out: Path) -> None:
    from neuro.plots import pyplot
    plt = pyplot()
    fig, axes = plt.subplots(1, len(CONDITIONS), figsize=(3.2 * len(CONDITIONS), 3), sharey=True)
    for ax, cond in zip(axes, CONDITIONS):
        for i, g in enumerate(cfg.gains):
            curves_ = np.array([[m["loss"] for m in metrics if m["condition"] == cond and m["gain"] == g
                                 and m["seed"] == s] for s in range(cfg.seeds)], dtype=float)
            logc = np.log10(np.where(np.isfinite(curves_) & (curves_ > 0), curves_, np.nan))
            mean, sd = np.nanmean(logc, 0), np.nanstd(logc, 0)
            it = np.arange(len(mean))
            ax.plot(it, mean, color=f"C{i}", label=f"g={g}")
            ax.fill_between(it, mean - sd, mean + sd, color=f"C{i}", alpha=0.2)
        ax.set_title(cond)
        ax.set_xlabel("iteration")
    axes[0].set_ylabel("log10 training loss")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "learning_curves.png", dpi=120)
    plt.close(fig)

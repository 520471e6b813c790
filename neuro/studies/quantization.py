"""``neuro reproduce quantization``: trained LIF networks on Loihi — accuracy and maximum Lyapunov
exponent vs recurrent weight bit width and vs initial gain, float vs Loihi fixed point.

For each initial recurrent gain g (``W_rec ~ N(0, g²/N)``) and seed, a LIF network (``2af_lif`` at
N = 32, dt = 20 ms, the setup of ``tests/test_lif.py``) is trained with e-prop (Bellec et al. 2020) on
NeuroGym's 2AF on the LIF backend, then evaluated on held-out trials:

- ``float``: Lava's floating-point LIF with the recurrent weights on Loihi's ``b``-bit grid
  (``neuro.backends.lava.loihi_quantization``; 32 = unquantized).  Lava's float model is the LIF
  backend's map exactly (``tests/test_lava.py``), so this column runs on the LIF backend, and one
  Lava float run per network (8 bits) checks that its spikes are still identical (``lava_float_check``);
- ``fixed``: Lava's bit-accurate Loihi model (``Loihi2SimCfg(select_tag="fixed_pt")``) with the same
  weight grid plus Loihi's integer state, 12-bit decays and 13-bit bias mantissas;
- ``lambda_max``: the maximum surrogate Lyapunov exponent (``neuro.lyapunov_spectrum``, per step) of
  the network with the quantized weights, along the held-out trials (float dynamics: the integer
  map has no Jacobian).

Writes ``metrics.csv`` (one row per gain × seed × bits × precision), ``summary.md`` (the table,
mean over seeds), ``accuracy_vs_bits.png``, ``lyapunov_vs_bits.png``, ``config.json``.
``--quick`` is a reduced version (2 gains, 1 seed, 3 bit widths, short training) of a few minutes.
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
from neuro.io import atomic_write_text
from neuro.studies import common

FULL_PRECISION = 32


@dataclass
class Config:
    gains: list = field(default_factory=lambda: [0.5, 1.0, 1.5, 2.0])
    bits: list = field(default_factory=lambda: [FULL_PRECISION, 8, 6, 5, 4, 3, 2])
    seeds: int = 3
    iterations: int = 150
    lr: float = 1e-2
    batch_size: int = 16
    n_hidden: int = 32
    test_trials: int = 200
    lyapunov_trials: int = 8

    @classmethod
    def quick(cls) -> "Config":
        return cls(gains=[0.5, 1.5], bits=[FULL_PRECISION, 8, 4, 2], seeds=1, iterations=60, test_trials=62,
                   lyapunov_trials=4)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quick", action="store_true", help="2 gains, 1 seed, 4 bit widths: a few minutes on 2 cores")
    p.add_argument("--out", default=None, help="run folder (default runs/quantization[-quick])")
    p.add_argument("--iterations", type=int, default=None, help="e-prop training iterations per network")
    p.add_argument("--seeds", type=int, default=None, help="networks per gain")
    p.add_argument("--no-progress", action="store_true")


def run(args) -> int:
    cfg = Config.quick() if args.quick else Config()
    for name in ("iterations", "seeds"):
        if getattr(args, name, None) is not None:
            setattr(cfg, name, getattr(args, name))
    out = Path(args.out or ("runs/quantization-quick" if args.quick else "runs/quantization"))
    study(cfg, out, progress=not args.no_progress)
    print(f"results in {out}/ (summary.md, metrics.csv, *.png)")
    return 0


# -- the study ---------------------------------------------------------------------------------

def base_spec(n_hidden: int, **changes):
    """The 2AF LIF network of the Loihi studies (this one and ``neuro reproduce onchip``): ``2af_lif`` at
    ``n_hidden`` units, dt = 20 ms, τ_syn = 20 ms, with further spec ``changes``."""
    return neuro.models.load("2af_lif").replace(**{"populations[0].size": n_hidden, "dt": 20.0,
                                                   "populations[0].neuron.tau_syn": 20.0, **changes})


def quantized(net, bits: int):
    """A LIF network with ``net``'s weights, the recurrent ones on Loihi's ``bits`` grid."""
    w = net.weights()
    if bits != FULL_PRECISION:     # the Lava export's recurrent weights, on Loihi's grid
        w.W_rec = neuro.export(net, "lava", weight_bits=bits, progress=False).weights().W_rec
    return neuro.compile(net.spec, "lif", w)


def _max_exponent(net, inputs) -> float:
    return float(neuro.lyapunov_spectrum(net, inputs, k=1, dtype=torch.float64).max_exponent)


def evaluate(net, task, test, lyapunov_inputs, bits: int, check_lava_float: bool = False) -> list[dict]:
    """Float and fixed-point accuracy and λ_max of one trained network at one bit width."""
    qnet = quantized(net, bits)
    with torch.no_grad():
        float_run = qnet.run(test.inputs)
    rows = [{"bits": bits, "precision": "float", "accuracy": float(task.accuracy(float_run.outputs, test)),
             "rate": float(float_run.spikes.mean()), "lambda_max": _max_exponent(qnet, lyapunov_inputs)}]
    if check_lava_float:
        lava = neuro.export(net, "lava", weight_bits=None if bits == FULL_PRECISION else bits, progress=False)
        rows[0]["lava_float_check"] = bool(torch.equal(lava.run(test.inputs).spikes.float(),
                                                       float_run.spikes.float()))
    fixed = neuro.export(net, "lava", precision="fixed", weight_bits=min(bits, 8), progress=False)
    fixed_run = fixed.run(test.inputs)
    counts = float_run.spikes.sum(0).flatten().numpy(), fixed_run.spikes.sum(0).flatten().numpy()
    rows.append({"bits": bits, "precision": "fixed", "accuracy": float(task.accuracy(fixed_run.outputs, test)),
                 "rate": float(fixed_run.spikes.mean()), "lambda_max": float("nan"),
                 "count_corr_vs_float": float(np.corrcoef(*counts)[0, 1])})
    return rows


def study(cfg: Config, out: Path, progress: bool = True) -> list[dict]:
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "config.json", json.dumps(asdict(cfg), indent=2))
    t0 = time.time()
    spec = base_spec(cfg.n_hidden)
    task = neuro.tasks.get("2af", dt=spec.dt)
    test = task.batch(cfg.test_trials, seed=999)
    lyapunov_inputs = test.inputs[:, :cfg.lyapunov_trials]
    rows = []
    jobs = [(g, s) for g in cfg.gains for s in range(cfg.seeds)]
    for gain, seed in tqdm(jobs, desc="quantization", disable=not progress):
        torch.manual_seed(seed)
        gspec = spec.replace(**{"recurrent.gain": gain})
        net = neuro.compile(gspec, "lif", neuro.init_weights(gspec, seed))
        lambda_init = _max_exponent(net, lyapunov_inputs)
        neuro.train(net, task, neuro.rules.get("eprop"), iterations=cfg.iterations, lr=cfg.lr,
                    batch_size=cfg.batch_size, seed=seed, progress=False)
        for bits in cfg.bits:
            for row in evaluate(net, task, test, lyapunov_inputs, bits, check_lava_float=bits == 8):
                rows.append({"gain": gain, "seed": seed, "lambda_max_init": lambda_init, **row})
        common.write_rows(out / "metrics.csv", _tidy(rows))
    summary = summarize(rows, cfg)
    atomic_write_text(out / "summary.md", summary + f"\n\n{time.time() - t0:.0f} s on this machine.\n")
    plot(rows, cfg, out)
    return rows


def _tidy(rows):
    keys = ["gain", "seed", "bits", "precision", "accuracy", "rate", "lambda_max", "lambda_max_init",
            "count_corr_vs_float", "lava_float_check"]
    return [{k: r.get(k, "") for k in keys} for r in rows]


def _mean(rows, **where):
    vals = [r for r in rows if all(r[k] == v for k, v in where.items())]
    return vals


def summarize(rows, cfg: Config) -> str:
    """Markdown table: accuracy float / fixed and λ_max per gain × bits (mean over seeds)."""
    bits_label = lambda b: "float64" if b == FULL_PRECISION else f"{b} bit"
    lines = ["| gain | weights | accuracy float | accuracy Loihi fixed | count corr. fixed vs float | λ_max (per step) |",
             "|---|---|---|---|---|---|"]
    for g in cfg.gains:
        for b in cfg.bits:
            f = _mean(rows, gain=g, bits=b, precision="float")
            x = _mean(rows, gain=g, bits=b, precision="fixed")
            m = lambda rs, k: float(np.nanmean([r[k] for r in rs]))
            lines.append(f"| {g} | {bits_label(b)} | {m(f, 'accuracy'):.3f} | {m(x, 'accuracy'):.3f} | "
                         f"{m(x, 'count_corr_vs_float'):.3f} | {m(f, 'lambda_max'):+.4f} |")
    checks = [r["lava_float_check"] for r in rows if "lava_float_check" in r]
    lines.append("")
    lines.append(f"Lava float spikes identical to the LIF backend (8-bit weights): {sum(checks)}/{len(checks)} networks. "
                 f"Fixed point at 32 'bits' = Loihi's 8-bit maximum.")
    init = {g: float(np.mean([r["lambda_max_init"] for r in _mean(rows, gain=g, precision="float")]))
            for g in cfg.gains}
    lines.append("λ_max before training: " + ", ".join(f"g={g}: {v:+.4f}" for g, v in init.items()))
    return "\n".join(lines)


def plot(rows, cfg: Config, out: Path) -> None:
    """Accuracy and λ_max vs weight bits, one colour per gain (``neuro.plots.gain_colors``); the float64
    network is a dotted line at its value (not a point on the bits axis).  Data in a CSV of the same name."""
    from neuro import plots
    plt = plots.pyplot()
    quantized = [b for b in cfg.bits if b != FULL_PRECISION]
    colors = plots.gain_colors(cfg.gains)
    for key, precisions, name, ylabel in (("accuracy", ("float", "fixed"), "accuracy_vs_bits.png",
                                           "held-out accuracy (fraction correct)"),
                                          ("lambda_max", ("float",), "lyapunov_vs_bits.png",
                                           "λ_max (per 20 ms step)")):
        fig, ax = plt.subplots(figsize=(5.6, 3.5))
        data = []
        for g in cfg.gains:
            for p in precisions:
                ys = [float(np.nanmean([r[key] for r in _mean(rows, gain=g, bits=b, precision=p)])) for b in quantized]
                ax.plot(quantized, ys, "o-" if p == "float" else "s--", color=colors[g], ms=4,
                        label=f"g = {g}, {'float' if p == 'float' else 'Loihi fixed point'}")
                data += [[g, p, b, y] for b, y in zip(quantized, ys)]
                if FULL_PRECISION in cfg.bits and p == "float":
                    full = float(np.nanmean([r[key] for r in _mean(rows, gain=g, bits=FULL_PRECISION, precision=p)]))
                    ax.axhline(full, color=colors[g], ls=":", lw=1)
                    data.append([g, p, "float64", full])
        ax.set_xticks(quantized)
        ax.set_xlabel("recurrent weight bits (Loihi grid)")
        ax.set_ylabel(ylabel)
        ax.set_title("dotted: float64 weights", fontsize=8)
        plots.legend_outside(ax)
        plots.write_csv((out / name).with_suffix(".csv"), ["gain", "precision", "bits", key], data)
        plots.save(fig, out / name)

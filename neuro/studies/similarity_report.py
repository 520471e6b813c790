"""The similarity study's last stage: tables (summary.csv, claims.csv, robustness.csv),
claims.md, and the figures (distance vs accuracy per task and reference; recurrent
weight eigenspectra per rule)."""
from __future__ import annotations

import warnings

import numpy as np

from neuro.studies.similarity_claims import at_accuracy, runs

COLORS = {"bptt": "black", "tbptt": "tab:blue", "eprop": "magenta", "np": "c", "es": "gold", "modprop": "green"}


def summary(rows) -> list[dict]:
    """One row per (task, reference, rule, Dale, gain, lr): the final snapshot over seeds."""
    groups = {}
    for r in rows:
        groups.setdefault((r["task"], r["reference"], r["rule"], r["dale"], r["gain"], r["lr"]), []).append(r)
    out = []
    for (task, ref, rule, dale, gain, lr), rs in groups.items():
        last = max(r["iteration"] for r in rs)
        final = [r for r in rs if r["iteration"] == last]
        acc, dist = np.array([r["accuracy"] for r in final]), np.array([r["distance"] for r in final])
        start = np.array([r["distance"] for r in rs if r["iteration"] == 0])
        out.append({"task": task, "reference": ref, "rule": rule, "dale": dale, "gain": gain, "lr": lr,
                    "seeds": len(final), "iterations": last, "accuracy_mean": round(float(acc.mean()), 4),
                    "accuracy_std": round(float(acc.std()), 4), "distance_mean": round(float(dist.mean()), 4),
                    "distance_std": round(float(dist.std()), 4),
                    "distance_at_init": round(float(start.mean()), 4) if len(start) else float("nan"),
                    "diverged": int(sum(r["diverged"] for r in final))})
    return out


def claims_markdown(cfg, claims, robust, refs, floors, elapsed, table=(), extra=()) -> str:
    from neuro.studies.similarity import RULE_LABELS
    lines = ["# Neural-data similarity across learning rules — the paper's claims against several stand-ins", "",
             f"Tasks {cfg.tasks}; rules {cfg.rules} (Dale/ReLU: {cfg.dale_rules}); {cfg.seeds} seeds; "
             f"N = {cfg.n_hidden}; iterations {cfg.iterations}; batch {cfg.batch_size}; Adam lr {cfg.lr}. "
             f"Wall time {elapsed / 60:.1f} min.", "",
             "Distance = angular Procrustes distance (radians; netrep `LinearMetric(alpha=1, center_columns=True)`) "
             "between noise-free condition-wise rates and the reference, read off each run's training snapshots at "
             "the stated normalized accuracy (0.95 × the lowest best accuracy among the compared runs). Each claim "
             "is a paired test over seeds (`neuro.curves.compare`/`verdict`, α = 0.05; 'comparable' = the 95 % CI "
             f"of the difference inside ±{cfg.equivalence_margin:g} rad). Supported = held against every neutral "
             "reference; the teacher is of the compared family and only shown.", "", "References:", ""]
    for name, found in refs.items():
        for ref in found:
            fl = floors[name][ref.name]
            lines.append(f"- {name} / `{ref.name}`: {ref.source}; split-half noise floor {fl['noise_floor']:.3f} ± "
                         f"{fl['noise_floor_std']:.3f} rad ({fl['n_sample']} neurons per half).")
    names = sorted({c["reference"] for c in claims}, key=lambda r: (r.startswith("teacher"), r))
    lines += ["", "## Which claims survive the choice of stand-in", "",
              "| task | claim | statement | " + " | ".join(names) + " | overall |",
              "|---|---|---|" + "---|" * len(names) + "---|"]
    for r in robust:
        lines.append(f"| {r['task']} | {r['claim']} | {r['what']} | "
                     + " | ".join(r["labels"].get(n, "") for n in names) + f" | **{r['overall']}** |")
    lines += ["", "## Every test", "", "| task | claim | reference | accuracy | measured | verdict | reason |",
              "|---|---|---|---|---|---|---|"]
    for c in claims:
        level = "" if not np.isfinite(c["level"]) else f"{c['level']:.2f}"
        lines.append(f"| {c['task']} | {c['claim']} ({c['subject']}) | {c['reference']} | {level} | {c['numbers']} | "
                     f"{c['label']} | {c['reason']} |")
    lines += list(extra)
    if table:
        lines += ["", "Final networks (last snapshot; mean ± std over seeds), distance to each reference:", "",
                  "| task | reference | rule | gain | lr | normalized accuracy | distance | distance at init |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in table:
            lines.append(f"| {r['task']} | {r['reference']} | {RULE_LABELS[r['rule']]}"
                         f"{' (Dale, ReLU)' if r['dale'] else ''} | {r['gain']:g} | {r['lr']:g} | "
                         f"{r['accuracy_mean']:.3f} ± {r['accuracy_std']:.3f} | {r['distance_mean']:.3f} ± "
                         f"{r['distance_std']:.3f} | {r['distance_at_init']:.3f} |"
                         + (f" ({r['diverged']} diverged)" if r["diverged"] else ""))
    return "\n".join(lines) + "\n"


def _curve(ax, series, color, label, ls="-"):
    grid = np.linspace(0, 1, 41)
    curves = []
    for acc, dist in series:
        ax.plot(acc, dist, color=color, lw=0.6, alpha=0.35, ls=ls)
        curves.append([at_accuracy((acc, dist), a) for a in grid])
    c = np.array(curves)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # accuracy levels no run reached: all-NaN columns
        mean, std = np.nanmean(c, 0), np.nanstd(c, 0)
    ok = np.sum(np.isfinite(c), 0) == len(series)
    ax.plot(grid[ok], mean[ok], color=color, lw=2, label=label, ls=ls)
    ax.fill_between(grid[ok], (mean - std)[ok], (mean + std)[ok], color=color, alpha=0.15, lw=0)


def figures(cfg, rows, floors, refs, out) -> None:
    from neuro.plots import pyplot
    plt = pyplot()
    with plt.rc_context({"font.family": "DejaVu Sans"}):     # some imported packages ask for fonts we lack
        for name in cfg.tasks:
            _figure(cfg, rows, floors, refs[name], out, name, plt)


def _figure(cfg, rows, floors, refs, out, name, plt):
    from neuro.studies.similarity import RULE_LABELS
    fig, axes = plt.subplots(len(refs), 3, figsize=(14, 3.4 * len(refs)), squeeze=False)
    for row, ref in zip(axes, refs):
        panels = [("rules", [(dict(rule=r, dale=False, gain=1.0, lr=cfg.lr), COLORS[r], RULE_LABELS[r], "-")
                             for r in cfg.rules]),
                  ("initial gain (BPTT solid, e-prop dashed)",
                   [(dict(rule=r, dale=False, gain=g, lr=cfg.lr), plt.cm.viridis(i / max(len(cfg.gains) - 1, 1)),
                     f"{RULE_LABELS[r]} g={g}", "--" if r == "eprop" else "-")
                    for i, g in enumerate(cfg.gains) for r in cfg.gain_rules]),
                  ("Dale's law, ReLU", [(dict(rule=r, dale=True, gain=1.0, lr=cfg.lr), COLORS[r], RULE_LABELS[r], "-")
                                        for r in cfg.dale_rules])]
        for ax, (title, lines) in zip(row, panels):
            for where, color, label, ls in lines:
                series = list(runs(rows, task=name, reference=ref.name, **where).values())
                if series:
                    _curve(ax, series, color, label, ls)
            fl = floors[name][ref.name]
            ax.axhspan(fl["noise_floor"] - fl["noise_floor_std"], fl["noise_floor"] + fl["noise_floor_std"],
                       color="orange", alpha=0.3, lw=0, label="noise floor")
            ax.set_title(f"{ref.name}: {title}", fontsize=9)
            ax.set_xlim(0, 1)
            ax.legend(frameon=False, fontsize=6)
        row[0].set_ylabel("Procrustes distance (rad)")
    for ax in axes[-1]:
        ax.set_xlabel("normalized accuracy")
    fig.suptitle(f"{name}: distance to each reference vs accuracy during training", fontsize=11)
    fig.tight_layout()
    fig.savefig(out / f"distance_vs_accuracy_{name}.png", dpi=110)
    plt.close(fig)


def eigenspectrum_figure(cfg, finals, out) -> list[str]:
    """Eigenvalues of the trained recurrent matrices (the paper's appendix Fig. 8A): rows = initial gain,
    columns = rule; every seed's eigenvalues overlaid. Returns the written file names."""
    from neuro.plots import pyplot
    from neuro.studies.similarity import RULE_LABELS
    plt = pyplot()
    written = []
    for name in cfg.tasks:
        rules = [r for r in cfg.gain_rules if any(k[0] == name and k[1] == r for k in finals)]
        gains = sorted({k[3] for k in finals if k[0] == name and not k[2] and k[1] in rules and k[4] == cfg.lr})
        if not rules or not gains:
            continue
        with plt.rc_context({"font.family": "DejaVu Sans"}):
            fig, axes = plt.subplots(len(gains), len(rules), figsize=(3.2 * len(rules), 3.0 * len(gains)),
                                     squeeze=False, sharex=True, sharey=True)
            circle = np.exp(1j * np.linspace(0, 2 * np.pi, 200))
            for i, g in enumerate(gains):
                for j, r in enumerate(rules):
                    ax = axes[i, j]
                    for s in range(cfg.seeds):
                        key = (name, r, False, g, cfg.lr, s)
                        if key in finals:
                            ev = np.linalg.eigvals(finals[key][1])
                            ax.scatter(ev.real, ev.imag, s=4, alpha=0.6, color=COLORS.get(r, "k"))
                    ax.plot(circle.real, circle.imag, color="grey", lw=0.5)
                    ax.set_aspect("equal")
                    ax.set_title(f"{RULE_LABELS[r]}, gain {g:g}", fontsize=9)
            fig.suptitle(f"{name}: eigenvalues of the trained recurrent weights", fontsize=10)
            fig.tight_layout()
            path = out / f"eigenspectrum_{name}.png"
            fig.savefig(path, dpi=110)
            plt.close(fig)
            written.append(path.name)
    return written

"""Figures (matplotlib; without a display matplotlib falls back to Agg, and importing neuro
never chooses a backend for the user's process)."""
from __future__ import annotations

import logging
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

# One figure style for the project: a font every matplotlib ships (NeuroGym sets "arial" on import,
# which most Linux machines lack: every text then logs a "findfont" line), sizes that stay legible
# when a figure is shrunk to a column, no top/right spines.
STYLE = {
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "figure.dpi": 100,
    "savefig.dpi": 150,
}
logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)

# Colours shared by every figure: a sequential map for gains (low = dark), fixed colours for rules and
# for the two variants of a comparison, and a qualitative map for several outputs or seeds.
GAIN_CMAP = "viridis"
RULE_COLORS = {"bptt": "#1f77b4", "tbptt": "#17becf", "eprop": "#d62728", "rflo": "#d62728", "modprop": "#9467bd",
               "np": "#8c564b", "es": "#e377c2", "force": "#d62728", "full_force": "#1f77b4",
               "reinforce": "#1f77b4", "reward_hebbian": "#ff7f0e"}
VARIANT_COLORS = {"rate": "#1f77b4", "lif": "#d62728"}
TARGET_COLOR = "0.55"


def categorical(n: int) -> list:
    """``n`` distinct colours (tab10, then tab20 beyond ten)."""
    cmap = plt.get_cmap("tab10" if n <= 10 else "tab20")
    return [cmap(i % cmap.N) for i in range(n)]


def gain_colors(gains) -> dict:
    """One colour per gain from ``GAIN_CMAP``, in increasing order of gain."""
    gains = sorted(gains)
    cmap = plt.get_cmap(GAIN_CMAP)
    return {g: cmap(0.9 * i / max(len(gains) - 1, 1)) for i, g in enumerate(gains)}


def rule_color(rule: str, default="0.3"):
    return RULE_COLORS.get(rule, default)


def legend_outside(ax, title: str | None = None, **kwargs):
    """The legend beside the axes (right of it), never over the traces."""
    kwargs.setdefault("frameon", False)
    kwargs.setdefault("loc", "upper left")
    kwargs.setdefault("bbox_to_anchor", (1.01, 1.0))
    kwargs.setdefault("borderaxespad", 0.0)
    return ax.legend(title=title, **kwargs)


def line_handle(**style):
    """A legend entry for a line style that no single trace carries (e.g. "target: thick, pale")."""
    from matplotlib.lines import Line2D
    return Line2D([], [], **style)


def mark_diverged(ax, x, color, label: str | None = None):
    """An ``×`` at the top edge of ``ax`` above ``x``, annotated "diverged": a run whose values became
    non-finite or left the axis there is marked, never silently missing."""
    bottom, top = ax.get_ylim()
    ax.set_ylim(bottom, top)          # fixed, so that the marker does not widen the axis it sits on
    ax.plot([x], [top], marker="x", color=color, ms=8, mew=2, clip_on=False, ls="none",
            label=label)
    ax.annotate("diverged", (x, top), textcoords="offset points", xytext=(4, -10), fontsize=7, color=color)


def write_csv(path, header: list, rows: list) -> Path:
    """A figure's data beside it: ``path`` (a ``.csv``), one row per plotted value."""
    return _write_csv(Path(path), header, rows)


def apply_style() -> None:
    """Set the project's figure style (``STYLE``) in matplotlib's rcParams."""
    plt.rcParams.update(STYLE)


def _mean_std(curves: list[list[float]]) -> tuple[np.ndarray, np.ndarray]:
    """Mean ± std over runs; a run that stopped early (diverged) counts until it stopped."""
    n = max(len(c) for c in curves)
    a = np.full((len(curves), n), np.nan)
    for i, c in enumerate(curves):
        a[i, : len(c)] = c
    with np.errstate(all="ignore"):
        return np.nanmean(a, 0), np.nanstd(a, 0)


def _diverged(curve) -> bool:
    """A run diverged: a non-finite value, or its end far above its start (``neuro.ensemble.divergence``)."""
    from neuro.ensemble import divergence
    from neuro.training import History
    c = np.asarray(curve, dtype=float)
    if not np.all(np.isfinite(c)):
        return True
    return divergence(History(list(range(len(c))), list(c), [np.nan] * len(c))) is not None


def _legend(fig, axes) -> None:
    """One legend beside the last panel when the panels share their lines, else one below each panel:
    never over the traces."""
    labels = [tuple(ax.get_legend_handles_labels()[1]) for ax in axes]
    if len(set(labels)) == 1:
        axes[-1].legend(frameon=False, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    else:
        for ax in axes:
            ax.legend(frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=2)


def _write_csv(path: Path, header: list, rows: list) -> Path:
    import csv
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def learning_curves(panels: dict, path, title: str = "", ylabel: str = "loss", logy: bool = True,
                    smooth: int = 10) -> Path:
    """One panel per key of ``panels``; in each, one line per label (mean ± std over the runs that did
    not diverge; shaded: ± 1 std).

    ``panels = {panel title: {line label: [curve of run 1, curve of run 2, …]}}``.
    Curves are smoothed with a running mean of ``smooth`` iterations for legibility.  A run that
    diverged (non-finite, or ending 100× above its start) is drawn thin and dashed, marked ``×``
    where it leaves the axis or stops, and counted in its line's label — never silently off the axis.
    The data go to ``path`` with suffix ``.csv`` (panel, line, run, iteration, value, diverged).
    """
    apply_style()
    path = Path(path)
    n = len(panels)
    fig, axes = plt.subplots(1, n, figsize=(3.6 * n + 1.4, 3.2), sharey=True, squeeze=False)
    axes = list(axes[0])
    colors = plt.cm.viridis(np.linspace(0.0, 0.9, max(len(v) for v in panels.values())))
    starts, lows, rows, bad_runs = [], [], [], []
    for ax, (name, lines) in zip(axes, panels.items()):
        counts = []
        for color, (label, curves) in zip(colors, lines.items()):
            bad = [_diverged(c) for c in curves]
            if any(bad):
                counts.append(f"{label}: {sum(bad)}/{len(bad)} diverged")
            good = [_smooth(c, smooth) for c, b in zip(curves, bad) if not b]
            for r, (c, b) in enumerate(zip(curves, bad)):
                rows += [[name, label, r, i, float(v), int(b)] for i, v in enumerate(np.asarray(c, dtype=float))]
            text = label
            if good:
                mean, std = _mean_std(good)
                x = np.arange(len(mean))
                ax.plot(x, mean, color=color, label=text, lw=1.5)
                # on a log axis a band below zero is meaningless: keep its lower edge above mean/10
                lower = np.maximum(mean - std, mean / 10) if logy else mean - std
                ax.fill_between(x, lower, mean + std, color=color, alpha=0.2, lw=0)
                starts.append(mean[0])
                lows.append(np.nanmin(mean))
            else:
                ax.plot([], [], color=color, ls="--", label=text)
            for c, b in zip(curves, bad):
                if b:
                    bad_runs.append((ax, color, _smooth(c, smooth)))
        ax.set_title(name + ("\n(" + "; ".join(counts) + ")" if counts else ""))
        ax.set_xlabel("iteration")
        if logy:
            ax.set_yscale("log")
    if logy and starts:
        # the range the runs that did not diverge start in: a diverged run would squash them
        top, bottom = 3 * np.nanmedian(starts), 0.5 * np.nanmin(lows)
        if np.isfinite(top) and np.isfinite(bottom) and 0 < bottom < top:
            for ax in axes:
                ax.set_ylim(bottom, top)
    for ax, color, c in bad_runs:
        finite = np.isfinite(c)
        x = np.arange(len(c))
        lim = ax.get_ylim()[1] if starts else np.nanmax(np.where(finite, c, np.nan))
        shown = np.where(finite & (c <= lim), c, np.nan)
        ax.plot(x, shown, color=color, lw=0.7, ls="--", alpha=0.8)
        out = np.flatnonzero(~finite | (c > lim))
        at = out[0] if len(out) else len(c) - 1
        ax.plot([at], [lim if len(out) else c[-1]], marker="x", color=color, ms=7, mew=2, clip_on=False)
    if any(bad_runs):
        fig.text(0.01, 0.0, "dashed, ×: a diverged run (non-finite, or ending 100× above its start) and where it "
                 "leaves the axis or stops; shaded: ± 1 std over the other runs", fontsize=7, va="top")
    axes[0].set_ylabel(ylabel)
    _legend(fig, axes)
    if title:
        fig.suptitle(title)
    _write_csv(path.with_suffix(".csv"), ["panel", "line", "run", "iteration", "value", "diverged"], rows)
    return _save(fig, path)


def before_after(gains: list, panels: dict, path, ylabel: str) -> Path:
    """Per panel: a value before and after training vs gain (mean ± std over runs: the error bars).
    The data go to ``path`` with suffix ``.csv`` (panel, gain, when, run, value)."""
    apply_style()
    path = Path(path)
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels) + 1.4, 3.2), sharey=True, squeeze=False)
    axes = list(axes[0])
    rows = []
    for ax, (name, (before, after)) in zip(axes, panels.items()):
        for label, values, style, when in (("before training", before, "o-", "before"),
                                           ("after training", after, "s-", "after")):
            m = np.array([np.mean(v) for v in values])
            s = np.array([np.std(v) for v in values])
            ax.errorbar(gains, m, yerr=s, fmt=style, capsize=3, label=label)
            rows += [[name, g, when, r, float(x)] for g, v in zip(gains, values) for r, x in enumerate(v)]
        ax.axhline(0, color="gray", lw=0.8, ls="--")
        ax.set_title(name)
        ax.set_xlabel("initial gain g")
    axes[0].set_ylabel(ylabel)
    _legend(fig, axes)
    fig.text(0.01, 0.0, "error bars: ± 1 std over runs", fontsize=7, va="top")
    _write_csv(path.with_suffix(".csv"), ["panel", "gain", "when", "run", "value"], rows)
    return _save(fig, path)


def _smooth(c, n: int) -> np.ndarray:
    c = np.asarray(c, dtype=float)
    if n <= 1 or len(c) < n:
        return c
    return np.convolve(c, np.ones(n) / n, mode="valid")


def _save(fig, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return path


def pyplot():
    """matplotlib.pyplot with the project's style: figures elsewhere in neuro go through this module."""
    apply_style()
    return plt


def save(fig, path) -> Path:
    """Lay out, write at the style's dpi (creating folders) and close ``fig``."""
    return _save(fig, path)

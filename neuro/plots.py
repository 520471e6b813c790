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


def learning_curves(panels: dict, path, title: str = "", ylabel: str = "loss", logy: bool = True,
                    smooth: int = 10) -> Path:
    """One panel per key of ``panels``; in each, one line per label (mean ± std over runs).

    ``panels = {panel title: {line label: [curve of run 1, curve of run 2, …]}}``.
    Curves are smoothed with a running mean of ``smooth`` iterations for legibility.
    """
    apply_style()
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), sharey=True, squeeze=False)
    colors = plt.cm.viridis(np.linspace(0.0, 0.9, max(len(v) for v in panels.values())))
    starts, lows = [], []
    for ax, (name, lines) in zip(axes[0], panels.items()):
        for color, (label, curves) in zip(colors, lines.items()):
            mean, std = _mean_std([_smooth(c, smooth) for c in curves])
            x = np.arange(len(mean))
            ax.plot(x, mean, color=color, label=label, lw=1.5)
            # on a log axis a band below zero is meaningless: keep its lower edge above mean/10
            lower = np.maximum(mean - std, mean / 10) if logy else mean - std
            ax.fill_between(x, lower, mean + std, color=color, alpha=0.2, lw=0)
            starts.append(mean[0])
            lows.append(np.nanmin(mean))
        ax.set_title(name)
        ax.set_xlabel("iteration")
        if logy:
            ax.set_yscale("log")
        ax.legend(frameon=False, fontsize=8)
    if logy and starts:
        # a diverging run would squash every other curve: show the range the typical runs start in
        top, bottom = 3 * np.nanmedian(starts), 0.5 * np.nanmin(lows)
        if np.isfinite(top) and np.isfinite(bottom) and 0 < bottom < top:
            for ax in axes[0]:
                ax.set_ylim(bottom, top)
    axes[0][0].set_ylabel(ylabel)
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def before_after(gains: list, panels: dict, path, ylabel: str) -> Path:
    """Per panel: a value before and after training vs gain (mean ± std over runs)."""
    apply_style()
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), sharey=True, squeeze=False)
    for ax, (name, (before, after)) in zip(axes[0], panels.items()):
        for label, values, style in (("before training", before, "o-"), ("after training", after, "s-")):
            m = np.array([np.mean(v) for v in values])
            s = np.array([np.std(v) for v in values])
            ax.errorbar(gains, m, yerr=s, fmt=style, capsize=3, label=label)
        ax.axhline(0, color="gray", lw=0.8, ls="--")
        ax.set_title(name)
        ax.set_xlabel("initial gain g")
        ax.legend(frameon=False, fontsize=8)
    axes[0][0].set_ylabel(ylabel)
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
    fig.savefig(path)
    plt.close(fig)
    return path


def pyplot():
    """matplotlib.pyplot with the project's style: figures elsewhere in neuro go through this module."""
    apply_style()
    return plt


def save(fig, path) -> Path:
    """Lay out, write at the style's dpi (creating folders) and close ``fig``."""
    return _save(fig, path)

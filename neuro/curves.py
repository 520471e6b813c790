"""Learning-curve statistics, comparisons across seeds, and verdicts.

A learning rule is judged by its learning curve, the loss over training
iterations (Liu, Zhang & Liu: "the learning curve, which tracks the reduction in
the loss"), not by one number at the end.  Per run this module reduces a curve to

- ``window_log10``: the mean log10 loss over a window of iterations (the paper's
  figures start at iteration 200);
- ``area_log10``: the area under the log10-loss curve (trapezoid rule, in
  log10 · iterations) — small when a run learns early *and* well;
- ``iterations_to``: the first iteration at which the running mean of the loss
  falls below a criterion (``None`` when it never does: a censored run);
- ``final``: the mean of the last iterations (loss or accuracy).

Across seeds, ``compare(a, b)`` pairs the runs seed by seed (the same seed draws
the same batches and, at another gain, a scaled copy of the same connectivity)
and gives the mean difference with its 95 % confidence interval, a paired
t-test (one- and two-sided p-values) and the effect size d_z = mean(d)/sd(d).
Where a run diverged (a non-finite statistic) the t-test is undefined; the
comparison then uses the exact Wilcoxon signed-rank test, with a diverged run
ranked worse than every finite one.  ``verdict`` turns a comparison into
"held", "not held" or "inconclusive": a claimed direction is held only when the
difference lies that way *and* is significant; it is not held only when the
opposite difference is significant or, given an equivalence margin, the whole
confidence interval lies inside it; anything else (seed noise) is inconclusive.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass

import numpy as np

CLAIMS = ("less", "greater", "equivalent")


# -- one run -------------------------------------------------------------------------

def _curve(values) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1:
        raise ValueError(f"a learning curve is one value per iteration, got shape {arr.shape}")
    return arr


def _log10(loss: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.log10(loss)
    out[~np.isfinite(loss) | (loss < 0)] = np.inf        # a diverged (or nonsensical) loss counts as worst
    return out


def _window(n: int, start: int, stop: int | None) -> slice:
    if not isinstance(start, (int, np.integer)) or start < 0:
        raise ValueError(f"window start must be an integer >= 0, got {start!r}")
    stop = n if stop is None else stop
    if stop <= start:
        raise ValueError(f"window [{start}, {stop}) is empty")
    return slice(start, stop)


def window_log10(loss, start: int = 0, stop: int | None = None) -> float:
    """Mean log10 loss over iterations ``[start, stop)``; inf when the run diverged in or before
    the window or stopped before its end."""
    loss = _curve(loss)
    w = _window(len(loss), start, stop)
    if (w.stop > len(loss)) or not np.all(np.isfinite(loss[:w.stop])):
        return math.inf
    return float(np.mean(_log10(loss[w])))


def area_log10(loss, start: int = 0, stop: int | None = None) -> float:
    """Area under the log10-loss curve over ``[start, stop)`` (trapezoid rule, log10 · iterations);
    inf when the run diverged or stopped early."""
    loss = _curve(loss)
    w = _window(len(loss), start, stop)
    if (w.stop > len(loss)) or not np.all(np.isfinite(loss[:w.stop])):
        return math.inf
    y = _log10(loss[w])
    return float(np.sum((y[1:] + y[:-1]) / 2)) if len(y) > 1 else float(y[0])


def iterations_to(values, threshold: float, smooth: int = 20, below: bool = True) -> int | None:
    """The first iteration i at which the mean of ``values[i-smooth+1 : i+1]`` is below ``threshold``
    (``below=False``: at or above it, for accuracies); ``None`` if it never gets there."""
    v = _curve(values)
    if not isinstance(smooth, (int, np.integer)) or smooth < 1:
        raise ValueError(f"smooth must be an integer >= 1, got {smooth!r}")
    if len(v) < smooth:
        return None
    finite = np.where(np.isfinite(v), v, np.inf if below else -np.inf)
    running = np.convolve(finite, np.ones(smooth) / smooth, mode="valid")   # running[k] ends at k+smooth-1
    hit = np.nonzero(running < threshold if below else running >= threshold)[0]
    return int(hit[0] + smooth - 1) if len(hit) else None


def final(values, n: int = 20) -> float:
    """Mean of the last ``n`` values (inf for a loss curve that ends non-finite)."""
    v = _curve(values)
    if len(v) == 0:
        return math.nan
    tail = v[-n:]
    return float(np.mean(tail)) if np.all(np.isfinite(tail)) else math.inf


def run_statistics(loss, accuracy=None, window: tuple = (200, None), criterion: float | None = None,
                   final_window: int = 20) -> dict:
    """Every statistic of one run, as a flat dict (a row of a results table)."""
    loss = _curve(loss)
    start, stop = window
    start = min(start, max(len(loss) - 1, 0))
    row = {"window_log10_loss": window_log10(loss, start, stop), "area_log10_loss": area_log10(loss),
           "final_loss": final(loss, final_window), "iterations": len(loss),
           "diverged": bool(not np.all(np.isfinite(loss)))}
    if criterion is not None:
        row["iterations_to_criterion"] = iterations_to(loss, criterion)
    if accuracy is not None:
        acc = _curve(accuracy)
        tail = acc[-final_window:]
        row["final_accuracy"] = float(np.nanmean(tail)) if np.any(np.isfinite(tail)) else math.nan
    return row


# -- across seeds ----------------------------------------------------------------------

@dataclass
class Comparison:
    """``a`` against ``b`` over paired seeds (or two independent groups): d = a - b."""

    n: int
    mean_a: float
    std_a: float
    mean_b: float
    std_b: float
    diff_mean: float
    ci: tuple          # 95 % confidence interval of the mean difference (nan, nan) under the rank test
    p: float           # two-sided
    p_less: float      # one-sided, H1: a < b
    p_greater: float   # one-sided, H1: a > b
    effect: float      # d_z (paired t), Hedges' g (Welch) or the rank-biserial correlation (signed-rank)
    test: str

    def as_dict(self) -> dict:
        d = asdict(self)
        d["ci_low"], d["ci_high"] = d.pop("ci")
        return d


def _describe(x: np.ndarray) -> tuple[float, float]:
    ok = x[np.isfinite(x)]
    if len(ok) < len(x):
        return math.inf, math.nan
    return float(np.mean(x)), float(np.std(x, ddof=1)) if len(x) > 1 else math.nan


def compare(a, b, paired: bool = True, confidence: float = 0.95) -> Comparison:
    """Compare per-seed statistics ``a`` and ``b`` (lower = better for losses)."""
    from scipy import stats
    a, b = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    if paired and len(a) != len(b):
        raise ValueError(f"a paired comparison needs as many values on each side, got {len(a)} and {len(b)}")
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"a comparison needs at least 2 values per side, got {len(a)} and {len(b)}")
    (ma, sa), (mb, sb) = _describe(a), _describe(b)
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        if not paired:
            raise ValueError("an unpaired comparison with diverged runs is not supported; pair the seeds")
        p_less, p_greater, effect = _signed_rank(a, b)
        return Comparison(len(a), ma, sa, mb, sb, math.nan, (math.nan, math.nan), min(1.0, 2 * min(p_less, p_greater)),
                          p_less, p_greater, effect, "exact Wilcoxon signed-rank (diverged runs ranked worst)")
    if paired:
        d = a - b
        n, mean, sd = len(d), float(d.mean()), float(d.std(ddof=1))
        if sd == 0:       # identical differences: no noise to test against
            p_two = 0.0 if mean != 0 else 1.0
            return Comparison(n, ma, sa, mb, sb, mean, (mean, mean), p_two, 0.0 if mean < 0 else 1.0,
                              0.0 if mean > 0 else 1.0, math.copysign(math.inf, mean) if mean else 0.0, "paired t")
        se = sd / math.sqrt(n)
        t = mean / se
        half = stats.t.ppf(0.5 + confidence / 2, n - 1) * se
        return Comparison(n, ma, sa, mb, sb, mean, (mean - half, mean + half), float(2 * stats.t.sf(abs(t), n - 1)),
                          float(stats.t.cdf(t, n - 1)), float(stats.t.sf(t, n - 1)), mean / sd, "paired t")
    res = stats.ttest_ind(a, b, equal_var=False)
    df = _welch_df(a, b)
    se = math.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
    mean = float(a.mean() - b.mean())
    half = stats.t.ppf(0.5 + confidence / 2, df) * se
    t = mean / se if se > 0 else math.copysign(math.inf, mean)
    pooled = math.sqrt(((len(a) - 1) * a.var(ddof=1) + (len(b) - 1) * b.var(ddof=1)) / (len(a) + len(b) - 2))
    g = mean / pooled * (1 - 3 / (4 * (len(a) + len(b)) - 9)) if pooled > 0 else math.nan
    return Comparison(len(a), ma, sa, mb, sb, mean, (mean - half, mean + half), float(res.pvalue),
                      float(stats.t.cdf(t, df)), float(stats.t.sf(t, df)), g, "Welch t")


def _welch_df(a, b) -> float:
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    return (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))


def _signed_rank(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """Exact one-sided p-values of the Wilcoxon signed-rank statistic by enumerating all sign flips;
    a non-finite value is worse than any finite one, two non-finite values tie."""
    from scipy.stats import rankdata
    both_bad = ~np.isfinite(a) & ~np.isfinite(b)
    d = np.where(both_bad, 0.0, np.where(~np.isfinite(a), math.inf, np.where(~np.isfinite(b), -math.inf, a - b)))
    d = d[d != 0]
    if len(d) == 0:
        return 1.0, 1.0, 0.0
    if len(d) > 20:
        raise ValueError("the exact signed-rank test enumerates 2^n sign flips; use at most 20 pairs")
    ranks = rankdata(np.abs(d))
    observed = ranks[d > 0].sum()
    total = ranks.sum()
    sums = np.array([sum(r for r, s in zip(ranks, signs) if s) for signs in itertools.product((0, 1), repeat=len(d))])
    p_greater = float(np.mean(sums >= observed - 1e-9))      # H1: a > b, large positive rank sum
    p_less = float(np.mean(sums <= observed + 1e-9))
    effect = float((2 * observed - total) / total)           # rank-biserial: +1 when every a > b
    return p_less, p_greater, effect


def verdict(cmp: Comparison, claim: str, alpha: float = 0.05, margin: float | None = None) -> tuple[str, str]:
    """("held" | "not held" | "inconclusive", reason) for the claim that a is ``claim`` than b
    ("less", "greater") or that they are equivalent within ``margin`` ("equivalent", needs a margin)."""
    if claim not in CLAIMS:
        raise ValueError(f"claim must be one of {CLAIMS}, got {claim!r}")
    if claim == "equivalent":
        if margin is None or not margin > 0:
            raise ValueError(f"an equivalence claim needs a margin > 0, got {margin!r}")
        lo, hi = cmp.ci
        if not (np.isfinite(lo) and np.isfinite(hi)):
            return "inconclusive", "no confidence interval (diverged runs)"
        if -margin < lo and hi < margin:
            return "held", f"95 % CI [{lo:.3g}, {hi:.3g}] inside ±{margin:g}"
        if lo >= margin or hi <= -margin:
            return "not held", f"95 % CI [{lo:.3g}, {hi:.3g}] outside ±{margin:g}"
        return "inconclusive", f"95 % CI [{lo:.3g}, {hi:.3g}] overlaps ±{margin:g}"
    p_claimed, p_opposite = (cmp.p_less, cmp.p_greater) if claim == "less" else (cmp.p_greater, cmp.p_less)
    if p_claimed < alpha:
        return "held", f"one-sided p = {p_claimed:.2g} ({cmp.test}, n = {cmp.n})"
    if p_opposite < alpha:
        return "not held", f"the opposite difference is significant, p = {p_opposite:.2g} ({cmp.test})"
    lo, hi = cmp.ci
    if margin is not None and np.isfinite(lo) and -margin < lo and hi < margin:
        return "not held", f"95 % CI [{lo:.3g}, {hi:.3g}] inside ±{margin:g}: no difference of consequence"
    return "inconclusive", f"within seed noise: one-sided p = {p_claimed:.2g} ({cmp.test}, n = {cmp.n})"


def holm(pvalues) -> list[float]:
    """Holm–Bonferroni adjusted p-values (same order as given), for a family of claims."""
    p = np.asarray(pvalues, dtype=float)
    order = np.argsort(p)
    adjusted = np.empty_like(p)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p) - rank) * p[i]))
        adjusted[i] = running
    return adjusted.tolist()


def at_floor(values, floor: float, tolerance: float = 0.05) -> bool:
    """True when every run's statistic sits within ``tolerance`` (relative) of a chance floor
    (e.g. the loss of always answering the average target): such runs learned nothing to compare."""
    v = np.asarray(values, dtype=float)
    return bool(np.all(np.isfinite(v)) and np.all(v >= floor * (1 - tolerance)))

"""Learning-curve statistics and verdicts against hand computations and scipy."""
import math

import numpy as np
import pytest
from scipy import stats

from neuro import curves


def test_window_and_area_of_a_known_curve():
    loss = 10.0 ** -np.arange(5, dtype=float)            # log10 loss = 0, -1, -2, -3, -4
    assert curves.window_log10(loss, 1, 4) == pytest.approx(-2.0)
    assert curves.area_log10(loss) == pytest.approx(-(0.5 + 1.5 + 2.5 + 3.5))
    assert curves.area_log10(loss, 2) == pytest.approx(-(2.5 + 3.5))
    assert curves.window_log10(np.array([1.0, np.inf, 0.1]), 2) == math.inf   # diverged before the window
    assert curves.area_log10(np.array([1.0, 0.1, np.nan])) == math.inf
    assert curves.window_log10(loss, 0, 10) == math.inf                       # stopped before the window ends


def test_iterations_to_criterion_on_synthetic_curves():
    loss = np.r_[np.ones(100), np.full(100, 0.001)]
    assert curves.iterations_to(loss, 0.01, smooth=1) == 100
    # the running mean of 20 iterations first falls below 0.01 once 19 of them are 0.001 and one is 1.0? no:
    # (k·0.001 + (20-k)·1)/20 < 0.01  needs k = 20, i.e. the window [100, 119]
    assert curves.iterations_to(loss, 0.01, smooth=20) == 119
    assert curves.iterations_to(np.ones(50), 0.5) is None
    assert curves.iterations_to([0.1, 0.5, 0.9], 0.8, smooth=1, below=False) == 2
    assert curves.iterations_to(np.r_[np.ones(10), np.inf, np.zeros(30)], 0.5, smooth=5) == 15


def test_paired_t_equals_scipy_and_the_ci_covers_by_hand():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 7), rng.normal(0.5, 1, 7)
    c = curves.compare(a, b)
    ref = stats.ttest_rel(a, b)
    assert c.p == pytest.approx(ref.pvalue, rel=1e-10)
    assert c.p_less == pytest.approx(stats.ttest_rel(a, b, alternative="less").pvalue, rel=1e-10)
    assert c.p_greater == pytest.approx(stats.ttest_rel(a, b, alternative="greater").pvalue, rel=1e-10)
    d = a - b
    half = stats.t.ppf(0.975, 6) * d.std(ddof=1) / np.sqrt(7)
    assert c.ci == pytest.approx((d.mean() - half, d.mean() + half))
    assert c.effect == pytest.approx(d.mean() / d.std(ddof=1))


def test_welch_equals_scipy_and_hedges_g_by_hand():
    a, b = np.array([1.0, 2.0, 3.0, 4.0]), np.array([3.0, 5.0, 4.0, 6.0, 7.0])
    c = curves.compare(a, b, paired=False)
    assert c.p == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue, rel=1e-10)
    assert c.p_less == pytest.approx(stats.ttest_ind(a, b, equal_var=False, alternative="less").pvalue, rel=1e-8)
    pooled = np.sqrt((3 * a.var(ddof=1) + 4 * b.var(ddof=1)) / 7)
    assert c.effect == pytest.approx((a.mean() - b.mean()) / pooled * (1 - 3 / (4 * 9 - 9)))


def test_signed_rank_equals_scipy_exact_and_ranks_diverged_runs_worst():
    a, b = np.array([0.3, 0.5, 0.2, 0.9, 0.45, 0.8]), np.array([0.1, 0.35, 0.25, 0.4, 0.3, 0.2])
    p_less, p_greater, _ = curves._signed_rank(a, b)
    assert p_greater == pytest.approx(stats.wilcoxon(a, b, alternative="greater", method="exact").pvalue)
    assert p_less == pytest.approx(stats.wilcoxon(a, b, alternative="less", method="exact").pvalue)
    # a diverged run (inf) at a is the largest positive difference
    c = curves.compare(np.r_[np.inf, a[1:]], b)
    assert c.test.startswith("exact Wilcoxon")
    assert c.p_greater <= p_greater
    assert math.isinf(c.mean_a)


def test_a_difference_inside_seed_noise_is_never_held():
    # a case like the old DMS/BPTT table: means 0.1991 vs 0.1984 with a seed spread of about 0.0008
    a = np.array([0.1983, 0.2001, 0.1990, 0.1982, 0.1999])
    b = np.array([0.1990, 0.1975, 0.1993, 0.1979, 0.1983])
    assert a.mean() == pytest.approx(0.1991) and b.mean() == pytest.approx(0.1984)
    assert curves.verdict(curves.compare(a, b), "greater")[0] == "inconclusive"
    # with no true difference the claim is held at about the test's level, never more
    rng = np.random.default_rng(1)
    same = [curves.verdict(curves.compare(x, x + rng.normal(0, 1e-3, 5)), "less")[0]
            for x in rng.normal(0, 1, (400, 5))]
    assert same.count("held") / 400 < 0.09


def test_verdict_labels():
    a = np.array([1.0, 1.1, 0.9, 1.05, 0.95])
    b = a + np.array([0.5, 0.6, 0.55, 0.45, 0.5])
    assert curves.verdict(curves.compare(a, b), "less")[0] == "held"
    assert curves.verdict(curves.compare(a, b), "greater")[0] == "not held"
    noisy = a + np.array([0.1, -0.1, 0.05, -0.05, 0.0])
    assert curves.verdict(curves.compare(a, noisy), "less")[0] == "inconclusive"
    tight = a + np.array([0.001, -0.001, 0.0005, -0.0005, 0.0002])
    assert curves.verdict(curves.compare(a, tight), "equivalent", margin=0.05)[0] == "held"
    assert curves.verdict(curves.compare(a, b), "equivalent", margin=0.05)[0] == "not held"
    with pytest.raises(ValueError, match="margin"):
        curves.verdict(curves.compare(a, b), "equivalent")


def test_holm_by_hand_and_the_chance_floor():
    assert curves.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert curves.at_floor([0.199, 0.2, 0.21], floor=0.195)
    assert not curves.at_floor([0.05, 0.2], floor=0.195)

"""Correctness of the sample statistics: known values, small-n fallbacks, sanity on known laws."""

import math

import numpy as np
import pytest

from bench.stats import samples as stats
from bench.stats.samples import mann_whitney_u, median_ci, ratio_ci, summarize


def test_summarize_hand_computed_values():
    s = summarize([3.0, 1.0, 5.0, 2.0, 4.0], images_per_step=10)
    assert s.n == 5
    assert s.median_s == 3.0 and s.mean_s == 3.0
    assert s.std_s == pytest.approx(math.sqrt(2.5))
    assert s.cv == pytest.approx(math.sqrt(2.5) / 3.0)
    assert s.iqr_s == pytest.approx(2.0)
    assert s.p50_ms == pytest.approx(3000.0)
    assert s.p90_ms == pytest.approx(4600.0)
    assert s.p99_ms == pytest.approx(4960.0)
    # n=5 is too small for a 95% order-statistic CI: the (min, max) fallback.
    assert (s.median_ci_low_s, s.median_ci_high_s) == (1.0, 5.0)
    assert s.ci_rel_halfwidth == pytest.approx(2.0 / 3.0)
    assert s.images_per_s == pytest.approx(10 / 3.0)
    # Throughput CI is the inverted time CI: the slow end of time is the low end of throughput.
    assert s.ips_ci_low == pytest.approx(10 / 5.0)
    assert s.ips_ci_high == pytest.approx(10 / 1.0)


def test_summarize_single_sample():
    s = summarize([0.25], images_per_step=4)
    assert s.n == 1 and s.std_s == 0.0 and s.cv == 0.0
    assert (s.median_ci_low_s, s.median_ci_high_s) == (0.25, 0.25)
    assert s.ci_rel_halfwidth == 0.0
    assert s.images_per_s == s.ips_ci_low == s.ips_ci_high == 16.0
    assert s.outliers == 0 and s.outlier_indices == ()


@pytest.mark.parametrize("bad", [[], [1.0, float("nan")], [float("inf")]])
def test_summarize_rejects_empty_or_non_finite(bad):
    with pytest.raises(ValueError):
        summarize(bad, images_per_step=1)


def test_summarize_rejects_negative_images():
    with pytest.raises(ValueError, match="images_per_step"):
        summarize([1.0], images_per_step=-1)


def test_outliers_tukey_fences_on_hand_made_data():
    data = [10, 11, 10, 12, 11, 10, 50, 11, 10, 1]
    # Quartiles 10 and 11, IQR 1, fences 8.5 and 12.5: 50 and 1 are out, 12 is in.
    s = summarize(data, images_per_step=1)
    assert s.iqr_s == pytest.approx(1.0)
    assert s.outliers == 2
    assert s.outlier_indices == (6, 9)


def test_constant_samples_have_no_outliers_and_zero_width():
    s = summarize([0.002] * 50, images_per_step=8)
    assert s.outliers == 0 and s.std_s == 0.0 and s.cv == 0.0
    assert s.ci_rel_halfwidth == 0.0
    assert s.images_per_s == pytest.approx(4000.0)


def test_all_zero_samples_do_not_divide_by_zero():
    s = summarize([0.0, 0.0, 0.0], images_per_step=1)
    assert s.cv == 0.0 and s.ci_rel_halfwidth == 0.0 and s.images_per_s == math.inf


@pytest.mark.parametrize(
    ("n", "expected"),
    [(1, (1, 1)), (5, (1, 5)), (6, (1, 6)), (10, (2, 9)), (20, (6, 15)), (100, (40, 61))],
)
def test_median_ci_order_statistics_match_tables(n, expected):
    # Values 1..n in shuffled order, so the CI bounds are the 1-based ranks themselves.
    values = np.random.default_rng(n).permutation(np.arange(1, n + 1, dtype=float))
    assert median_ci(values) == expected


@pytest.mark.parametrize("n", [6, 7, 10, 25, 100, 1001, 4000])
def test_median_ci_rank_is_the_tightest_with_enough_coverage(n):
    from scipy.stats import binom

    k = stats._median_ci_rank(n, 0.95)
    assert 1 - 2 * binom.cdf(k, n, 0.5) >= 0.95
    assert 1 - 2 * binom.cdf(k + 1, n, 0.5) < 0.95


def test_median_ci_small_n_falls_back_to_min_max():
    assert stats._median_ci_rank(5, 0.95) is None
    assert median_ci([4.0, 2.0, 9.0]) == (2.0, 9.0)


def test_median_ci_contains_true_median_of_large_normal_sample():
    x = np.random.default_rng(0).normal(loc=5.0, scale=1.0, size=10_001)
    low, high = median_ci(x)
    assert low < 5.0 < high
    assert high - low < 0.1  # about 2 * 1.96 * 1.2533 / sqrt(n) = 0.049


def test_median_ci_coverage_on_repeated_samples():
    rng = np.random.default_rng(1)
    draws = rng.exponential(scale=1.0, size=(2000, 25))  # skewed on purpose; median ln 2
    hits = sum(low <= math.log(2) <= high for low, high in map(median_ci, draws))
    assert 0.93 <= hits / len(draws) <= 0.99  # exact coverage for n=25 is 0.957


def test_median_ci_rejects_bad_confidence():
    with pytest.raises(ValueError, match="confidence"):
        median_ci([1.0, 2.0], confidence=1.5)


def test_mann_whitney_small_p_for_shifted_samples():
    rng = np.random.default_rng(2)
    a = rng.normal(1.0, 0.1, size=200)
    b = rng.normal(1.1, 0.1, size=200)
    assert mann_whitney_u(a, b) < 1e-6


def test_mann_whitney_large_p_for_same_distribution():
    rng = np.random.default_rng(3)
    a = rng.lognormal(0.0, 0.5, size=300)
    b = rng.lognormal(0.0, 0.5, size=300)
    assert mann_whitney_u(a, b) > 0.05
    assert mann_whitney_u(a, a) == pytest.approx(1.0)
    assert mann_whitney_u([1.0, 1.0, 1.0], [1.0, 1.0]) == 1.0


def test_mann_whitney_rejects_empty():
    with pytest.raises(ValueError):
        mann_whitney_u([], [1.0])


@pytest.mark.parametrize("n", [5, 6])
def test_bootstrap_medians_match_brute_force_resampling(n):
    rng = np.random.default_rng(6)
    x = np.sort(rng.normal(size=n))
    fast = stats.bootstrap_medians(x, 20_000, rng)
    brute = np.median(x[rng.integers(0, n, size=(20_000, n))], axis=1)
    grid = np.unique(np.concatenate((fast, brute)))
    cdf_fast = np.searchsorted(np.sort(fast), grid, side="right") / fast.size
    cdf_brute = np.searchsorted(np.sort(brute), grid, side="right") / brute.size
    assert np.max(np.abs(cdf_fast - cdf_brute)) < 0.03


def test_ratio_ci_is_tight_around_the_true_ratio():
    rng = np.random.default_rng(7)
    slow = 1.5 * rng.lognormal(np.log(0.01), 0.3, size=2000)
    fast = rng.lognormal(np.log(0.01), 0.3, size=3000)
    low, high = ratio_ci(slow, fast)
    assert low <= np.median(slow) / np.median(fast) <= high
    assert 1.4 < low < high < 1.6


def test_ratio_ci_covers_the_true_ratio_in_most_repetitions():
    rng = np.random.default_rng(10)
    hits = 0
    for _ in range(200):
        slow = 1.5 * rng.lognormal(0.0, 0.3, size=100)
        fast = rng.lognormal(0.0, 0.3, size=150)
        low, high = ratio_ci(slow, fast)
        hits += low < 1.5 < high
    assert hits / 200 >= 0.88  # nominal 0.95; percentile bootstraps run a little short


def test_ratio_ci_is_deterministic_and_centred_on_one_for_same_samples():
    x = np.random.default_rng(8).lognormal(0.0, 0.2, size=500)
    assert ratio_ci(x, x) == ratio_ci(x, x)
    low, high = ratio_ci(x, x)
    assert low <= 1.0 <= high


def test_ratio_ci_handles_large_samples():
    x = np.random.default_rng(9).lognormal(0.0, 0.2, size=100_000)
    low, high = ratio_ci(2.0 * x, x)
    assert low < 2.0 < high


def test_ratio_ci_rejects_empty():
    with pytest.raises(ValueError):
        ratio_ci([], [1.0])

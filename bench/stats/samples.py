"""Statistics over raw step-time samples (seconds per step), in plain numpy.

Records keep raw samples (bench.store.record); everything here is derived from them, so a table can
be rebuilt, rounds pooled and old runs re-analysed exactly. Step times are skewed and carry
outliers (GC pauses, thread wake-ups, frequency changes), so the headline number is the
*median* with a distribution-free confidence interval, not a mean with a normal-theory one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

CONFIDENCE = 0.95
TUKEY_K = 1.5


@dataclass(frozen=True)
class SampleStats:
    """Summary of one cell's samples; times in seconds unless the name says `_ms`."""

    n: int
    median_s: float
    mean_s: float
    std_s: float  # sample standard deviation (ddof=1; 0 for a single sample)
    cv: float  # std / mean: a scale-free noise level
    iqr_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    median_ci_low_s: float  # 95% order-statistic CI of the median, see `median_ci`
    median_ci_high_s: float
    ci_rel_halfwidth: float  # (high - low) / 2 / median: the precision the timing loop targets
    outliers: int  # samples outside the Tukey fences (1.5 IQR beyond the quartiles)
    outlier_indices: tuple[int, ...]  # positions in the original sample order
    images_per_s: float  # images_per_step / median time
    ips_ci_low: float  # images_per_step / median_ci_high_s: slow time means low throughput
    ips_ci_high: float  # images_per_step / median_ci_low_s


def _as_samples(samples: Sequence[float], name: str = "samples") -> np.ndarray:
    """A 1-D float array, refusing what would silently poison every statistic."""
    arr = np.asarray(samples, dtype=float).ravel()
    if arr.size == 0:
        raise ValueError(f"{name} is empty: at least one step time is needed")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def _ratio(num: float, den: float) -> float:
    """num / den where a zero denominator (a coarse or fake clock) gives 0 or inf, not an error."""
    if den == 0:
        return 0.0 if num == 0 else math.inf
    return num / den


def _median_ci_rank(n: int, confidence: float) -> int | None:
    """0-based rank k so that [x(k), x(n-1-k)] covers the median with >= `confidence`.

    The number of samples below the true median is Binomial(n, 1/2), so the interval between
    order statistics k and n-1-k misses the median with probability 2 * P(B <= k). We take the
    largest k keeping that below 1 - confidence. None when even (min, max) is not enough.
    """
    half_alpha = (1.0 - confidence) / 2.0
    ks = np.arange(n // 2 + 1, dtype=float)
    # log pmf by the recurrence C(n, k+1) = C(n, k) * (n - k) / (k + 1): exact, no overflow.
    steps = np.log((n - ks[:-1]) / (ks[:-1] + 1.0))
    log_pmf = -n * math.log(2.0) + np.concatenate(([0.0], np.cumsum(steps)))
    cdf = np.cumsum(np.exp(log_pmf))
    k = int(np.searchsorted(cdf, half_alpha, side="right")) - 1
    return k if k >= 0 else None


def median_ci(samples: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Distribution-free CI of the median from order statistics (binomial, no normality).

    Exact coverage is at least `confidence`. With too few samples for that (n < 6 at 95%,
    where even (min, max) covers the median only with probability 1 - 2**(1 - n)) it falls back
    to (min, max), which is then *narrower* in coverage than asked: treat it as a range, not a CI.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence!r}")
    arr = _as_samples(samples)
    n = arr.size
    k = _median_ci_rank(n, confidence)
    if k is None:
        return float(arr.min()), float(arr.max())
    part = np.partition(arr, (k, n - 1 - k))  # O(n): cheap enough for the timing loop
    return float(part[k]), float(part[n - 1 - k])


def summarize(samples_s: Sequence[float], images_per_step: int) -> SampleStats:
    """Every statistic a table or report shows for one cell, from its raw step times."""
    if images_per_step < 0:
        raise ValueError(f"images_per_step must be >= 0, got {images_per_step!r}")
    arr = _as_samples(samples_s, "samples_s")
    n = arr.size
    median = float(np.median(arr))
    mean = float(arr.mean())
    std = float(arr.std(ddof=1)) if n > 1 else 0.0
    q1, q3 = (float(q) for q in np.percentile(arr, (25, 75)))
    iqr = q3 - q1
    p50, p90, p99 = (float(p) * 1e3 for p in np.percentile(arr, (50, 90, 99)))
    low, high = median_ci(arr)
    outside = (arr < q1 - TUKEY_K * iqr) | (arr > q3 + TUKEY_K * iqr)
    outlier_indices = tuple(int(i) for i in np.flatnonzero(outside))
    return SampleStats(
        n=n,
        median_s=median,
        mean_s=mean,
        std_s=std,
        cv=_ratio(std, mean),
        iqr_s=iqr,
        p50_ms=p50,
        p90_ms=p90,
        p99_ms=p99,
        median_ci_low_s=low,
        median_ci_high_s=high,
        ci_rel_halfwidth=_ratio((high - low) / 2.0, median),
        outliers=len(outlier_indices),
        outlier_indices=outlier_indices,
        images_per_s=_ratio(images_per_step, median),
        ips_ci_low=_ratio(images_per_step, high),
        ips_ci_high=_ratio(images_per_step, low),
    )


def mann_whitney_u(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided Mann-Whitney U p-value: do a and b come from the same distribution?

    Rank-based, so one GC pause cannot make or break significance (asv and pyperf compare
    the same way).
    """
    from scipy.stats import mannwhitneyu  # imported lazily: scipy.stats is slow to import

    x = _as_samples(a, "a")
    y = _as_samples(b, "b")
    if np.ptp(np.concatenate((x, y))) == 0:
        return 1.0  # all values tied: no evidence of a difference (scipy would return NaN)
    return float(mannwhitneyu(x, y, alternative="two-sided").pvalue)


def bootstrap_medians(
    sorted_x: np.ndarray, resamples: int, rng: np.random.Generator
) -> np.ndarray:
    """Medians of `resamples` bootstrap resamples of sorted_x, without building the resamples.

    A resample draws n indices ceil(n * U) with U uniform; ceil is monotone, so its k-th
    smallest value is sorted_x at ceil(n * U_(k)), and the k-th order statistic of n uniforms
    is Beta(k, n + 1 - k). For even n the next one is U_(k) + (1 - U_(k)) * Beta(1, n - k).
    Exact, and O(resamples) memory instead of O(resamples * n) for 100k-sample cells.
    """
    n = sorted_x.size
    k = (n + 1) // 2
    u_k = rng.beta(k, n + 1 - k, size=resamples)

    def pick(u: np.ndarray) -> np.ndarray:
        return sorted_x[np.clip(np.ceil(n * u).astype(np.int64), 1, n) - 1]

    if n % 2:
        return pick(u_k)
    u_next = u_k + (1.0 - u_k) * rng.beta(1, n - k, size=resamples)
    return (pick(u_k) + pick(u_next)) / 2.0


def ratio_ci(
    a_samples: Sequence[float],
    b_samples: Sequence[float],
    confidence: float = CONFIDENCE,
    resamples: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile-bootstrap CI of median(a) / median(b), e.g. a speed-up of mode b over mode a.

    The seed is fixed so a report rebuilt from the same records shows the same interval.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence!r}")
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples!r}")
    a = np.sort(_as_samples(a_samples, "a_samples"))
    b = np.sort(_as_samples(b_samples, "b_samples"))
    rng = np.random.default_rng(seed)
    med_a = bootstrap_medians(a, resamples, rng)
    med_b = bootstrap_medians(b, resamples, rng)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = med_a / med_b
    alpha = 1.0 - confidence
    low, high = np.quantile(ratios, (alpha / 2.0, 1.0 - alpha / 2.0))
    return float(low), float(high)

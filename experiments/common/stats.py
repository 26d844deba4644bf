"""The statistics of the results documents: one convention for every table and claim.

* An interval over seeds is the Student t interval with ``n - 1`` degrees of freedom:
  ``mean ± t_{1-(1-c)/2, n-1} s / sqrt(n)``, ``s`` the sample standard deviation (``ddof=1``).
  At n = 3 the 95% factor is 4.30, not 1.96 (a "± 1.96 SE" interval is 2.2x too narrow there).
* "A beats B" is a two-sided test, with its p-value: paired by seed (:func:`paired_test`, the t
  test of the per-seed differences) when the two runs share their seeds and the pairing is
  meaningful, else Welch's unequal-variance t test (:func:`welch_test`).
* How many seeds a difference needs: :func:`seeds_to_resolve` (per arm, equal arms, Welch).

Every function takes plain sequences of floats (one value per seed), computes in float64 on the
host and raises ``ValueError`` on fewer than 2 values or a non-finite one: an interval or a test
from one seed does not exist, and a table must say "1 seed" instead (:func:`mean_ci_cell`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
from scipy import stats as _scipy_stats

CONFIDENCE = 0.95


def _values(values: Sequence[float] | np.ndarray, name: str = "values") -> np.ndarray:
    x = np.asarray(values, np.float64)
    if x.ndim != 1:
        raise ValueError(f"{name}: expected one value per seed (rank 1), got shape {x.shape}")
    if x.size < 2:
        raise ValueError(f"{name}: need at least 2 values (seeds) for an interval, got {x.size}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name}: non-finite value in {x.tolist()}")
    return x


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")


def t_quantile(confidence: float, df: float) -> float:
    """The two-sided Student t factor ``t_{1-(1-confidence)/2, df}`` (2.776 at 95%, df 4)."""
    _check_confidence(confidence)
    if not df > 0:
        raise ValueError(f"degrees of freedom must be > 0, got {df}")
    return float(_scipy_stats.t.ppf(0.5 + confidence / 2, df))


@dataclasses.dataclass(frozen=True)
class Interval:
    """A Student t interval ``mean ± half_width`` over ``n`` values (``n - 1`` df)."""

    mean: float
    half_width: float
    n: int
    confidence: float = CONFIDENCE

    @property
    def low(self) -> float:
        return self.mean - self.half_width

    @property
    def high(self) -> float:
        return self.mean + self.half_width

    def format(self, mean_fmt: str = ".4g", half_fmt: str = ".2g") -> str:
        """``"mean ± half_width"`` (the tables' cell)."""
        return f"{self.mean:{mean_fmt}} ± {self.half_width:{half_fmt}}"


def t_interval(values: Sequence[float] | np.ndarray, confidence: float = CONFIDENCE) -> Interval:
    """The Student t interval of the mean of ``values`` (one per seed), ``n - 1`` df.

    Args:
      values: ``[n]`` finite floats, ``n >= 2``.
      confidence: the coverage, in (0, 1).

    Returns:
      ``Interval(mean, t_{n-1} s / sqrt(n), n, confidence)`` with ``s`` the sample standard
      deviation (``ddof=1``).

    Raises:
      ValueError: fewer than 2 values, a non-finite value, or a confidence outside (0, 1).
    """
    x = _values(values)
    half = t_quantile(confidence, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size)
    return Interval(float(x.mean()), float(half), int(x.size), confidence)


def mean_ci_cell(
    values: Sequence[float] | np.ndarray, mean_fmt: str = ".4g", half_fmt: str = ".2g"
) -> str:
    """A table cell: ``"mean ± half"`` (:func:`t_interval`, 95%), or ``"mean (1 seed)"``.

    Raises:
      ValueError: no value, or a non-finite one.
    """
    x = np.asarray(values, np.float64)
    if x.size == 1:
        if not np.isfinite(x[0]):
            raise ValueError(f"non-finite value {x[0]}")
        return f"{x[0]:{mean_fmt}} (1 seed)"
    return t_interval(x).format(mean_fmt, half_fmt)


@dataclasses.dataclass(frozen=True)
class TestResult:
    """A two-sided t test of ``mean(a) - mean(b)``.

    Attributes:
      difference: ``mean(a) - mean(b)`` (paired: the mean of the per-seed differences).
      interval: the t interval of that difference (same df as the test).
      statistic: the t statistic.
      df: degrees of freedom (Welch: the Satterthwaite value, not an integer).
      p_value: two-sided.
      n_a, n_b: the number of values on each side (equal when paired).
      kind: ``"welch"`` or ``"paired"``.
    """

    difference: float
    interval: Interval
    statistic: float
    df: float
    p_value: float
    n_a: int
    n_b: int
    kind: str

    def format(self) -> str:
        """E.g. ``"+15.1 (95% CI -29.3 to 59.6; Welch p = 0.45, n = 5 vs 5)"``."""
        name = "paired t" if self.kind == "paired" else "Welch"
        n = f"n = {self.n_a} pairs" if self.kind == "paired" else f"n = {self.n_a} vs {self.n_b}"
        pct = f"{100 * self.interval.confidence:g}%"
        p = format_p(self.p_value)
        return (
            f"{'+' if self.difference >= 0 else ''}{format_number(self.difference)} ({pct} CI "
            f"{format_number(self.interval.low)} to {format_number(self.interval.high)}; "
            f"{name} p {p if p.startswith('<') else '= ' + p}, {n})"
        )


def format_number(x: float) -> str:
    """Three significant digits, without an exponent from 0.001 to 1e7 (``117``, ``-0.18``)."""
    return f"{x:.0f}" if abs(x) >= 100 else f"{x:.3g}"


def format_p(p: float) -> str:
    """A p-value for the text: two significant digits, ``< 0.001`` below that."""
    return "< 0.001" if p < 0.001 else f"{p:.2g}"


def _two_sided(statistic: float, df: float) -> float:
    return float(2 * _scipy_stats.t.sf(abs(statistic), df))


def welch_test(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    confidence: float = CONFIDENCE,
) -> TestResult:
    """Welch's unequal-variance t test of ``mean(a) = mean(b)``, two-sided.

    ``se^2 = s_a^2 / n_a + s_b^2 / n_b``, ``t = (mean_a - mean_b) / se``, Welch-Satterthwaite
    ``df = se^4 / ((s_a^2/n_a)^2 / (n_a-1) + (s_b^2/n_b)^2 / (n_b-1))``.

    Raises:
      ValueError: fewer than 2 values on a side, a non-finite value, or both sides constant.
    """
    x, y = _values(a, "a"), _values(b, "b")
    va, vb = x.var(ddof=1) / x.size, y.var(ddof=1) / y.size
    se2 = va + vb
    if se2 == 0:
        raise ValueError("both samples are constant: the t statistic is undefined")
    df = se2**2 / (va**2 / (x.size - 1) + vb**2 / (y.size - 1))
    diff = float(x.mean() - y.mean())
    se = math.sqrt(se2)
    t = diff / se
    half = t_quantile(confidence, df) * se
    interval = Interval(diff, float(half), int(x.size + y.size), confidence)
    p = _two_sided(t, df)
    return TestResult(diff, interval, float(t), float(df), p, x.size, y.size, "welch")


def paired_test(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    confidence: float = CONFIDENCE,
) -> TestResult:
    """The paired t test of ``a[i] - b[i]`` (seed ``i`` on both sides), two-sided, ``n - 1`` df.

    Raises:
      ValueError: ``a`` and ``b`` of different lengths, fewer than 2 pairs, a non-finite value,
        or constant differences.
    """
    x, y = _values(a, "a"), _values(b, "b")
    if x.size != y.size:
        raise ValueError(f"paired test needs one value per seed on each side: {x.size} vs {y.size}")
    d = x - y
    interval = t_interval(d, confidence)
    se = d.std(ddof=1) / math.sqrt(d.size)
    if se == 0:
        raise ValueError("the per-seed differences are constant: the t statistic is undefined")
    t = float(d.mean() / se)
    df = d.size - 1
    return TestResult(interval.mean, interval, t, df, _two_sided(t, df), d.size, d.size, "paired")


def welch_power(difference: float, sd_a: float, sd_b: float, n: int, alpha: float = 0.05) -> float:
    """The power of a two-sided Welch test at level ``alpha`` with ``n`` seeds per arm to detect a
    true ``difference`` between arms of standard deviations ``sd_a``, ``sd_b``: ``P(|T| > t*)``
    with ``T`` noncentral t (noncentrality ``difference / sqrt((sd_a^2 + sd_b^2) / n)``) and the
    Welch-Satterthwaite df of equal arms."""
    if n < 2:
        raise ValueError(f"need n >= 2 seeds per arm, got {n}")
    va, vb = sd_a**2 / n, sd_b**2 / n
    if va + vb == 0:
        raise ValueError("both standard deviations are 0")
    df = (va + vb) ** 2 / ((va**2 + vb**2) / (n - 1))
    crit = t_quantile(1 - alpha, df)
    nc = abs(difference) / math.sqrt(va + vb)
    nct = _scipy_stats.nct
    return float(nct.sf(crit, df, nc) + nct.cdf(-crit, df, nc))


def seeds_to_resolve(
    difference: float,
    sd_a: float,
    sd_b: float,
    power: float | None = None,
    alpha: float = 0.05,
    max_n: int = 100_000,
) -> int:
    """Seeds per arm (equal arms) for a true ``difference`` between two arms of standard
    deviations ``sd_a`` and ``sd_b`` to be resolved by a two-sided Welch test at level ``alpha``.

    With ``power=None``: the smallest ``n`` whose *expected* interval of the difference excludes
    0 (``t_{df} sqrt((sd_a^2 + sd_b^2) / n) < |difference|``; about 50% power). With ``power``:
    the smallest ``n`` whose :func:`welch_power` reaches it.

    Raises:
      ValueError: a zero difference, negative standard deviations, or no ``n <= max_n`` suffices.
    """
    if difference == 0 or sd_a < 0 or sd_b < 0:
        raise ValueError(f"need difference != 0 and sd >= 0, got {difference}, {sd_a}, {sd_b}")
    for n in range(2, max_n + 1):
        if power is None:
            va, vb = sd_a**2 / n, sd_b**2 / n
            df = (va + vb) ** 2 / ((va**2 + vb**2) / (n - 1))
            if t_quantile(1 - alpha, df) * math.sqrt(va + vb) < abs(difference):
                return n
        elif welch_power(difference, sd_a, sd_b, n, alpha) >= power:
            return n
    raise ValueError(f"no n <= {max_n} resolves the difference {difference}")


def welch_test_from_intervals(
    a: Interval, b: Interval, confidence: float = CONFIDENCE
) -> TestResult:
    """:func:`welch_test` from two t intervals instead of the values (for a document that kept
    only ``mean ± half_width`` and ``n``): each standard error is recovered as
    ``half_width / t_{n-1}``. Rounded intervals give an approximate p-value.

    Raises:
      ValueError: an interval over fewer than 2 values, or both half-widths 0.
    """
    if a.n < 2 or b.n < 2:
        raise ValueError(f"need intervals over at least 2 values, got n = {a.n} and {b.n}")
    va = (a.half_width / t_quantile(a.confidence, a.n - 1)) ** 2
    vb = (b.half_width / t_quantile(b.confidence, b.n - 1)) ** 2
    if va + vb == 0:
        raise ValueError("both half-widths are 0: the t statistic is undefined")
    df = (va + vb) ** 2 / (va**2 / (a.n - 1) + vb**2 / (b.n - 1))
    diff, se = a.mean - b.mean, math.sqrt(va + vb)
    t = diff / se
    interval = Interval(diff, t_quantile(confidence, df) * se, a.n + b.n, confidence)
    return TestResult(diff, interval, t, df, _two_sided(t, df), a.n, b.n, "welch")


def pairs_to_resolve(
    difference: float,
    sd_difference: float,
    power: float | None = None,
    alpha: float = 0.05,
    max_n: int = 100_000,
) -> int:
    """Pairs (seeds run under both methods) for a true mean per-seed ``difference`` whose
    per-seed differences have standard deviation ``sd_difference`` to be resolved by a two-sided
    paired t test at level ``alpha``: with ``power=None`` the smallest ``n`` whose expected
    interval excludes 0 (``t_{n-1} sd / sqrt(n) < |difference|``), else the smallest ``n`` whose
    power (noncentral t, ``n - 1`` df) reaches ``power``.

    Raises:
      ValueError: a zero difference, a non-positive standard deviation, or no ``n <= max_n``.
    """
    if difference == 0 or not sd_difference > 0:
        raise ValueError(f"need difference != 0 and sd > 0, got {difference}, {sd_difference}")
    for n in range(2, max_n + 1):
        crit = t_quantile(1 - alpha, n - 1)
        nc = abs(difference) * math.sqrt(n) / sd_difference
        if power is None:
            if crit < nc:
                return n
        else:
            nct = _scipy_stats.nct
            if nct.sf(crit, n - 1, nc) + nct.cdf(-crit, n - 1, nc) >= power:
                return n
    raise ValueError(f"no n <= {max_n} resolves the difference {difference}")


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values of a family of tests, in the input's order.

    Sort the m p-values ascending, ``p_(1) <= ... <= p_(m)``; the adjusted value of ``p_(j)`` is
    ``max_{i <= j} min(1, (m - i + 1) p_(i))``. Rejecting where the adjusted value is below
    ``alpha`` controls the family-wise error rate at ``alpha`` (Holm 1979).

    Raises:
      ValueError: an empty family or a p-value outside [0, 1].
    """
    p = np.asarray(p_values, np.float64)
    if p.ndim != 1 or p.size == 0 or not np.all((p >= 0) & (p <= 1)):
        raise ValueError(f"need a non-empty list of p-values in [0, 1]; got {list(p_values)}")
    order = np.argsort(p, kind="stable")
    scaled = np.minimum(1.0, (p.size - np.arange(p.size)) * p[order])
    adjusted = np.empty_like(p)
    adjusted[order] = np.maximum.accumulate(scaled)
    return adjusted.tolist()

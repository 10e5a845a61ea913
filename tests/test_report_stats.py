"""The report's statistics against values computed elsewhere: published worked examples,
and second implementations written here in another way (exact fractions, root
finding), down to zero and tiny counts.

Sources of the published values:
- Wilson intervals: R. G. Newcombe, "Two-sided confidence intervals for the single
  proportion: comparison of seven methods", Statistics in Medicine 17 (1998) 857–872,
  Table I, method 3 (score interval without continuity correction).
- Differences: R. G. Newcombe, "Interval estimation for the difference between
  independent proportions: comparison of eleven methods", Statistics in Medicine 17
  (1998) 873–890, Table II, method 10 (hybrid score), examples (a)–(h).
- Fisher's exact test: R's ``fisher.test`` documentation, Agresti's tea-tasting
  table (two-sided p = 0.4857) and Fisher's convictions of like-sex twins
  (two-sided p = 0.0005367).
"""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sheetcrm.stats import Z95, fisher_exact, newcombe, rate, wilson


@pytest.mark.parametrize("x, n, low, high", [
    (81, 263, 0.2553, 0.3662),
    (15, 148, 0.0624, 0.1605),
    (0, 20, 0.0000, 0.1611),
    (1, 29, 0.0061, 0.1718),
])
def test_wilson_matches_newcombes_published_intervals(x: int, n: int, low: float,
                                                      high: float) -> None:
    interval = wilson(x, n)
    assert interval is not None
    assert interval.estimate == x / n
    assert (round(interval.low, 4), round(interval.high, 4)) == (low, high)


@pytest.mark.parametrize("x1, n1, x2, n2, low, high", [
    (56, 70, 48, 80, 0.0524, 0.3339),  # (a)
    (9, 10, 3, 10, 0.1705, 0.8090),  # (b)
    (6, 7, 2, 7, 0.0582, 0.8062),  # (c)
    (5, 56, 0, 29, -0.0381, 0.1926),  # (d)
    (0, 10, 0, 20, -0.1611, 0.2775),  # (e)
    (0, 10, 0, 10, -0.2775, 0.2775),  # (f)
    (10, 10, 0, 20, 0.6791, 1.0000),  # (g)
    (10, 10, 0, 10, 0.6075, 1.0000),  # (h)
])
def test_newcombe_matches_the_published_hybrid_score_intervals(
        x1: int, n1: int, x2: int, n2: int, low: float, high: float) -> None:
    interval = newcombe(x1, n1, x2, n2)
    assert interval is not None
    assert interval.estimate == pytest.approx(x1 / n1 - x2 / n2)
    assert (round(interval.low, 4), round(interval.high, 4)) == (low, high)


@pytest.mark.parametrize("x1, n1, x2, n2, p", [
    (3, 4, 1, 4, 0.4857),  # tea tasting
    (2, 17, 10, 13, 0.0005367),  # convictions of like-sex twins
])
def test_fisher_matches_the_published_two_sided_p_values(x1: int, n1: int, x2: int, n2: int,
                                                         p: float) -> None:
    got = fisher_exact(x1, n1, x2, n2)
    assert got is not None
    assert got == pytest.approx(p, rel=1e-3)


def _fisher_by_fractions(x1: int, n1: int, x2: int, n2: int) -> Fraction:
    """Fisher's two-sided p by enumerating every table with the same margins, exactly."""
    hits, total = x1 + x2, n1 + n2

    def prob(a: int) -> Fraction:
        return Fraction(math.comb(n1, a) * math.comb(n2, hits - a), math.comb(total, hits))

    observed = prob(x1)
    return sum((prob(a) for a in range(0, min(n1, hits) + 1)
                if hits - a <= n2 and prob(a) <= observed), Fraction(0))


def _wilson_by_bisection(x: int, n: int) -> tuple[float, float]:
    """The Wilson bounds as the rates p where the score statistic equals 1.96: solved
    numerically, not by the closed form."""
    def score(p: float) -> float:
        return (x / n - p) / math.sqrt(p * (1 - p) / n) if 0 < p < 1 else math.inf

    def solve(lo: float, hi: float, rising: bool) -> float:
        for _ in range(200):
            mid = (lo + hi) / 2
            if (abs(score(mid)) > Z95) == rising:
                hi = mid
            else:
                lo = mid
        return (lo + hi) / 2

    p = x / n
    low = 0.0 if x == 0 else solve(1e-12, p, rising=False)
    high = 1.0 if x == n else solve(p, 1 - 1e-12, rising=True)
    return low, high


@given(st.integers(1, 60), st.integers(1, 60), st.data())
def test_fisher_agrees_with_an_exact_enumeration(n1: int, n2: int, data: st.DataObject) -> None:
    x1 = data.draw(st.integers(0, n1))
    x2 = data.draw(st.integers(0, n2))
    assert fisher_exact(x1, n1, x2, n2) == pytest.approx(
        float(_fisher_by_fractions(x1, n1, x2, n2)), rel=1e-9, abs=1e-12)


@given(st.integers(1, 500), st.data())
def test_wilson_agrees_with_solving_the_score_test(n: int, data: st.DataObject) -> None:
    x = data.draw(st.integers(0, n))
    interval = wilson(x, n)
    assert interval is not None
    low, high = _wilson_by_bisection(x, n)
    assert interval.low == pytest.approx(low, abs=1e-9)
    assert interval.high == pytest.approx(high, abs=1e-9)
    assert 0.0 <= interval.low <= interval.estimate <= interval.high <= 1.0


def test_empty_groups_have_no_rate_no_interval_and_no_test() -> None:
    assert rate(0, 0) is None
    assert wilson(0, 0) is None
    assert newcombe(0, 0, 3, 10) is None and newcombe(3, 10, 0, 0) is None
    assert fisher_exact(0, 0, 1, 1) is None


def test_tiny_and_extreme_counts_give_wide_honest_intervals() -> None:
    one = wilson(1, 1)
    assert one is not None and one.high == 1.0 and one.low == pytest.approx(0.2065, abs=1e-4)
    none = wilson(0, 1)
    assert none is not None and none.low == 0.0 and none.high == pytest.approx(0.7935, abs=1e-4)
    # One customer in the holdout: the lift of the "+16.7 pt" spans most of the range.
    lift = newcombe(1, 6, 0, 1)
    assert lift is not None and lift.low < -0.5 and lift.high > 0.4
    # Nobody (or everybody) converted: no evidence of any difference.
    assert fisher_exact(0, 5, 0, 7) == 1.0 and fisher_exact(5, 5, 7, 7) == 1.0
    # 5 of 5 against 0 of 5 is a real difference even so small (exact: 2/252).
    assert fisher_exact(5, 5, 0, 5) == pytest.approx(2 / 252)


@pytest.mark.parametrize("call", [lambda: wilson(3, 2), lambda: wilson(-1, 2),
                                  lambda: fisher_exact(1, 1, 2, 1)])
def test_impossible_counts_are_refused(call) -> None:
    with pytest.raises(ValueError, match="is not a count"):
        call()

"""The statistics of ``sheetcrm report``: intervals and a test that stay honest on the
small samples a solo operator has (ten customers in a holdout, thirty per A/B variant).

Pure functions over counts, no I/O, in the lowest layer so any layer may use them.
Each method is the one the literature recommends for small counts, and each is a few
lines of closed-form arithmetic over the standard library (``statistics.NormalDist``
and ``math.lgamma``): a statistics package would add tens of megabytes to a tool that
needs three formulas. Their tests check them against published worked examples.

- ``wilson``: the Wilson score interval for one proportion (Newcombe 1998a, method 3).
  Unlike the textbook ``p ± 1.96·√(p(1-p)/n)``, it never leaves [0, 1] and is not
  zero-width at 0/n or n/n: 0 conversions out of 5 is "somewhere from 0% to 43%".
- ``newcombe``: the hybrid score interval for a difference of two proportions, built
  from the two Wilson intervals (Newcombe 1998b, method 10): the holdout lift.
- ``fisher_exact``: Fisher's exact test of a 2×2 table, two-sided (the probabilities
  of the tables no more likely than the one observed, as R's ``fisher.test`` sums
  them): exact at any sample size, so a difference among a handful of customers is
  never called real by a normal approximation that does not hold there.

Nothing here divides by zero: a group nobody entered has no rate and no interval
(``None``), and callers say "no data" rather than print 0%.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import NamedTuple

#: The two-sided 95% normal quantile (1.959963984540054).
Z95 = NormalDist().inv_cdf(0.975)
#: Tables whose probability is within this factor of the observed one count as "as
#: likely" in Fisher's two-sided sum (floating-point ties; R uses the same 1e-7).
_TIES = 1 + 1e-7


class Interval(NamedTuple):
    """A confidence interval (by default 95%) around ``estimate``."""

    estimate: float
    low: float
    high: float

    def excludes(self, value: float) -> bool:
        return not self.low <= value <= self.high


def rate(successes: int, n: int) -> float | None:
    """``successes / n``, or None when nobody is in the group."""
    _check(successes, n)
    return successes / n if n else None


def wilson(successes: int, n: int, z: float = Z95) -> Interval | None:
    """The Wilson score interval for ``successes`` out of ``n``; None when ``n`` is 0."""
    _check(successes, n)
    if n == 0:
        return None
    p = successes / n
    z2 = z * z
    denominator = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denominator
    # At 0/n and n/n the bound is exactly 0 or 1; rounding must not move it.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return Interval(p, low, high)


def newcombe(x1: int, n1: int, x2: int, n2: int, z: float = Z95) -> Interval | None:
    """The interval for ``x1/n1 - x2/n2`` (Newcombe's hybrid score, method 10); None
    when either group is empty."""
    first, second = wilson(x1, n1, z), wilson(x2, n2, z)
    if first is None or second is None:
        return None
    p1, l1, u1 = first
    p2, l2, u2 = second
    d = p1 - p2
    low = d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return Interval(d, max(-1.0, low), min(1.0, high))


def fisher_exact(x1: int, n1: int, x2: int, n2: int) -> float | None:
    """Two-sided p-value of Fisher's exact test: ``x1`` of ``n1`` against ``x2`` of
    ``n2``. None when either group is empty; 1.0 when nobody (or everybody) succeeded.

    Given the margins, the count in the first cell is hypergeometric; the p-value sums
    the probabilities of every table no more likely than the observed one.
    """
    _check(x1, n1)
    _check(x2, n2)
    if n1 == 0 or n2 == 0:
        return None
    total, hits = n1 + n2, x1 + x2
    if hits in (0, total):
        return 1.0

    def log_p(a: int) -> float:  # P(first cell = a | margins), in logs
        return (_log_choose(hits, a) + _log_choose(total - hits, n1 - a)
                - _log_choose(total, n1))

    observed = log_p(x1)
    bound = observed + math.log(_TIES)
    p = math.fsum(math.exp(lp) for a in range(max(0, n1 - (total - hits)), min(n1, hits) + 1)
                  if (lp := log_p(a)) <= bound)
    return min(1.0, p)


def _log_choose(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def _check(successes: int, n: int) -> None:
    if n < 0 or not 0 <= successes <= n:
        raise ValueError(f"{successes} successes out of {n} is not a count")

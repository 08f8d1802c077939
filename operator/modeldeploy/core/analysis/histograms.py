"""Cumulative histogram buckets: validation, quantiles, counts above a bound.

Sits in ``core.analysis`` below the checks. Buckets are ``(le, count)`` pairs as
Prometheus keeps them (cumulative, ``le`` ascending, ending at ``+Inf``); the
quantile follows the interpolation of PromQL's ``histogram_quantile`` so status
shows the numbers a Grafana panel shows.
"""

from __future__ import annotations

import math

from .measurements import INF, Buckets


def normalize(buckets: Buckets) -> Buckets | None:
    """Sorted, monotone buckets; ``None`` when they cannot be a histogram.

    Counts of different buckets are scraped at slightly different moments, so
    a cumulative count may dip below its predecessor; like PromQL we lift it.
    """
    if not buckets or any(not math.isfinite(count) or count < 0 for _, count in buckets):
        return None
    ordered = sorted(buckets)
    if ordered[-1][0] != INF or len({le for le, _ in ordered}) != len(ordered):
        return None
    fixed: list[tuple[float, float]] = []
    running = 0.0
    for le, count in ordered:
        running = max(running, count)
        fixed.append((le, running))
    return tuple(fixed)


def total(buckets: Buckets) -> float:
    return buckets[-1][1]


def common_bounds(first: Buckets, second: Buckets) -> tuple[Buckets, Buckets]:
    """Both histograms restricted to the bounds they share (cumulative counts stay exact)."""
    shared = {le for le, _ in first} & {le for le, _ in second}
    return (
        tuple(b for b in first if b[0] in shared),
        tuple(b for b in second if b[0] in shared),
    )


def pooled(first: Buckets, second: Buckets) -> Buckets:
    """The sum of two histograms with the same bounds."""
    return tuple((le, a + b) for (le, a), (_, b) in zip(first, second, strict=True))


def quantile(q: float, buckets: Buckets) -> float:
    """The q-quantile by linear interpolation inside its bucket, as ``histogram_quantile``.

    A quantile that falls into the ``+Inf`` bucket is reported as the largest
    finite bound; an empty histogram gives NaN.
    """
    count = total(buckets)
    if count <= 0 or len(buckets) < 2:
        return math.nan
    rank = q * count
    index = next(i for i, (_, cum) in enumerate(buckets) if cum >= rank)
    upper, cum = buckets[index]
    if upper == INF:
        return buckets[-2][0]
    lower, below = (0.0, 0.0) if index == 0 else buckets[index - 1]
    if index == 0 and upper <= 0:
        return upper
    inside = cum - below
    return upper if inside <= 0 else lower + (upper - lower) * (rank - below) / inside


def bound_at_or_above(value: float, buckets: Buckets) -> float | None:
    """The smallest finite bucket bound that is at least ``value``."""
    return next((le for le, _ in buckets if le != INF and le >= value), None)


def count_above(bound: float, buckets: Buckets) -> float:
    """Observations greater than ``bound``, which must be one of the bucket bounds."""
    cum = next(count for le, count in buckets if le == bound)
    return total(buckets) - cum


def counts_per_bucket(buckets: Buckets) -> tuple[float, ...]:
    """Non-cumulative counts, one per bucket (the last one is the ``+Inf`` bucket)."""
    previous = 0.0
    counts = []
    for _, cum in buckets:
        counts.append(cum - previous)
        previous = cum
    return tuple(counts)

"""Comparing two methods over seeds: a difference counts only beyond the seeds' spread.

Every headline comparison in the notebooks is a difference of means over seeds, read against the
seeds' standard deviations: transfer in 02 (pretrained start vs scratch), LoRA vs full
fine-tuning in 03, masking the prompt in 04, distillation vs scratch in 06. ``clearly_better``
is that check in one place, so a unit test can show it fails on a null experiment (two arms that
are the same) or a broken one (an arm that did not train).
"""

from __future__ import annotations

import math
import statistics


def mean_std(values) -> tuple[float, float]:
    """Mean and sample standard deviation of one value per seed (at least two)."""
    values = [float(v) for v in values]
    if len(values) < 2:
        raise ValueError(f"{len(values)} value(s) cannot show a seed spread; pass one value per "
                         "seed, at least two (three in the notebooks).")
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"values {values!r} are not all finite numbers: a run diverged or was "
                         "not scored.")
    return statistics.mean(values), statistics.stdev(values)


def separation(better, worse, *, spreads: float = 2.0,
               higher_is_better: bool = False) -> tuple[float, float]:
    """``(gap, bar)``: the difference of the two arms' means over seeds, signed so that positive
    means ``better`` wins, and ``spreads`` times the sum of their standard deviations (the two
    error bars of ``spreads`` deviations touch when the gap equals the bar)."""
    (b_mean, b_std), (w_mean, w_std) = mean_std(better), mean_std(worse)
    gap = (b_mean - w_mean) if higher_is_better else (w_mean - b_mean)
    return gap, spreads * (b_std + w_std)


def clearly_better(better, worse, *, spreads: float = 2.0, min_gap: float = 0.0,
                   higher_is_better: bool = False, what: str = "the score") -> float:
    """Check that ``better`` beats ``worse`` beyond the seed spread and return the gap.

    ``better`` and ``worse`` hold one value per seed. The gap is the difference of their means,
    signed so that positive means ``better`` wins (lower is better unless ``higher_is_better``).
    It must exceed ``spreads`` times the sum of the two standard deviations (the two error bars
    of ``spreads`` deviations do not overlap) and ``min_gap``. Raises ``AssertionError``, naming
    ``what`` and the numbers, when it does not: two identical arms (a null experiment) or an arm
    that did not train (a broken one) fail."""
    better, worse = list(better), list(worse)
    gap, bar = separation(better, worse, spreads=spreads, higher_is_better=higher_is_better)
    bar = max(bar, min_gap)
    if not gap > bar:
        (b_mean, b_std), (w_mean, w_std) = mean_std(better), mean_std(worse)
        raise AssertionError(f"{what}: {b_mean:.4g} ± {b_std:.2g} against {w_mean:.4g} ± "
                             f"{w_std:.2g} ({len(better)} and {len(worse)} seeds) is a "
                             f"gap of {gap:+.4g}, not beyond {bar:.4g} ({spreads:g} seed "
                             f"deviations each side, at least {min_gap:g}).")
    return gap


def inside_band(value: float, values, *, spreads: float = 3.0, min_width: float = 0.0,
                what: str = "the live run") -> float:
    """Check that one run retrained live falls inside a shipped table's band (the seeds' mean
    ± ``spreads`` standard deviations, at least ± ``min_width``) and return its distance from
    the mean. A live run that broke (did not train, or trained on something else) fails."""
    mean, std = mean_std(values)
    width = max(spreads * std, min_width)
    if not abs(value - mean) <= width:
        raise AssertionError(f"{what}: {value:.4g} is outside the table's band {mean:.4g} ± "
                             f"{width:.3g} ({len(values)} seeds, {spreads:g} deviations, at "
                             f"least {min_width:g}): the code no longer makes the table.")
    return value - mean

"""Comparing two methods over seeds: a difference counts only beyond the seeds' spread.

Every headline comparison in the notebooks is a difference of means over seeds, read against the
seeds' standard deviations: transfer in 02 (pretrained start vs scratch), LoRA vs full
fine-tuning in 03, masking the prompt in 04, distillation vs scratch in 06. ``claims.claim_better``
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



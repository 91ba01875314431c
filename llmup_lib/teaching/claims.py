"""Claims: the results the notebooks promise, as functions that raise ``ClaimFailed`` when an
experiment does not deliver them.

Each claim takes one value per seed for each arm (or a fitted number) and reads a difference
against the seeds' spread (``compare.separation``), so a null experiment (two arms that are the
same) or a broken one (an arm that did not train) fails. ``tests/test_compare.py`` feeds every
claim such a result and shows it fails. Input checks are ``validate_*`` and raise ``ValueError``;
a learner's exercise is graded by ``exercises.check``.
"""

from __future__ import annotations

import math
import statistics

from .compare import mean_std, separation
from ..methods.distill import gap_closed


class ClaimFailed(AssertionError):
    """A notebook's claimed result did not hold: the message names the claim and its numbers."""


def claim_better(better, worse, *, spreads: float = 2.0, min_gap: float = 0.0,
                   higher_is_better: bool = False, what: str = "the score") -> float:
    """Check that ``better`` beats ``worse`` beyond the seed spread and return the gap.

    ``better`` and ``worse`` hold one value per seed. The gap is the difference of their means,
    signed so that positive means ``better`` wins (lower is better unless ``higher_is_better``).
    It must exceed ``spreads`` times the sum of the two standard deviations (the two error bars
    of ``spreads`` deviations do not overlap) and ``min_gap``. Raises ``ClaimFailed``, naming
    ``what`` and the numbers, when it does not: two identical arms (a null experiment) or an arm
    that did not train (a broken one) fail."""
    better, worse = list(better), list(worse)
    gap, bar = separation(better, worse, spreads=spreads, higher_is_better=higher_is_better)
    bar = max(bar, min_gap)
    if not gap > bar:
        (b_mean, b_std), (w_mean, w_std) = mean_std(better), mean_std(worse)
        raise ClaimFailed(f"{what}: {b_mean:.4g} ± {b_std:.2g} against {w_mean:.4g} ± "
                             f"{w_std:.2g} ({len(better)} and {len(worse)} seeds) is a "
                             f"gap of {gap:+.4g}, not beyond {bar:.4g} ({spreads:g} seed "
                             f"deviations each side, at least {min_gap:g}).")
    return gap



def claim_in_band(value: float, values, *, spreads: float = 3.0, min_width: float = 0.0,
                what: str = "the live run") -> float:
    """Check that one run retrained live falls inside a shipped table's band (the seeds' mean
    ± ``spreads`` standard deviations, at least ± ``min_width``) and return its distance from
    the mean. A live run that broke (did not train, or trained on something else) fails."""
    mean, std = mean_std(values)
    width = max(spreads * std, min_width)
    if not abs(value - mean) <= width:
        raise ClaimFailed(f"{what}: {value:.4g} is outside the table's band {mean:.4g} ± "
                             f"{width:.3g} ({len(values)} seeds, {spreads:g} deviations, at "
                             f"least {min_width:g}): the code no longer makes the table.")
    return value - mean


def capacity_limited(entries, inventory: float, share: float = 0.8) -> list[dict]:
    """The sizes whose mean stored bits are below ``share`` of the inventory."""
    return [e for e in entries if statistics.mean(e["bits"]) < share * inventory]


# Each takes one value per seed for each arm and raises AssertionError when the experiment is
# broken; tests/test_compare.py feeds each a null or broken experiment and shows it fails.
def claim_transfer(base_excess: float, ft_excess, scratch_excess, spreads: float = 2.0) -> float:
    """Notebook 02: fine-tuning cuts the base model's domain excess (over the floor) at least
    5x, and the pretrained start beats the same model trained from scratch on the same data and
    steps beyond the seed spread. Returns the transfer gap (nats/token)."""

    ft_mean = statistics.mean(ft_excess)
    if not ft_mean < 0.2 * base_excess:
        raise ClaimFailed(f"fine-tuning left a domain excess of {ft_mean:.3f} nats/token, not "
                             f"5x below the base model's {base_excess:.3f}: did it train?")
    return claim_better(ft_excess, scratch_excess, spreads=spreads,
                          what="fine-tuned vs from scratch (domain excess)")



def claim_operating_point(base: dict, run: dict, tolerance: float, min_cut: float = 0.5) -> str:
    """Notebook 02's headline: a run at a rate chosen on both axes keeps its general loss within
    ``tolerance`` (a fraction) of the base model's *and* cuts the domain excess to at most
    ``min_cut`` of the base's. ``base`` and ``run`` hold ``"general loss"`` and ``"domain
    excess"``. A run that did not train fails the second; erasure (a rate too high) the first."""
    rise = run["general loss"] / base["general loss"] - 1
    kept = run["domain excess"] / base["domain excess"]
    if not rise <= tolerance:
        raise ClaimFailed(f"the general loss rose {rise:.0%} over the base model's, beyond the "
                          f"{tolerance:.0%} tolerance: the operating point forgets too much.")
    if not kept <= min_cut:
        raise ClaimFailed(f"the domain excess is {kept:.0%} of the base model's, not at most "
                          f"{min_cut:.0%}: the operating point did not learn the domain.")
    return f"general loss +{rise:.0%}, domain excess {kept:.0%} of the base's"


def claim_lora_vs_full(start_excess: float, lora: dict, full: dict,
                       spreads: float = 2.0) -> dict:
    """Notebook 03: ``lora`` and ``full`` map ``domain_excess`` and ``general_loss`` to one
    value per seed, each method at its own best rate. LoRA must learn the domain (its excess at
    most 0.7x the start's), and learn less and forget less than full fine-tuning, each beyond the
    seed spread. Returns both gaps. A frozen adapter fails the first test; two identical arms
    the second."""

    lora_mean = statistics.mean(lora["domain_excess"])
    if not lora_mean <= 0.7 * start_excess:
        raise ClaimFailed(f"LoRA left a domain excess of {lora_mean:.3f} nats/token, not 0.7x "
                             f"below the start's {start_excess:.3f}: is the adapter training?")
    return {"learns_less": claim_better(full["domain_excess"], lora["domain_excess"],
                                          spreads=spreads,
                                          what="LoRA learns less (domain excess)"),
            "forgets_less": claim_better(lora["general_loss"], full["general_loss"],
                                           spreads=spreads,
                                           what="LoRA forgets less (general loss)")}



def _claim_side_of_front(gaps: list[dict], what: str, side: str, stds: float,
                         min_points: int) -> float:
    """The one check behind ``claim_below_front`` and ``claim_above_front``: at each of at least
    ``min_points`` matched points the forgetting gap is beyond ``stds`` seed deviations on
    ``side`` ("below": forgets more; "above": forgets less). Returns the smallest margin."""
    if len(gaps) < min_points:
        raise ClaimFailed(f"{what}: {len(gaps)} point(s) inside full fine-tuning's range of domain "
                          f"excess, not {min_points}: nothing to compare at matched learning.")
    sign = 1 if side == "below" else -1
    weakest = min(sign * g["in_stds"] for g in gaps)
    if not weakest > stds:
        less = "" if side == "below" else "'s less"
        raise ClaimFailed(f"{what}: at the same domain excess it forgets within {weakest:.1f} "
                          f"seed deviations of full fine-tuning{less} (needed > {stds:g}): on "
                          f"its front, not {side} it.")
    return weakest


def claim_below_front(gaps: list[dict], what: str, stds: float = 2.0, min_points: int = 2) -> float:
    """Notebook 03: ``gaps`` are a method's ``fronts.matched_gaps`` against full fine-tuning's
    front. The method forgets more than full fine-tuning at the same domain excess, beyond
    ``stds`` seed deviations, at each of at least ``min_points`` matched points. Returns the
    smallest gap in seed deviations. A method on full fine-tuning's own curve fails (a null), and
    so does one with fewer matched points (nothing was compared)."""
    return _claim_side_of_front(gaps, what, "below", stds, min_points)


def claim_above_front(gaps: list[dict], what: str, stds: float = 2.0, min_points: int = 2) -> float:
    """Notebook 07: the mirror of ``claim_below_front``. The method (e.g. replay) forgets *less*
    than full fine-tuning at the same domain excess, beyond ``stds`` seed deviations, at each of
    at least ``min_points`` matched points. Returns the smallest margin in seed deviations. A
    method on full fine-tuning's own front fails (a null), as does one matched nowhere."""
    return _claim_side_of_front(gaps, what, "above", stds, min_points)


def claim_reaches_further(better: dict | None, worse: dict | None, what: str,
                          spreads: float = 2.0) -> float:
    """Notebook 07's guide: within the same forgetting tolerance, ``better`` reaches a lower
    domain excess than ``worse`` (each ``fronts.best_within``'s answer), beyond ``spreads`` seed
    deviations each side, and returns the gap. Two levers on one front (a null) fail, and so does
    a lever that reaches nothing within the tolerance."""
    if better is None or worse is None:
        raise ClaimFailed(f"{what}: a lever has no rate within the tolerance; nothing to compare.")
    gap = worse["domain_excess"] - better["domain_excess"]
    bar = spreads * (better["domain_excess_std"] + worse["domain_excess_std"])
    if not gap > bar:
        raise ClaimFailed(f"{what}: {better['domain_excess']:.4g} against "
                          f"{worse['domain_excess']:.4g} is a gap of {gap:+.4g}, not beyond "
                          f"{bar:.4g} ({spreads:g} seed deviations each side).")
    return gap


def claim_t_squared_matters(with_t2, without_t2, spreads: float = 3.0) -> float:
    """Notebook 06's check that the ``T²`` factor matters. ``with_t2`` and ``without_t2`` are
    the validation losses of students distilled alike except for the factor, one per batch
    order (seed): their means must differ by more than ``spreads`` times the larger of the two
    arms' standard deviations (the seed spread). Returns the difference of the means (with minus
    without); raises ``ClaimFailed`` when it is within the spread, as it is for a broken
    experiment in which the flag changes nothing."""

    with_t2, without_t2 = list(with_t2), list(without_t2)
    if min(len(with_t2), len(without_t2)) < 2:
        raise ValueError("claim_t_squared_matters needs at least two seeds per arm to measure their "
                         "spread; pass one loss per batch order, e.g. three each.")
    diff = statistics.mean(with_t2) - statistics.mean(without_t2)
    spread = max(statistics.stdev(with_t2), statistics.stdev(without_t2))
    if not abs(diff) > spreads * spread:
        raise ClaimFailed(f"with and without T² the students differ by {diff:+.3f} nats/token "
                             f"on average, within {spreads:g} seed deviations ({spread:.3f} "
                             "each): the factor made no measurable difference (is t_squared "
                             "reaching the loss?).")
    return diff



def claim_kd_beats_scratch(scratch_losses, kd_losses, teacher_loss: float,
                           spreads: float = 2.0, min_closed: float = 0.25) -> float:
    """Notebook 06's headline check. ``scratch_losses`` and ``kd_losses`` are the validation
    losses of the student trained without and with the teacher, one per seed, each at its own
    best rate. Logit KD must beat scratch beyond the seed spread (``compare.claim_better``)
    and close at least ``min_closed`` of the scratch -> teacher gap (means over seeds). Returns
    that gap closed; raises ``ClaimFailed`` for a broken experiment, e.g. KD with
    ``alpha=0``, which *is* the scratch student."""

    claim_better(kd_losses, scratch_losses, spreads=spreads,
                   what="logit KD vs the scratch student (validation loss; is alpha > 0?)")
    closed = gap_closed(statistics.mean(scratch_losses), statistics.mean(kd_losses), teacher_loss)
    if closed < min_closed:
        raise ClaimFailed(f"logit KD closes {closed:.0%} of the scratch -> teacher gap, less "
                             f"than {min_closed:.0%}.")
    return closed


def claim_capacity(entries, inventory: float, min_sizes: int = 3, spreads: float = 2.0) -> dict:
    """Bits stored grow with parameters until a size holds the inventory: at least ``min_sizes``
    sizes store less than 80 % of it (capacity-limited); each of them stores less than the next
    size up on every seed (the ranges do not overlap), and the largest capacity-limited size
    stores more than the smallest beyond ``spreads`` seed deviations each side. Returns the
    capacity-limited entries, each size's bits per non-embedding parameter, and the steps
    between neighbours that also clear ``spreads`` deviations (``clear_steps``; near the onset
    of learning one seed may store three times another, so not every step does). A probe blind
    to the model (equal bits at every size), sizes in the wrong order or overlapping seeds fail."""
    limited = capacity_limited(entries, inventory)
    if len(limited) < min_sizes:
        raise ClaimFailed(f"{len(limited)} of the sizes store less than 80 % of the "
                             f"{inventory:,.0f} bits; the slice needs {min_sizes}: a larger "
                             "inventory or smaller sizes")
    clear = []
    for small, big in zip(entries, entries[1:]):
        if small not in limited:
            continue
        if not min(big["bits"]) > max(small["bits"]):
            raise ClaimFailed(f"bits stored by {big['size']} against {small['size']}: "
                                 f"{big['bits']} against {small['bits']} (one per seed) overlap; "
                                 "the larger size must store more on every seed.")
        gap, bar = separation(big["bits"], small["bits"], spreads=spreads, higher_is_better=True)
        if gap > bar:
            clear.append((small["size"], big["size"]))
    claim_better(limited[-1]["bits"], limited[0]["bits"], spreads=spreads,
                   higher_is_better=True, what=f"bits stored by {limited[-1]['size']} against "
                   f"{limited[0]['size']}")
    return {"limited": limited, "clear_steps": clear,
            "bits_per_param": {e["size"]: statistics.mean(e["bits"]) / e["params"]
                               for e in entries}}



def claim_frequency_order(entries, tolerance: float = 0.5, margin: float = 3.0) -> dict:
    """Knowledge held in frequency order, as notebook 05's Zipf memory holds it. ``entries``:
    one per size, each with lists over seeds of ``measured`` (the knowledge part of the loss),
    ``memory`` (the memory's prediction from the facts known: the most frequent people known)
    and ``null`` (the same facts known regardless of frequency). At every size, on the seeds'
    means, the memory misses the measured value by at most ``tolerance`` (relative), and the
    null misses it by at least ``margin`` times as much. A model whose knowledge ignores
    frequency (measured on the null) fails; so does a prediction that is off by more than the
    tolerance. Returns each form's root-mean-square relative error and the per-size errors."""
    if len(entries) < 2:
        raise ClaimFailed(f"{len(entries)} size(s): the comparison needs at least 2.")
    errs = {"memory": [], "null": []}
    for e in entries:
        measured = statistics.mean(e["measured"])
        for form in errs:
            errs[form].append(statistics.mean(e[form]) / measured - 1)
        memory, null = errs["memory"][-1], errs["null"][-1]
        if not abs(memory) <= tolerance:
            raise ClaimFailed(f"at {e['size']} the memory's prediction misses the measured "
                              f"knowledge excess by {memory:+.0%}, beyond {tolerance:.0%}.")
        if not abs(null) >= margin * abs(memory):
            raise ClaimFailed(f"at {e['size']} the frequency-blind null misses by {null:+.0%}, "
                              f"not {margin:g}x the memory's {memory:+.0%}: knowledge there does "
                              "not follow frequency.")
    rms = {f: math.sqrt(statistics.mean(x * x for x in v)) for f, v in errs.items()}
    return {"rms_memory": rms["memory"], "rms_null": rms["null"],
            "memory_rel_errs": errs["memory"], "null_rel_errs": errs["null"]}


def claim_prediction(rel_err: float, tolerance: float = 0.15, what: str = "the prediction"):
    """``rel_err`` (a relative error) within ``tolerance``; a null predictor fails."""
    if not rel_err <= tolerance:
        raise ClaimFailed(f"{what} misses the measured excess by {rel_err:.0%}, more than "
                             f"{tolerance:.0%}.")
    return rel_err


def claim_extraction(augmented, single, goal: float = 0.8, spreads: float = 2.0,
                     min_gap: float = 0.2) -> float:
    """Held-out exact match, one value per seed: the augmented arm reaches ``goal`` on average
    and beats the single-phrasing arm beyond ``spreads`` seed deviations each side and by at
    least ``min_gap``. Returns the gap. Two identical arms, or an instruction tuning that taught
    nothing, fail."""
    mean = statistics.mean(augmented)
    if not mean >= goal:
        raise ClaimFailed(f"the augmented arm answers {mean:.0%} of held-out questions, below "
                             f"the {goal:.0%} goal: did pretraining or instruction tuning run?")
    return claim_better(augmented, single, spreads=spreads, min_gap=min_gap,
                          higher_is_better=True,
                          what="augmented against single-phrasing pretraining (held-out exact "
                          "match)")


# ----------------------------------------------------------------------------- the checks cell
def _shown(value) -> str:
    """A claim's returned number, or a dict of them, in 4 significant digits."""
    if isinstance(value, dict):
        return ", ".join(f"{k} {_shown(v)}" for k, v in value.items())
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:.4g}"
    return str(value)


class Scorecard:
    """A notebook's checks cell, read at a glance: one line per claim (PASS or FAIL, the number,
    the bar), and every claim runs even after one fails; ``close()`` then raises one
    ``ClaimFailed`` naming each failure, so nbval still fails the notebook.

        card = Scorecard()
        card.at_least("LoRA lowers the clinic-note loss (nats)", before - after, 1.0)
        card.claim("KD beats scratch", claim_kd_beats_scratch, scratch, kd, teacher)
        card.close()
    """

    WIDTH = 120  # no output line longer than this

    def __init__(self):
        self.failures: list[str] = []
        self.passed = 0

    def _line(self, ok: bool, what: str, detail: str) -> None:
        line = f"{'PASS' if ok else 'FAIL'}  {what}: {detail}"
        print(line if len(line) <= self.WIDTH else line[:self.WIDTH - 3] + "...")
        if ok:
            self.passed += 1
        else:
            self.failures.append(f"{what}: {detail}")

    def at_least(self, what: str, value: float, bar: float) -> bool:
        """``value >= bar``; NaN fails."""
        ok = value >= bar
        self._line(ok, what, f"{value:.4g} (bar >= {bar:.4g})")
        return ok

    def at_most(self, what: str, value: float, bar: float) -> bool:
        """``value <= bar``; NaN fails."""
        ok = value <= bar
        self._line(ok, what, f"{value:.4g} (bar <= {bar:.4g})")
        return ok

    def holds(self, what: str, ok: bool, detail: str) -> bool:
        """A yes/no claim (an ordering, a match): PASS or FAIL with ``detail``, the numbers."""
        self._line(bool(ok), what, detail)
        return bool(ok)

    def info(self, what: str, detail: str) -> None:
        """A fact true by construction, printed beside the claims but never checked."""
        print(f"info  {what}: {detail}"[:self.WIDTH])

    def claim(self, what: str, claim_fn, /, *args, **kwargs):
        """Run a ``claim_*`` function: PASS with the number it returns, or FAIL with its reason.
        ``what`` is positional-only, so a claim's own ``what=`` keyword passes through to it."""
        try:
            value = claim_fn(*args, **kwargs)
        except ClaimFailed as err:
            self._line(False, what, str(err))
            return None
        self._line(True, what, _shown(value))
        return value

    def close(self) -> int:
        """Raise ``ClaimFailed`` if any check failed; otherwise the number that passed."""
        if self.failures:
            raise ClaimFailed(f"{len(self.failures)} check(s) failed: " + "; ".join(self.failures))
        print(f"all {self.passed} checks passed")  # run-all's key result: a checks cell's last line
        return self.passed

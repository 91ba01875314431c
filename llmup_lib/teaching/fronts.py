"""Learning–forgetting fronts: compare fine-tuning methods over their rates, not at one point.

A method's run at one learning rate is one point: how much of the domain it learned (domain
excess over the floor, lower is better) against how much it forgot (general-loss rise over the
base model, lower is better). Raising the rate moves a method along a curve, so comparing two
methods at rates one metric chose says more about the rates than about the methods. The
**front** of a method is its points that no other rate of the same method beats on both axes.
Two methods are then compared *at matched learning* (each one's forgetting, read off its front at
the same domain excess) or *at matched forgetting*; Biderman et al. (2024) found LoRA and full
fine-tuning on one such curve for code and maths.

Fronts are read from a tuning table (``experiments.tuning``: method × rate × seed) through
``front_points``; interpolation between a front's points is linear in log domain excess.
"""

from __future__ import annotations

import math
import numbers
import statistics

LEARNING, FORGETTING = "domain_excess", "forgetting"


FORGETTING_MEASURES = ("general_loss", "world_facts")


def front_points(table: dict, method: str, base: float, measure: str = "general_loss"
                 ) -> list[dict]:
    """``method``'s runs in a tuning table, one point per rate: ``lr``, the seed count ``n``,
    the mean and seed deviation of the domain excess, of the forgetting and of the world facts,
    sorted by rate. The forgetting is read on ``measure``: the general loss's rise over the base
    model's (``base``, its general loss; the default) or, with ``"world_facts"``, the share of
    world facts lost (``base``: the base model's share known)."""
    if measure not in FORGETTING_MEASURES:
        raise ValueError(f"measure={measure!r} is not a forgetting measure; use one of "
                         f"{FORGETTING_MEASURES}.")
    sign = 1 if measure == "general_loss" else -1  # a loss rises, a share of facts falls
    groups: dict[float, list[dict]] = {}
    for row in table["rows"]:
        if row["method"] == method:
            groups.setdefault(row["lr"], []).append(row)
    if not groups:
        raise ValueError(f"The table has no runs of {method!r}; it has "
                         f"{sorted({r['method'] for r in table['rows']})}.")
    points = []
    for lr, rows in sorted(groups.items()):
        values = {LEARNING: [r["domain_excess"] for r in rows],
                  FORGETTING: [sign * (r[measure] - base) for r in rows],
                  "world_facts": [r["world_facts"] for r in rows]}
        point = {"method": method, "lr": lr, "n": len(rows)}
        for key, vals in values.items():
            point[key] = statistics.mean(vals)
            point[key + "_std"] = statistics.stdev(vals) if len(vals) > 1 else 0.0
        points.append(point)
    return points


def front(points: list[dict]) -> list[dict]:
    """The points no other point beats on both axes (lower domain excess *and* lower
    forgetting), sorted by domain excess; at least 3, or a front is not a curve."""
    kept = [p for p in points
            if not any(q[LEARNING] <= p[LEARNING] and q[FORGETTING] <= p[FORGETTING]
                       and (q[LEARNING], q[FORGETTING]) != (p[LEARNING], p[FORGETTING])
                       for q in points)]
    kept.sort(key=lambda p: p[LEARNING])
    if len(kept) < 3:
        method = points[0]["method"] if points else "?"
        rates = ", ".join(f"{p['lr']:g}" for p in kept)
        raise ValueError(f"The front of {method!r} has {len(kept)} point(s) (rates {rates}), "
                         "too few to read a curve from; add rates to its grid (python -m "
                         "llmup_lib experiment tune --grid ... --extend) so at least 3 are on it.")
    return kept


def lever_fronts(table: dict, levers: dict, measure: str = "general_loss") -> tuple[dict, dict]:
    """``(points, fronts)`` of each lever ``name: (method, base)`` in a tuning table: its points
    (``front_points`` on ``measure``, from its own base model's value ``base``) and its front. A
    lever with fewer than 3 points on its front gets no front (its points are still shown)."""
    points = {name: front_points(table, method, base, measure)
              for name, (method, base) in levers.items()}
    fronts = {}
    for name, pts in points.items():
        try:
            fronts[name] = front(pts)
        except ValueError:  # too few points on it to read a curve
            pass
    return points, fronts


def placement(curve: list[dict], reference: list[dict], stds: float = 2.0) -> dict:
    """Where ``curve`` lies against ``reference``: its ``verdict`` at matched learning, the
    smallest and largest forgetting gap there (``forgets``, positive: forgets more), the same for
    the domain-excess gap at matched forgetting (``learns``, positive: learns less), the
    smallest gap in seed deviations (``stds``) and the matched-learning ``gaps`` themselves
    (``matched_gaps``, what ``claims.claim_below_front`` reads). Spans are None where no point
    can be matched."""
    at_excess = matched_gaps(curve, reference)
    at_forgetting = matched_gaps(curve, reference, along=FORGETTING)

    def span(gaps):
        return (min(g["gap"] for g in gaps), max(g["gap"] for g in gaps)) if gaps else None

    return {"verdict": verdict(at_excess, stds), "forgets": span(at_excess),
            "learns": span(at_forgetting),
            "stds": min((abs(g["in_stds"]) for g in at_excess), default=None),
            "gaps": at_excess}


def read_front(curve: list[dict], at: float, along: str = LEARNING, other: str | None = None
               ) -> dict | None:
    """The front's value and seed deviation of the *other* axis at ``at`` on axis ``along``
    (linear between neighbouring points, in log domain excess), or None outside its range.
    ``other`` names the other axis for curves on other axes (notebook 04: held-out against
    trained exact match); by default the learning–forgetting pair."""
    other = other or (FORGETTING if along == LEARNING else LEARNING)
    ordered = sorted(curve, key=lambda p: p[along])
    lo, hi = ordered[0][along], ordered[-1][along]
    if not lo <= at <= hi:
        return None
    scale = math.log if along == LEARNING else (lambda v: v)
    for a, b in zip(ordered, ordered[1:]):
        if a[along] <= at <= b[along]:
            span = scale(b[along]) - scale(a[along])
            w = 0.0 if span == 0 else (scale(at) - scale(a[along])) / span
            return {other: (1 - w) * a[other] + w * b[other],
                    other + "_std": (1 - w) * a[other + "_std"] + w * b[other + "_std"]}
    return {other: ordered[-1][other], other + "_std": ordered[-1][other + "_std"]}


def matched_gaps(curve: list[dict], reference: list[dict], along: str = LEARNING,
                 other: str | None = None) -> list[dict]:
    """For each point of ``curve`` inside ``reference``'s range on ``along``: the other axis's
    gap to ``reference`` at the same ``along`` value (``curve`` minus ``reference``: positive is
    worse on the learning–forgetting axes, lower-is-better both), and that gap in seed deviations
    (both sides' deviations combined). Points outside the range are left out: a front says
    nothing beyond its ends. ``other``: as in ``read_front``."""
    other = other or (FORGETTING if along == LEARNING else LEARNING)
    gaps = []
    for p in curve:
        ref = read_front(reference, p[along], along, other)
        if ref is None:
            continue
        gap = p[other] - ref[other]
        spread = math.hypot(p[other + "_std"], ref[other + "_std"])
        gaps.append({"lr": p["lr"], along: p[along], "gap": gap,
                     "in_stds": gap / spread if spread > 0 else math.copysign(math.inf, gap)})
    return gaps


def verdict(gaps: list[dict], stds: float = 2.0) -> str | None:
    """Where a method lies against the reference front, from its ``matched_gaps``: ``"on"``
    (every gap within ``stds`` seed deviations), ``"below"`` (every one worse beyond them),
    ``"above"`` (every one better), ``"mixed"``, or None when no point could be matched."""
    if not gaps:
        return None
    if all(abs(g["in_stds"]) <= stds for g in gaps):
        return "on"
    if all(g["in_stds"] > stds for g in gaps):
        return "below"
    if all(g["in_stds"] < -stds for g in gaps):
        return "above"
    return "mixed"


def same_front(curve: list[dict], reference: list[dict], stds: float = 2.0) -> bool | None:
    """True when every matched point of ``curve`` forgets within ``stds`` seed deviations of
    ``reference`` at the same domain excess; None when no point can be matched."""
    found = verdict(matched_gaps(curve, reference), stds)
    return None if found is None else found == "on"


def validate_tolerance(tolerance) -> float:
    """A forgetting tolerance: the general loss's allowed rise over the base, as a fraction."""
    if (isinstance(tolerance, bool) or not isinstance(tolerance, numbers.Real)
            or not 0 < tolerance <= 10):
        raise ValueError(f"tolerance={tolerance!r} must be in (0, 10]: the general loss's allowed "
                         "rise over the base model, as a fraction; pass e.g. 0.25 (25 %).")
    return float(tolerance)


def operating_point(points: list[dict], base_general_loss: float, tolerance: float) -> dict | None:
    """The point that learns most (lowest domain excess) among those whose mean general loss
    stays within ``tolerance`` (a fraction) of the base model's; None when none does. A rule
    that reads both axes, unlike choosing by domain excess alone."""
    limit = validate_tolerance(tolerance) * base_general_loss
    within = [p for p in points if p[FORGETTING] <= limit]
    return min(within, key=lambda p: p[LEARNING]) if within else None


def best_within(curve: list[dict], base_general_loss: float, tolerance: float) -> dict | None:
    """The least domain excess a method's front reaches while its general loss stays within
    ``tolerance`` (a fraction) of the base model's: ``{"domain_excess", "rates"}``. Where the
    limit falls between two rates of the front, the excess is read off the front there (linear in
    forgetting) and ``rates`` names both, since a rate between them would reach it; where the
    front stays inside the limit, it is the front's best point. None when even the gentlest point
    forgets more. ``domain_excess_std`` is the seed deviation read off the front the same way."""
    limit = validate_tolerance(tolerance) * base_general_loss
    ordered = sorted(curve, key=lambda p: p[FORGETTING])
    if ordered[0][FORGETTING] > limit:
        return None
    if ordered[-1][FORGETTING] <= limit:
        best = min(curve, key=lambda p: p[LEARNING])
        return {LEARNING: best[LEARNING], LEARNING + "_std": best[LEARNING + "_std"],
                "rates": (best["lr"],)}
    inside = max((p for p in ordered if p[FORGETTING] <= limit), key=lambda p: p[FORGETTING])
    outside = min((p for p in ordered if p[FORGETTING] > limit), key=lambda p: p[FORGETTING])
    found = read_front(curve, limit, along=FORGETTING)
    return {LEARNING: found[LEARNING], LEARNING + "_std": found[LEARNING + "_std"],
            "rates": tuple(sorted((inside["lr"], outside["lr"])))}

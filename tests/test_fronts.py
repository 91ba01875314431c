import math
import warnings

import pytest

from llmup_lib.experiments.runner import best_rates
from llmup_lib.tasks.instructions import arm_points
from llmup_lib.teaching.fronts import (front, front_points, matched_gaps, operating_point,
                                       read_front, same_front, validate_tolerance)

BASE = 1.0


def point(x, f, sx=0.01, sf=0.01, lr=None, method="m"):
    return {"method": method, "lr": lr if lr is not None else x, "n": 3, "domain_excess": x,
            "domain_excess_std": sx, "forgetting": f, "forgetting_std": sf}


def table(method, runs):
    """Rows of a tuning table: runs is [(lr, seed, domain_excess, general_loss)]."""
    return {"rows": [{"method": method, "lr": lr, "seed": s, "domain_excess": x,
                      "general_loss": g, "world_facts": 0.5} for lr, s, x, g in runs]}


REFERENCE = [point(0.1, 2.0), point(0.2, 1.0), point(0.4, 0.5), point(0.8, 0.25)]


def test_front_points_average_seeds_and_measure_forgetting_from_the_base():
    t = table("full", [(1e-3, 0, 0.2, 1.5), (1e-3, 1, 0.4, 2.5), (3e-4, 0, 0.5, 1.1)])
    points = front_points(t, "full", base=BASE)
    assert [p["lr"] for p in points] == [3e-4, 1e-3]
    assert points[1]["domain_excess"] == pytest.approx(0.3)
    assert points[1]["forgetting"] == pytest.approx(1.0)  # mean general loss 2.0 minus the base
    assert points[1]["forgetting_std"] == pytest.approx(math.sqrt(0.5))
    assert points[0]["n"] == 1 and points[0]["forgetting_std"] == 0.0
    with pytest.raises(ValueError, match=r"no runs of 'lora-r4'.*\['full'\]"):
        front_points(t, "lora-r4", BASE)


def test_front_points_read_world_facts_lost_as_the_forgetting():
    """The second forgetting axis: the share of world facts lost from the base model's."""
    t = table("full", [(1e-3, 0, 0.2, 1.5), (1e-3, 1, 0.4, 2.5)])
    t["rows"][0]["world_facts"], t["rows"][1]["world_facts"] = 0.40, 0.30
    (p,) = front_points(t, "full", 0.60, measure="world_facts")
    assert p["forgetting"] == pytest.approx(0.25) and p["world_facts"] == pytest.approx(0.35)
    with pytest.raises(ValueError, match="measure='domain_facts' is not a forgetting measure"):
        front_points(t, "full", 0.60, measure="domain_facts")


def test_front_drops_points_beaten_on_both_axes():
    diverged = point(3.0, 8.0)  # a rate too high: worse on both axes than every other
    kept = front(REFERENCE[::-1] + [diverged])
    assert [p["domain_excess"] for p in kept] == [0.1, 0.2, 0.4, 0.8]
    with pytest.raises(ValueError, match=r"'m' has 2 point\(s\).*at least 3"):
        front([point(0.1, 2.0), point(0.2, 1.0), point(0.3, 3.0)])


def test_read_front_interpolates_in_log_excess_and_says_nothing_beyond_its_ends():
    assert read_front(REFERENCE, 0.2)["forgetting"] == pytest.approx(1.0)
    assert read_front(REFERENCE, math.sqrt(0.02))["forgetting"] == pytest.approx(1.5)
    assert read_front(REFERENCE, 0.05) is None and read_front(REFERENCE, 0.9) is None
    # and the other way: domain excess at a matched forgetting
    assert read_front(REFERENCE, 0.75, along="forgetting")["domain_excess"] == pytest.approx(0.3)


def test_the_same_curve_is_on_the_front_and_a_worse_one_is_not():
    # a null: another method on the very same curve, seed noise well inside 2 deviations
    same = [point(0.15, 1.415 + 0.01), point(0.3, 0.707 - 0.01), point(0.6, 0.354)]
    assert same_front(same, REFERENCE) is True
    # broken: the same learning for 0.2 nats more forgetting, 14 seed deviations
    worse = [point(p["domain_excess"], p["forgetting"] + 0.2) for p in same]
    assert same_front(worse, REFERENCE) is False
    gaps = matched_gaps(worse, REFERENCE)
    assert [g["gap"] for g in gaps] == [pytest.approx(0.2, abs=0.011)] * 3  # the 0.01 noise
    assert all(g["in_stds"] > 2 for g in gaps)
    # nothing to match: every point beyond the reference's range
    assert same_front([point(2.0, 0.1), point(3.0, 0.05)], REFERENCE) is None


def test_operating_point_learns_most_within_the_forgetting_tolerance():
    assert operating_point(REFERENCE, BASE, 0.6)["domain_excess"] == 0.4
    assert operating_point(REFERENCE, BASE, 2.0)["domain_excess"] == 0.1
    assert operating_point(REFERENCE, BASE, 0.1) is None


@pytest.mark.parametrize("bad", [0, -0.1, 11, True, "0.25", float("nan")])
def test_a_tolerance_outside_0_to_10_is_refused(bad):
    with pytest.raises(ValueError, match=r"must be in \(0, 10\].*0.25"):
        validate_tolerance(bad)


def test_a_best_rate_on_the_edge_of_its_grid_warns_with_the_rate_to_add():
    rows = [{"method": "full", "lr": lr, "domain_excess": x}
            for lr, x in [(1e-3, 0.5), (3e-3, 0.3), (1e-2, 0.2)]]
    with pytest.warns(UserWarning, match=r"best rate 0.01 is the highest.*add 0.03"):
        assert best_rates(rows, "method", "domain_excess") == {"full": 1e-2}
    inside = rows + [{"method": "full", "lr": 3e-2, "domain_excess": 0.9}]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        best_rates(inside, "method", "domain_excess")


def test_verdicts_and_the_below_front_claim_fail_on_a_null():
    from llmup_lib.teaching.claims import ClaimFailed, claim_below_front
    from llmup_lib.teaching.fronts import verdict

    same = [point(0.15, 1.42), point(0.3, 0.70), point(0.6, 0.354)]
    worse = [point(p["domain_excess"], p["forgetting"] + 0.2) for p in same]
    better = [point(p["domain_excess"], p["forgetting"] - 0.2) for p in same]
    assert verdict(matched_gaps(same, REFERENCE)) == "on"
    assert verdict(matched_gaps(worse, REFERENCE)) == "below"
    assert verdict(matched_gaps(better, REFERENCE)) == "above"
    assert verdict(matched_gaps(same[:1] + worse[1:], REFERENCE)) == "mixed"
    assert verdict([]) is None
    assert claim_below_front(matched_gaps(worse, REFERENCE), "LoRA r=4") > 2
    with pytest.raises(ClaimFailed, match="on its front, not below it"):
        claim_below_front(matched_gaps(same, REFERENCE), "LoRA r=4")  # the null
    with pytest.raises(ClaimFailed, match="1 point"):
        claim_below_front(matched_gaps(worse[:1], REFERENCE), "LoRA r=4")
    from llmup_lib.teaching.claims import claim_above_front

    assert claim_above_front(matched_gaps(better, REFERENCE), "replay") > 2
    with pytest.raises(ClaimFailed, match="on its front, not above it"):
        claim_above_front(matched_gaps(same, REFERENCE), "replay")  # the null
    with pytest.raises(ClaimFailed, match="not above it"):
        claim_above_front(matched_gaps(worse, REFERENCE), "replay")  # the wrong side
    with pytest.raises(ClaimFailed, match="0 point"):
        claim_above_front([], "replay")


def test_best_within_reads_the_front_where_it_crosses_the_tolerance():
    from llmup_lib.teaching.fronts import best_within

    curve = [dict(p, lr=lr) for p, lr in zip(REFERENCE, (1e-2, 3e-3, 1e-3, 3e-4))]
    # a rise of 0.75 falls between 0.5 (lr 1e-3, excess 0.4) and 1.0 (lr 3e-3, excess 0.2)
    found = best_within(curve, BASE, 0.75)
    assert found["domain_excess"] == pytest.approx(0.3) and found["rates"] == (1e-3, 3e-3)
    assert best_within(curve, BASE, 5.0) == {"domain_excess": 0.1, "domain_excess_std": 0.01,
                                             "rates": (1e-2,)}
    assert found["domain_excess_std"] == pytest.approx(0.01)  # read off the front like the mean
    assert best_within(curve, BASE, 0.1) is None  # even the gentlest rate forgets 0.25
    with pytest.raises(ValueError, match="tolerance=0"):
        best_within(curve, BASE, 0)


def test_the_guide_claim_needs_a_gap_beyond_the_seeds_and_fails_on_one_front():
    """07's guide check: a lever that reaches further within the tolerance, beyond two seed
    deviations each side, passes; the same front twice (a null) fails, and so does a lever with
    no rate inside the tolerance."""
    from llmup_lib.teaching.claims import ClaimFailed, claim_reaches_further
    from llmup_lib.teaching.fronts import best_within

    curve = [dict(p, lr=lr) for p, lr in zip(REFERENCE, (1e-2, 3e-3, 1e-3, 3e-4))]
    worse = [dict(p, domain_excess=2 * p["domain_excess"]) for p in curve]  # learns half as well
    good, bad = best_within(curve, BASE, 0.75), best_within(worse, BASE, 0.75)
    assert claim_reaches_further(good, bad, "a vs b") == pytest.approx(0.3)
    with pytest.raises(ClaimFailed, match="not beyond"):
        claim_reaches_further(good, good, "null: one front twice")
    noisy = [dict(p, domain_excess_std=0.2) for p in worse]  # the seeds cannot tell them apart
    with pytest.raises(ClaimFailed, match="not beyond"):
        claim_reaches_further(good, best_within(noisy, BASE, 0.75), "within the seeds")
    with pytest.raises(ClaimFailed, match="no rate within the tolerance"):
        claim_reaches_further(good, best_within(curve, BASE, 0.1), "nothing inside")


def test_placement_reads_both_gaps_and_says_where_a_curve_lies():
    from llmup_lib.teaching.fronts import placement

    below = [point(x, 1.5 * f, method="lora") for x, f in ((0.2, 1.0), (0.4, 0.5), (0.8, 0.25))]
    found = placement(below, REFERENCE)
    assert found["verdict"] == "below" and found["stds"] > 2
    assert found["forgets"] == pytest.approx((0.125, 0.5))  # forgets more at the same excess
    assert found["learns"][0] > 0  # and learns less at the same forgetting
    same = placement(REFERENCE, REFERENCE)  # a null: one front against itself
    assert same["verdict"] == "on" and same["forgets"] == (0, 0) and same["stds"] == 0
    outside = placement([point(5.0, 9.0), point(6.0, 8.0), point(7.0, 7.0)], REFERENCE)
    assert outside == {"verdict": None, "forgets": None, "learns": None, "stds": None,
                       "gaps": []}
    assert found["gaps"] == matched_gaps(below, REFERENCE)  # what claim_below_front reads


def test_lever_fronts_give_every_lever_its_points_and_a_front_where_one_exists():
    from llmup_lib.teaching.fronts import lever_fronts

    rows = [(lr, 0, x, g) for lr, x, g in ((1e-4, 0.8, 1.2), (3e-4, 0.4, 1.5), (1e-3, 0.2, 2.0))]
    t = table("full", rows)
    t["rows"] += table("lora-r1", [(1e-3, 0, 0.9, 1.4), (3e-3, 0, 0.5, 1.9)])["rows"]
    points, fronts = lever_fronts(t, {"full": ("full", BASE), "r=1": ("lora-r1", BASE)})
    assert [p["forgetting"] for p in points["full"]] == pytest.approx([0.2, 0.5, 1.0])
    assert set(fronts) == {"full"} and len(points["r=1"]) == 2  # two rates: no curve


# ----------------------------------------------------------------------------- other axes (04)
def em_table(method, runs):
    """Rows of an instructions tuning table: runs is [(lr, seed, em_trained, em_heldout)]."""
    return {"rows": [{"method": method, "lr": lr, "seed": s, "em_trained": t, "em_heldout": h,
                      "trained_error": 1 - t} for lr, s, t, h in runs]}


def em_curve(method, shift, noise=0.01):
    """Three rates, three seeds: trained EM 0.3 / 0.5 / 0.7, held-out EM that plus ``shift``."""
    runs = [(lr, s, t + noise * (s - 1), t + shift + noise * (s - 1))
            for lr, t in ((1e-3, 0.3), (3e-3, 0.5), (1e-2, 0.7)) for s in range(3)]
    return arm_points(em_table(method, runs), method)


def test_arm_points_average_seeds_per_rate():
    points = em_curve("lora-r8", 0.1)
    assert [p["lr"] for p in points] == [1e-3, 3e-3, 1e-2]
    assert points[1]["em_trained"] == pytest.approx(0.5)
    assert points[1]["em_heldout"] == pytest.approx(0.6)
    assert points[1]["em_heldout_std"] == pytest.approx(0.01) and points[1]["n"] == 3
    with pytest.raises(ValueError, match="no runs of 'full'"):
        arm_points(em_table("lora-r8", [(1e-3, 0, 0.2, 0.1)]), "full")


def test_matched_gaps_read_held_out_at_equal_trained_exact_match():
    """Read on other axes (notebook 04), linear in trained EM: a curve 0.1 below another is 0.1
    below at every matched point, beyond the seed spread; a curve on the other's line is on it."""
    masked, unmasked = em_curve("lora-r8", 0.1), em_curve("lora-r8-unmasked", 0.0)
    gaps = matched_gaps(unmasked, masked, along="em_trained", other="em_heldout")
    assert [g["gap"] for g in gaps] == pytest.approx([-0.1, -0.1, -0.1])
    assert all(g["in_stds"] < -2 for g in gaps)
    null = matched_gaps(em_curve("lora-r8", 0.1), masked, along="em_trained", other="em_heldout")
    assert [g["gap"] for g in null] == pytest.approx([0, 0, 0], abs=1e-12)
    shifted = [dict(p, em_trained=p["em_trained"] + 0.5) for p in unmasked]
    assert matched_gaps(shifted, masked, along="em_trained", other="em_heldout") == []

"""The notebooks' headline checks fail on a null or a broken experiment.

Each check passes on the shipped experiments (the tuning tables are real runs, three seeds each)
and raises AssertionError when the experiment is broken: a method that did not train, two arms
that are the same, distillation with alpha = 0, instruction tuning on wrong answers."""

import math

import pytest

from llmup_lib.teaching.claims import claim_better, claim_in_band
from llmup_lib.teaching.compare import mean_std, separation
from llmup_lib.teaching.claims import claim_kd_beats_scratch
from llmup_lib.methods.distill import gap_closed
from llmup_lib.teaching.claims import claim_lora_vs_full, claim_transfer
from llmup_lib.core.profiles import get_profile
from llmup_lib.core.tokenizer import load_tokenizer
from llmup_lib.experiments.tuning import best_rate, load_tuning_table, seed_values


# ----------------------------------------------------------------------------- claim_better
def test_clearly_better_needs_a_gap_beyond_both_error_bars():
    assert claim_better([1.0, 1.1, 0.9], [2.0, 2.1, 1.9]) == pytest.approx(1.0)
    assert separation([1.0, 1.1, 0.9], [2.0, 2.1, 1.9]) == (pytest.approx(1.0), pytest.approx(0.4))
    assert claim_better([0.7, 0.69, 0.71], [0.4, 0.45, 0.44], higher_is_better=True) > 0
    with pytest.raises(AssertionError, match="the score: .* not beyond"):
        claim_better([1.0, 1.1, 0.9], [1.0, 1.1, 0.9])  # a null experiment: the same arm
    with pytest.raises(AssertionError, match="gap of -1"):
        claim_better([2.0, 2.1, 1.9], [1.0, 1.1, 0.9])  # the wrong way round
    # a real difference of means, but inside two deviations each side
    with pytest.raises(AssertionError, match="not beyond"):
        claim_better([1.0, 1.3, 0.7], [1.5, 1.8, 1.2])
    with pytest.raises(AssertionError, match="at least 0.05"):
        claim_better([0.5, 0.5, 0.5], [0.47, 0.47, 0.47], higher_is_better=True, min_gap=0.05)


def test_inside_band_passes_a_repeat_and_fails_a_run_that_broke():
    seeds = [0.90, 0.945, 0.925]
    assert claim_in_band(0.90, seeds) == pytest.approx(0.90 - sum(seeds) / 3)
    assert claim_in_band(0.95, [0.9, 0.9, 0.9], min_width=0.05) == pytest.approx(0.05)
    with pytest.raises(AssertionError, match="outside the table's band"):
        claim_in_band(0.0, seeds)  # the live run did not train
    with pytest.raises(AssertionError, match="outside the table's band"):
        claim_in_band(0.96, [0.9, 0.9, 0.9], min_width=0.05)  # no spread: the floor decides


def test_mean_std_refuses_what_cannot_show_a_spread():
    assert mean_std([1.0, 3.0]) == (2.0, pytest.approx(math.sqrt(2)))
    with pytest.raises(ValueError, match="1 value.*at least two"):
        mean_std([1.0])
    with pytest.raises(ValueError, match="not all finite.*diverged"):
        mean_std([1.0, float("nan")])


# ---------------------------------------------------------------- 02 and 03, on the shipped sweep
@pytest.fixture(scope="module")
def domain():
    """The shipped domain sweep (39 real runs) and the base model's scores, measured here: the
    untrained start, which is also what a frozen adapter or a run that never stepped scores."""
    from llmup_lib.experiments.tuning import make_model, tuning_data

    profile, tokenizer = get_profile("cpu"), load_tokenizer()
    table = load_tuning_table(profile, tokenizer)
    data = tuning_data(profile, tokenizer)
    frozen = data["measure"](make_model("lora-r2", data, profile, seed=0))  # B = 0: the base
    best = {m: best_rate(table, m) for m in ("full", "scratch", "lora-r2")}

    def arm(method, metric):
        return seed_values(table, method, best[method], metric)

    return {"arm": arm, "frozen": frozen}


@pytest.mark.slow  # 27, its fixture s on 2 shared cores (2026-12-04)
def test_transfer_check_passes_on_the_sweep_and_fails_when_broken(domain):
    arm, frozen = domain["arm"], domain["frozen"]
    base = frozen["domain_excess"]
    assert claim_transfer(base, arm("full", "domain_excess"), arm("scratch", "domain_excess")) > 0
    # broken: fine-tuning that never changed the weights scores the base model's excess
    with pytest.raises(AssertionError, match="not 5x below.*did it train"):
        claim_transfer(base, [frozen["domain_excess"]] * 3, arm("scratch", "domain_excess"))
    # null: the "pretrained start" is the scratch model (no pretraining, nothing to transfer)
    with pytest.raises(AssertionError, match="fine-tuned vs from scratch"):
        claim_transfer(base, arm("scratch", "domain_excess"), arm("scratch", "domain_excess"))


@pytest.mark.slow  # shares that fixture s on 2 shared cores (2026-12-04)
def test_lora_vs_full_check_passes_on_the_sweep_and_fails_when_broken(domain):
    arm, frozen = domain["arm"], domain["frozen"]
    start = frozen["domain_excess"]
    lora = {m: arm("lora-r2", m) for m in ("domain_excess", "general_loss")}
    full = {m: arm("full", m) for m in ("domain_excess", "general_loss")}
    gaps = claim_lora_vs_full(start, lora, full)
    assert gaps["learns_less"] > 0 and gaps["forgets_less"] > 0
    # broken: a frozen adapter "learns less and forgets less" trivially, and must still fail
    frozen_arm = {m: [frozen[m]] * 3 for m in ("domain_excess", "general_loss")}
    with pytest.raises(AssertionError, match="is the adapter training"):
        claim_lora_vs_full(start, frozen_arm, full)
    # null: LoRA's arm is full fine-tuning's
    with pytest.raises(AssertionError, match="learns less"):
        claim_lora_vs_full(start, full, full)


# ------------------------------------------------------------------------------------------ 04
def test_04s_checks_fail_on_a_null_or_a_rate_confounded_experiment():
    """Notebook 04 reads masking and LoRA-vs-full with claim_better on the table's seeds at each
    arm's rate: its measured best-rate arms pass; the same arm twice (a null) fails, and so does
    the comparison at the rates tuned on trained questions, where the gap is within the spread."""
    best_masked, best_unmasked = [0.69, 0.70, 0.69], [0.54, 0.46, 0.50]  # 04's table, rounded
    assert claim_better(best_masked, best_unmasked, spreads=3, min_gap=0.05,
                        higher_is_better=True) == pytest.approx(0.1933, abs=1e-3)
    with pytest.raises(AssertionError, match="masked"):
        claim_better(best_masked, best_masked, spreads=3, higher_is_better=True, what="masked")
    tuned_masked = [0.56, 0.55, 0.53]  # the rule's rate, 1e-2: +5 points, within the spread
    with pytest.raises(AssertionError):
        claim_better(tuned_masked, best_unmasked, spreads=3, min_gap=0.05, higher_is_better=True)


# ------------------------------------------------------------------------------------------ 06
@pytest.fixture(scope="module")
def tiny_students(tmp_path_factory):
    """Two batch orders each of a pico student trained from scratch and by "KD" with
    alpha = 0, on a pico teacher of their own: the broken experiment of notebook 06."""
    import torch

    from llmup_lib.core.base import general_blocks, load_base_model
    from llmup_lib.methods.distill import TeacherCache, distill
    from llmup_lib.core.models import build_model
    from llmup_lib.core.train import TrainConfig

    mp = pytest.MonkeyPatch()
    mp.setenv("LLMUP_CACHE", str(tmp_path_factory.mktemp("cache")))
    try:
        profile = get_profile("cpu", base_size="pico", base_steps=8, n_general=40, n_val=8)
        tokenizer = load_tokenizer()
        teacher = load_base_model(profile, progress=False)
        train_blocks, val_blocks = general_blocks(profile, tokenizer)
        cache = TeacherCache(teacher, train_blocks, progress=False)
        losses = {}
        for name, alpha in (("scratch", 0.0), ("kd, alpha 0", 0.0), ("kd", 1.0)):
            losses[name] = []
            for seed in (0, 1):
                torch.manual_seed(0)
                student = build_model("pico", tokenizer, profile.context, seed=0)
                cfg = TrainConfig(steps=6, batch_size=4, lr=1e-2, seed=seed, eval_batches=2,
                                  progress=False)
                losses[name].append(distill(student, cache, train_blocks, val_blocks, cfg,
                                            alpha=alpha).final_val_loss)
        from llmup_lib.core.train import eval_loss

        yield losses, eval_loss(teacher, val_blocks, 2)
    finally:
        mp.undo()


@pytest.mark.slow  # 8.8, its fixture s on 2 shared cores (2026-12-04)
def test_kd_check_fails_when_alpha_is_zero(tiny_students):
    losses, teacher_loss = tiny_students
    assert losses["kd, alpha 0"] == pytest.approx(losses["scratch"])  # alpha 0 *is* scratch
    with pytest.raises(AssertionError, match="is alpha > 0"):
        claim_kd_beats_scratch(losses["scratch"], losses["kd, alpha 0"], teacher_loss)


def test_kd_check_passes_on_the_shipped_student_sweep_and_needs_the_gap_closed():
    from llmup_lib.experiments.tuning import best_rate

    profile, tokenizer = get_profile("cpu"), load_tokenizer()
    table = load_tuning_table(profile, tokenizer, task="distill")
    scratch = seed_values(table, "scratch", best_rate(table, "scratch"), "val_loss")
    kd = seed_values(table, "kd", best_rate(table, "kd"), "val_loss")
    closed = claim_kd_beats_scratch(scratch, kd, table["teacher_loss"])
    assert closed == pytest.approx(gap_closed(sum(scratch) / 3, sum(kd) / 3, table["teacher_loss"]))
    # a student far better than scratch but closing too little of a far bigger gap still fails
    with pytest.raises(AssertionError, match="less than 25%"):
        claim_kd_beats_scratch([2.0, 2.01, 1.99], [1.9, 1.91, 1.89], teacher_loss=0.5)


# ----------------------------------------------------------------------------- Scorecard
def test_a_scorecard_prints_one_line_per_check_and_fails_at_the_end(capsys):
    from llmup_lib.teaching.claims import ClaimFailed, Scorecard, claim_better

    card = Scorecard()
    assert card.at_least("gain (nats)", 2.0, 1.0)
    assert not card.at_most("peak (MB)", 4000.0, 3500.0)
    assert card.claim("a beats b", claim_better, [1.0, 1.1, 0.9], [3.0, 3.1, 2.9]) > 0
    assert card.claim("null: a beats itself", claim_better, [1.0, 1.1], [1.0, 1.1],
                      what="arm a") is None  # the claim's own what= reaches it
    assert not card.at_least("NaN never passes", float("nan"), 0.0)
    lines = capsys.readouterr().out.splitlines()
    assert [line[:4] for line in lines] == ["PASS", "FAIL", "PASS", "FAIL", "FAIL"]
    assert all(len(line) <= Scorecard.WIDTH for line in lines)
    assert "4000 (bar <= 3500)" in lines[1]
    with pytest.raises(ClaimFailed, match="3 check"):
        card.close()


def test_a_scorecard_yes_no_claim_fails_and_info_is_never_checked(capsys):
    from llmup_lib.teaching.claims import ClaimFailed, Scorecard

    card = Scorecard()
    card.info("the student is smaller (by construction)", "8.8x")
    assert card.holds("no student beats the teacher", True, "0.886 > 0.631")
    assert not card.holds("null: an ordering that broke", False, "1.0 vs 1.0")
    lines = capsys.readouterr().out.splitlines()
    assert [line[:4] for line in lines] == ["info", "PASS", "FAIL"]
    assert card.passed == 1  # info lines count neither way
    with pytest.raises(ClaimFailed, match="1 check.*an ordering that broke"):
        card.close()


def test_a_scorecard_with_every_check_passing_closes_quietly(capsys):
    from llmup_lib.teaching.claims import Scorecard

    card = Scorecard()
    card.at_least("x", 1.0, 0.0)
    assert card.close() == 1
    assert capsys.readouterr().out.splitlines()[-1] == "all 1 checks passed"


def test_an_explorer_prints_its_default_result_before_the_widget(capsys):
    """A widget has a static fallback: the result at the defaults, in the cell's ordinary output,
    which a notebook rendered without a kernel shows (the widget itself needs a live one)."""
    import ipywidgets as w

    from llmup_lib.teaching.widgets import explorer

    seen = []

    def show(rank, name):
        seen.append((rank, name))
        print(f"rank {rank} for {name}")

    widget = explorer(show, rank=w.IntSlider(value=4, min=1, max=8), name=w.Text(value="q"))
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "at the defaults (rank=4, name='q'); with a live kernel, change them below:"
    assert "rank 4 for q" in out[1:] and seen[0] == (4, "q")
    assert isinstance(widget, w.interactive) and len(widget.children) >= 3


def test_the_headline_operating_point_fails_on_erasure_and_on_a_run_that_did_not_learn():
    """Notebook 02's headline check (claims.claim_operating_point), fed its two broken runs:
    the erasure at the pretraining peak rate, and the base model itself (a null that learns
    nothing and forgets nothing)."""
    from llmup_lib.teaching.claims import claim_operating_point

    base = {"general loss": 0.631, "domain excess": 3.323}
    headline = {"general loss": 0.695, "domain excess": 1.016}  # 02's, 2026-12-04
    assert claim_operating_point(base, headline, 0.25) == ("general loss +10%, domain excess 31% "
                                                           "of the base's")
    erasure = {"general loss": 5.983, "domain excess": 0.085}
    with pytest.raises(AssertionError, match="rose 848% .* beyond the 25% tolerance"):
        claim_operating_point(base, erasure, 0.25)
    with pytest.raises(AssertionError, match="100% of the base model's, not at most 50%"):
        claim_operating_point(base, base, 0.25)

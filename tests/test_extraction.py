"""Notebook 04's extraction experiment: the table, the shipped bases and the check that must fail
on a null or broken experiment."""

import dataclasses
import json

import pytest
import torch

from llmup_lib.experiments import extraction as ex
from llmup_lib.experiments import runner
from llmup_lib.teaching import claims
from llmup_lib.__main__ import main
from llmup_lib.core.models import load_model
from llmup_lib.core.tokenizer import load_tokenizer

TINY = ex.ExtractionRecipe(people=12, docs=200, val_docs=16, size="pico", context=64, steps=6,
                           it_steps=3, eval_rows=6, max_new_tokens=8)


@pytest.fixture(scope="module")
def tok():
    return load_tokenizer()


@pytest.fixture(scope="module")
def shipped():
    return ex.load_table()


def test_arms_share_people_and_facts_and_differ_in_phrasing():
    single, fullname, augmented = (ex.extraction_world(a, 0) for a in ex.ARMS)
    assert single.people == fullname.people == augmented.people
    assert single.facts == fullname.facts == augmented.facts
    assert not fullname.augmented and set(augmented.augmented) == set(augmented.people)
    assert single.pronouns and not fullname.pronouns


@pytest.mark.slow  # 6.9 s on 2 shared cores (2026-12-04)
def test_a_saved_base_is_the_base_its_row_was_tuned_from(tmp_path, tok):
    """The row's pretrained weights are rounded to float16 before tuning, so the saved
    (float16) base loads back to exactly those weights and repeats the row."""
    row = ex.run_arm("augmented", 0, tok, TINY, save_to=tmp_path / "cpu_augmented")
    assert set(row) >= {"pretrain_val_loss", "probe_all_people", "em_trained", "em_heldout"}
    base, val_loss = ex.pretrain("augmented", 0, tok, TINY)
    assert val_loss == pytest.approx(row["pretrain_val_loss"], abs=1e-5)
    saved = load_model(tmp_path / "cpu_augmented", dtype=torch.float32)
    for (name, a), b in zip(base.state_dict().items(), saved.state_dict().values()):
        assert torch.equal(a, b), name
    meta = json.loads((tmp_path / "cpu_augmented" / "extraction_base.json").read_text())
    assert meta["seed"] == 0 and meta["recipe"]["steps"] == TINY.steps
    logs = []
    loaded = ex.load_base("augmented", tok, TINY, folder=tmp_path, log=logs.append)
    assert not logs and all(torch.equal(a, b) for a, b in
                            zip(loaded.state_dict().values(), saved.state_dict().values()))
    longer_tuning = dataclasses.replace(TINY, it_steps=9, eval_rows=3)  # the same base
    ex.load_base("augmented", tok, longer_tuning, folder=tmp_path, log=logs.append)
    assert not logs
    ex.load_base("augmented", tok, TINY, seed=1, folder=tmp_path, log=logs.append)
    assert logs and "pretraining it" in logs[0]  # another seed: not the saved base
    ex.load_base("augmented", tok, dataclasses.replace(TINY, steps=7), folder=tmp_path,
                 log=logs.append)
    assert len(logs) == 2  # another pretraining recipe: not the saved base either


@pytest.mark.slow  # 4.7-6.5 s on 2 shared cores (2026-12-04)
def test_run_table_saves_the_first_seeds_shipped_arms_only(tmp_path, tok):
    table = ex.run_table(["fullname", "single"], [3], tok, TINY, save_bases=tmp_path,
                         log=lambda _: None)
    assert [(r["arm"], r["seed"]) for r in table["rows"]] == [("fullname", 3), ("single", 3)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cpu_single"]
    assert table["recipe"]["people"] == TINY.people
    path = runner.save(table, tmp_path / "t.json")
    assert ex.load_table(path, TINY) == table
    with pytest.raises(ValueError, match="another recipe"):
        ex.load_table(path)  # the default recipe is not TINY


def test_shipped_table_and_bases_match_the_recipe(shipped):
    assert len(shipped["seeds"]) >= 3 and shipped["command"].startswith("python -m llmup_lib")
    for arm in ex.ARMS:
        assert len(ex.arm_values(shipped, arm)) == len(shipped["seeds"])
    for arm in ex.SHIPPED_BASES:
        meta = json.loads((ex.DATA_DIR / f"cpu_{arm}" / "extraction_base.json").read_text())
        row = next(r for r in shipped["rows"] if r["arm"] == arm and r["seed"] == 0)
        assert meta["seed"] == 0 and meta["recipe"] == shipped["recipe"]
        assert meta["val_loss"] == pytest.approx(row["pretrain_val_loss"], abs=1e-5)


def test_claim_extraction_passes_on_the_shipped_runs(shipped):
    gap = claims.claim_extraction(ex.arm_values(shipped, "augmented"), ex.arm_values(shipped, "single"))
    assert gap > 0.2


def test_claim_extraction_fails_on_a_null_experiment(shipped):
    """Augmentation that changed nothing: the augmented arm's runs are the single arm's."""
    single = ex.arm_values(shipped, "single")
    with pytest.raises(AssertionError, match="below the 80% goal"):
        claims.claim_extraction(single, single)
    with pytest.raises(AssertionError, match="not beyond"):
        claims.claim_extraction([0.9, 0.91, 0.92], [0.9, 0.91, 0.92])  # above the goal, no gap


def test_claim_extraction_fails_when_instruction_tuning_taught_nothing(shipped):
    with pytest.raises(AssertionError, match="did pretraining or instruction tuning run"):
        claims.claim_extraction([0.0, 0.0, 0.0], ex.arm_values(shipped, "single"))


def test_claim_extraction_fails_within_the_seed_spread():
    with pytest.raises(AssertionError, match="not beyond"):
        claims.claim_extraction([0.95, 0.80, 0.88], [0.70, 0.55, 0.85])


def test_arm_values_names_a_missing_arm():
    with pytest.raises(ValueError, match="no 'augmented' rows; rerun"):
        ex.arm_values({"rows": [{"arm": "single", "em_heldout": 0.2}]}, "augmented")


def test_cli_refuses_an_unknown_arm_and_bad_seeds(capsys):
    for argv, message in ((["--arms", "bioS"], "Unknown extraction arm 'bioS'"),
                          (["--seeds", "a,b"], "--seeds 'a,b' must be comma-separated whole "
                                               "numbers")):
        with pytest.raises(SystemExit) as stop:
            main(["experiment", "extraction", *argv])
        err = capsys.readouterr().err
        assert stop.value.code == 2 and message in err and len(err.splitlines()) == 1


# ----------------------------------------------------------------------------- value-only scoring
def test_an_answer_states_the_value_whatever_name_it_starts_with():
    assert ex.states_value("Cyrus Holt lived in Brookside.", "Brookside")
    assert ex.states_value("They lived in Kestrel Bay", "Kestrel Bay")
    assert not ex.states_value("Brookside is where Cyrus lived.", "Brookside")
    assert not ex.states_value("Cyrus Hurst lived in Oakville.", "Brookside")


def test_value_scoring_does_not_reward_the_sentences_form():
    """The full-name sentence is verbatim pretraining text for two arms only: scored on the
    value, a wrong name with the right value counts and the right name with a wrong value does
    not; scored on the sentence, only the exact sentence counts."""
    rows = {"answer": ["Brookside", "Brookside", "pancakes"],
            "response": ["Cyrus Hurst lived in Brookside.", "Cyrus Hurst lived in Brookside.",
                         "Sana Fenwick's favourite food was pancakes."]}
    answers = ["Cyrus Holt lived in Brookside.", "Cyrus Hurst lived in Oakville.",
               "Sana Fenwick's favourite food was pancakes."]
    assert ex.share_right(rows, answers) == pytest.approx(2 / 3)
    assert ex.share_right(rows, answers, "sentence") == pytest.approx(1 / 3)


def test_shipped_table_scores_values_and_probes_storage_on_every_seed(shipped):
    assert shipped["recipe"]["scoring"] == "attribute value"
    for row in shipped["rows"]:
        assert {"probe_own_phrasing", "em_heldout", "em_heldout_sentence"} <= set(row)
        # the value is never scored stricter than the whole sentence it ends
        assert row["em_heldout"] >= row["em_heldout_sentence"]
    assert len(ex.arm_values(shipped, "single", "probe_own_phrasing")) == len(shipped["seeds"])

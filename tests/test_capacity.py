"""Notebook 05's knowledge-capacity table: the probe's bits, the runs, the table and the check
that must fail on a null or broken experiment."""

import dataclasses
import json
import math

import pytest

from llmup_lib.experiments import capacity as cap
from llmup_lib.experiments import runner
from llmup_lib.methods.scaling import predict_held_out
from llmup_lib.teaching import claims
from llmup_lib.__main__ import main
from llmup_lib.core.tokenizer import load_tokenizer
from llmup_lib.world.biographies import RELATIONS, VALUES

TINY = cap.CapacityRecipe(people=12, exposures=6, val_docs=16, context=64, batch_size=8)


@pytest.fixture(scope="module")
def tok():
    return load_tokenizer()


@pytest.fixture(scope="module")
def tiny_facts():
    return cap.capacity_data(0, load_tokenizer(), TINY)["facts"]


def _scorer(facts, kind):
    """A stand-in for ``sequence_logprobs`` that knows every fact, none, or a wrong value."""
    truth = {f["context"] + f["prompt"]: (f["object"], f["relation"]) for f in facts}

    def score(model, tokenizer, prompts, values, batch_size=64):
        out = []
        for prompt, value in zip(prompts, values):
            answer, relation = truth[prompt]
            if kind == "wrong":  # confidently wrong: the first other value
                answer = next(v for v in VALUES[relation] if v != answer)
            out.append(-3.0 if kind == "uniform" else 0.0 if value == " " + answer else -40.0)
        return out
    return score


@pytest.mark.parametrize("kind", ["oracle", "uniform", "wrong"])
def test_probe_counts_the_bits_a_model_holds(monkeypatch, tiny_facts, kind):
    monkeypatch.setattr("llmup_lib.core.evaluate.sequence_logprobs", _scorer(tiny_facts, kind))
    probe = cap.knowledge_bits(None, None, tiny_facts)
    inventory = cap.inventory_bits(TINY)
    assert inventory == pytest.approx(12 * sum(math.log2(len(VALUES[r])) for r in RELATIONS))
    if kind == "oracle":  # every fact known: the whole inventory
        assert probe["bits"] == pytest.approx(inventory, rel=1e-6) and probe["known"] == 1
    elif kind == "uniform":  # only the values' frequencies: nothing
        assert probe["bits"] == pytest.approx(0, abs=1e-6) and probe["known"] < 0.5
    else:  # confidently wrong: less than nothing
        assert probe["bits"] < -10 * len(tiny_facts) and probe["known"] == 0


@pytest.mark.slow  # 3.6-6.1 s on 2 shared cores (2026-12-04)
def test_a_run_is_reproducible_and_scored_against_the_true_floor(tok):
    row = cap.run_point("2x8", 1e-2, 0, tok, TINY)
    again = cap.run_point("2x8", 1e-2, 0, tok, TINY)
    for key in ("val_loss", "excess", "bits", "facts_known", "floor"):
        assert row[key] == again[key], key
    assert row["excess"] == pytest.approx(row["val_loss"] - row["floor"], abs=2e-5)
    assert row["steps"] == len(cap.capacity_data(0, tok, TINY)["train"]) // TINY.batch_size
    assert row["params"] == 1704 and row["params_all"] > row["params"]
    assert 0 < row["floor"] < row["val_loss"]


@pytest.mark.slow  # 5.4 s on 2 shared cores (2026-12-04)
def test_run_table_and_extend(tmp_path, tok):
    table = cap.run_table([("2x8", 1e-2, 0)], tok, TINY, log=None)
    assert table["recipe"] == dataclasses.asdict(TINY) and len(table["rows"]) == 1
    path = runner.save(table, tmp_path / "t.json")
    more = cap.run_table([("2x8", 1e-2, 0), ("2x8", 2e-2, 0)], tok, TINY, log=None)
    extended = runner.extend(cap.CAPACITY, cap.load_table(path, TINY), more)
    assert [(r["lr"]) for r in extended["rows"]] == [1e-2, 2e-2]  # the run it had is kept once
    with pytest.raises(ValueError, match="another recipe"):
        runner.extend(cap.CAPACITY, table, {**more, "recipe": {}})
    with pytest.raises(ValueError, match="another recipe"):
        cap.load_table(path)  # the default recipe is not TINY


def _entry(size, params, bits, excess=(0.1, 0.1, 0.1)):
    return {"size": size, "params": params, "params_all": params, "lr": 1e-2, "seeds": [0, 1, 2],
            "bits": list(bits), "excess": list(excess)}


GOOD = [_entry("a", 1_000, (300, 320, 310)), _entry("b", 4_000, (900, 950, 920)),
        _entry("c", 16_000, (2600, 2700, 2650)), _entry("d", 64_000, (5500, 5450, 5480))]


def test_claim_capacity_passes_bits_that_grow_with_parameters():
    result = claims.claim_capacity(GOOD, inventory=5566)
    assert [e["size"] for e in result["limited"]] == ["a", "b", "c"]
    assert result["bits_per_param"]["a"] == pytest.approx(0.31)
    assert result["clear_steps"] == [("a", "b"), ("b", "c"), ("c", "d")]
    onset = [GOOD[0], dict(GOOD[1], bits=[400, 1200, 2000]), *GOOD[2:]]  # seeds apart, in order
    assert claims.claim_capacity(onset, inventory=5566)["clear_steps"] == [("c", "d")]


def test_claim_capacity_fails_on_a_probe_blind_to_the_model():
    null = [dict(e, bits=[1000, 1010, 990]) for e in GOOD]
    with pytest.raises(AssertionError, match="bits stored by b"):
        claims.claim_capacity(null, inventory=5566)


def test_claim_capacity_fails_on_sizes_in_the_wrong_order_and_within_the_spread():
    swapped = [GOOD[1], GOOD[0], *GOOD[2:]]
    with pytest.raises(AssertionError, match="bits stored by a"):
        claims.claim_capacity(swapped, inventory=5566)
    noisy = [GOOD[0], dict(GOOD[1], bits=[200, 900, 1500]), *GOOD[2:]]  # a seed below a's
    with pytest.raises(AssertionError, match="overlap"):
        claims.claim_capacity(noisy, inventory=5566)


def test_claim_capacity_needs_a_slice_and_every_size_in_it_above_the_last():
    with pytest.raises(AssertionError, match="2 of the sizes"):
        claims.claim_capacity(GOOD, inventory=1500)  # a or b only: the inventory is too small
    for top in ([2000, 2000, 2000], [2650, 2700, 2600]):  # below c, or no more than c
        with pytest.raises(AssertionError, match="bits stored by d"):
            claims.claim_capacity([*GOOD[:3], dict(GOOD[3], bits=top)], inventory=5566)


def test_knowledge_excess_is_the_missing_bits_per_token():
    table = {"recipe": {"people": 10}, "inventory_bits": 174.0,
             "rows": [{"tokens_per_bio": 100.0}]}
    assert cap.knowledge_excess(174.0, table) == 0
    assert cap.knowledge_excess(0.0, table) == pytest.approx(17.4 * math.log(2) / 100)


def test_best_rates_and_at_best_read_the_mean_over_seeds():
    rows = [{"size": "2x8", "params": 1, "params_all": 2, "lr": lr, "seed": s, "val_loss": v,
             "bits": 1.0, "excess": 0.1, "facts_known": 0.5}
            for lr, s, v in [(1e-2, 0, 1.0), (1e-2, 1, 1.4), (2e-2, 0, 1.1), (2e-2, 1, 1.2)]]
    table = {"rows": rows}
    assert cap.best_rates(table) == {"2x8": 2e-2}
    (entry,) = cap.at_best(table)
    assert entry["lr"] == 2e-2 and entry["val_loss"] == [1.1, 1.2] and entry["seeds"] == [0, 1]


def test_best_rates_on_the_shipped_table_are_the_lowest_mean_not_the_one_std_rule():
    """The rule notebook 05 reads (``runner.best_rates``' "lowest"): 2x24's best rate is 1.2e-2,
    the rate its three seeds ran at; the one-std reading would pick 6e-3, run on one seed."""
    table = cap.load_table()
    assert cap.best_rates(table) == {"2x8": 2.4e-2, "2x16": 1.2e-2, "2x24": 1.2e-2,
                                     "2x32": 1.2e-2, "2x48": 1.2e-2}
    assert runner.best_rates(table["rows"], "size", "val_loss")["2x24"] == 6e-3
    assert [len(e["seeds"]) for e in cap.at_best(table)] == [3] * 5


def test_cli_refuses_bad_sizes_workers_and_a_missing_table(tmp_path, capsys):
    saved = tmp_path / "kept.json"
    saved.write_text(json.dumps({"recipe": {}, "rows": []}))
    before = saved.read_text()
    for argv, message in ((["--sizes", "2x7"], "width divisible by 8"),
                          (["--workers", "0"], "workers=0"),
                          (["--sizes", "pico", "--workers", "0"], "workers=0"),  # a family name
                          (["--seeds", "a"], "--seeds 'a'"),
                          (["--lrs", "0"], "--lrs '0' must be positive rates"),
                          (["--at-best", "--out", str(tmp_path / "none.json")], "No capacity"),
                          (["--extend", "--out", str(saved)], "another recipe"),
                          (["--exposures", "0"], "exposures=0 must be a positive whole number"),
                          (["--exposures", "-5"], "exposures=-5")):
        with pytest.raises(SystemExit) as stop:
            main(["experiment", "capacity", *argv] + ([] if "--out" in argv
                                                      else ["--out", str(saved)]))
        err = capsys.readouterr().err
        assert stop.value.code == 2 and message in err and len(err.splitlines()) == 1, argv
    assert saved.read_text() == before  # nothing saved is changed


def test_the_largest_size_is_predicted_and_the_null_predictors_are_not():
    """On the shipped table: the power law of the smaller sizes predicts the largest within
    15 %; the same check fails for the nearest size's excess and for the mean of the others."""
    result = predict_held_out(cap.at_best(cap.load_table()))
    assert result["size"] == "2x48" and result["slope"] < 0
    claims.claim_prediction(result["rel_err"])
    for null in ("null_nearest_rel_err", "null_mean_rel_err"):
        with pytest.raises(AssertionError, match="misses the measured excess"):
            claims.claim_prediction(result[null], what=null)


def test_a_flat_family_is_not_predicted_as_a_power_law():
    """A broken sweep (every size the same loss but the largest) fails the same check."""
    flat = [_entry(e["size"], e["params"], e["bits"], excess=(0.3, 0.3, 0.3)) for e in GOOD]
    flat[-1] = dict(flat[-1], excess=[0.1, 0.1, 0.1])
    result = predict_held_out(flat)
    with pytest.raises(AssertionError):
        claims.claim_prediction(result["rel_err"])
    with pytest.raises(ValueError, match="needs two"):
        predict_held_out(flat, held=1)


def test_prepared_data_is_kept_per_seed_and_tokenizer(tok):
    from llmup_lib.core.tokenizer import char_tokenizer

    first = cap.capacity_data(0, tok, TINY)
    assert cap.capacity_data(0, tok, TINY) is first  # the seed's next run reuses it
    chars = char_tokenizer(["abcdefghijklmnopqrstuvwxyz .,ABCDEFGHIJKLMNOPQRSTUVWXYZ"])
    other = cap.capacity_data(0, chars, TINY)
    assert other is not first and other["train"].numel() != first["train"].numel()


def test_an_exposure_count_has_its_own_recipe_and_table():
    """05b's exposure sweep: another count of biographies per person is another recipe (so a
    table made at 200 is refused for 50) and is written to a table of its own."""
    assert cap.exposure_recipe() is cap.RECIPE and cap.table_path() == cap.DATA_DIR / "cpu.json"
    fifty = cap.exposure_recipe(50)
    assert fifty.exposures == 50 and fifty.people == cap.RECIPE.people
    assert cap.table_path(exposures=50) == cap.DATA_DIR / "cpu_e50.json"
    assert cap.table_path(exposures=200) == cap.table_path()
    with pytest.raises(ValueError, match="another recipe"):
        cap.load_table(cap.table_path(), fifty)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="positive whole number"):
            cap.exposure_recipe(bad)


# ----------------------------------------------------------------------------- the Zipf world
ZIPF = cap.ZIPF_RECIPE
TINY_ZIPF = cap.CapacityRecipe(people=40, exposures=4, val_docs=16, context=64, batch_size=8,
                               zipf_exponent=1.5, probe_head=10, probe_tail=5)


def test_the_probe_asks_the_head_and_a_seeded_sample_of_the_tail():
    assert cap.probe_ranks(0, TINY) == list(range(1, 13))  # uniform: everyone
    ranks = cap.probe_ranks(0, ZIPF)
    assert ranks[:300] == list(range(1, 301)) and len(ranks) == 400 == len(set(ranks))
    assert all(300 < k <= 2000 for k in ranks[300:]) and ranks[300:] == sorted(ranks[300:])
    assert cap.probe_ranks(0, ZIPF) == ranks and cap.probe_ranks(1, ZIPF) != ranks


def test_probe_fields_scale_the_tail_sample_to_the_whole_tail():
    recipe = cap.CapacityRecipe(people=10, zipf_exponent=1.5, probe_head=2, probe_tail=2)
    facts = [{"rank": k} for k in (1, 2, 5, 9) for _ in range(4)]
    bits = [4.0] * 8 + [1.0] * 4 + [0.5] * 4  # head 16 each; tail persons 4 and 2 bits
    known = [True] * 8 + [False] * 8
    row = cap.probe_fields(facts, bits, known, recipe)
    assert row["head_bits"] == [16.0, 16.0] and row["tail_ranks"] == [5, 9]
    assert row["tail_bits"] == [4.0, 2.0]
    assert row["bits"] == pytest.approx(32 + 8 / 2 * 6)  # each sampled person stands for 4
    assert row["facts_known"] == pytest.approx(8 / 40)
    uniform = cap.probe_fields(facts, bits, known, TINY)
    assert uniform == {"bits": 38.0, "facts_known": 0.5}


def _zipf_row(head_bits, tail_bits, size="2x16", seed=0):
    tail = cap.probe_ranks(seed, ZIPF)[300:]
    return {"size": size, "seed": seed, "params": 1000, "excess": 0.2, "tokens_per_bio": 86.0,
            "head_bits": list(head_bits), "tail_ranks": tail, "tail_bits": [tail_bits] * len(tail)}


def test_a_model_that_knows_the_most_frequent_people_is_the_memory_exactly():
    """Known = the K most frequent people, all B bits; the rest at one level below zero (a
    guess leaning to the head's values): K is K, the memory's tail is the measured excess, and
    the frequency-blind null is far above it."""
    b = cap.person_bits()
    assert b == pytest.approx(sum(math.log2(len(VALUES[r])) for r in RELATIONS))
    for k in (5, 40, 120):
        row = _zipf_row([b] * k + [-6.0] * (300 - k), -6.0)
        prof = cap.knowledge_profile(row)
        assert prof["k"] == pytest.approx(k) and prof["unknown_bits"] == pytest.approx(-6.0)
        assert prof["known_share"] == pytest.approx([1.0] * k + [0.0] * (300 - k))
        assert prof["memory"] == pytest.approx(prof["measured"], rel=1e-9)
        assert prof["null"] > 3 * prof["measured"]
    knows_nothing = cap.knowledge_profile(_zipf_row([-6.0] * 300, -6.0))
    assert knows_nothing["k"] == pytest.approx(0)
    assert knows_nothing["measured"] == pytest.approx(knows_nothing["null"])
    assert knows_nothing["measured"] == pytest.approx((b + 6) * math.log(2) / 86.0)


def test_knowledge_that_ignores_frequency_is_far_from_the_memory():
    """The same 40 people's worth of facts, held for ranks 201-240 instead of 1-40: the
    measured excess is near the null's, and the memory misses it."""
    b = cap.person_bits()
    row = _zipf_row([-6.0] * 200 + [b] * 40 + [-6.0] * 60, -6.0)
    prof = cap.knowledge_profile(row)
    assert prof["k"] == pytest.approx(40)
    assert prof["measured"] == pytest.approx(prof["null"], rel=0.05)
    assert prof["memory"] < 0.5 * prof["measured"]


def _order_entry(size, measured, memory, null):
    return {"size": size, "measured": list(measured), "memory": list(memory), "null": list(null)}


def test_claim_frequency_order_passes_a_memory_like_family():
    entries = [_order_entry("a", (0.10, 0.11, 0.09), (0.08, 0.085, 0.075), (0.5, 0.5, 0.5)),
               _order_entry("b", (0.05, 0.05, 0.05), (0.04, 0.04, 0.04), (0.45, 0.45, 0.45))]
    out = claims.claim_frequency_order(entries)
    assert out["memory_rel_errs"] == pytest.approx([-0.2, -0.2])
    assert out["rms_memory"] == pytest.approx(0.2) and out["rms_null"] > 4


def test_claim_frequency_order_fails_on_frequency_blind_knowledge_and_a_wrong_prediction():
    blind = [_order_entry("a", (0.5, 0.5, 0.5), (0.08,) * 3, (0.5, 0.49, 0.51)),
             _order_entry("b", (0.45,) * 3, (0.04,) * 3, (0.45,) * 3)]
    with pytest.raises(AssertionError, match="at a the memory's prediction misses"):
        claims.claim_frequency_order(blind)
    near_null = [_order_entry("a", (0.1,) * 3, (0.08,) * 3, (0.13,) * 3),
                 _order_entry("b", (0.05,) * 3, (0.04,) * 3, (0.45,) * 3)]
    with pytest.raises(AssertionError, match="does not follow frequency"):
        claims.claim_frequency_order(near_null)
    with pytest.raises(AssertionError, match="at least 2"):
        claims.claim_frequency_order(near_null[:1])


def test_knowledge_profile_refuses_a_uniform_row():
    row = {"size": "2x8", "seed": 0, "params": 1, "excess": 0.1, "tokens_per_bio": 90.0}
    with pytest.raises(ValueError, match="Zipf table"):
        cap.knowledge_profile(row)
    with pytest.raises(ValueError, match="Zipf table"):
        cap.knowledge_profile(_zipf_row([0.0] * 300, 0.0), cap.RECIPE)


@pytest.mark.slow
def test_a_zipf_run_keeps_each_head_person_and_the_tail_sample(tok):
    row = cap.run_point("2x8", 1e-2, 0, tok, TINY_ZIPF)
    assert len(row["head_bits"]) == 10 and len(row["tail_ranks"]) == 5
    assert all(10 < k <= 40 for k in row["tail_ranks"])
    assert row["bits"] == pytest.approx(sum(row["head_bits"]) + 30 / 5 * sum(row["tail_bits"]),
                                        abs=0.2)
    assert cap.knowledge_profile(row, TINY_ZIPF)["measured"] > 0


def test_the_zipf_table_has_its_own_path_and_recipe(tmp_path, capsys):
    assert cap.table_path(zipf=True) == cap.DATA_DIR / "cpu_zipf.json"
    with pytest.raises(ValueError, match="another recipe"):
        cap.load_table(cap.table_path(), ZIPF)
    with pytest.raises(SystemExit):
        main(["experiment", "capacity", "--zipf", "--exposures", "50",
              "--out", str(tmp_path / "t.json")])
    err = capsys.readouterr().err
    assert "--exposures 50 and --zipf" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "t.json").exists()


def test_readings_by_rank_follow_the_zipf_weights():
    reads = cap.readings_by_rank()
    assert reads.sum() == pytest.approx(64_000) and len(reads) == 2000
    assert reads[0] == pytest.approx(24_925, rel=1e-3) and reads[24] == pytest.approx(199, rel=0.01)
    assert cap.readings_by_rank(TINY) == pytest.approx([6.0] * 12, rel=0.01)  # near-uniform


def test_the_shipped_zipf_table_has_interior_rates_three_seeds_and_its_head():
    """cpu_zipf.json as its README says: every size's best rate (seed 0) inside its grid, three
    seeds there, and every row with the 300 head people and 100 of the tail."""
    table = cap.load_table(cap.table_path(zipf=True), ZIPF)
    best = cap.best_rates(table)
    assert best == {"2x16": 2.4e-2, "2x24": 6e-3, "2x32": 6e-3, "2x48": 6e-3}
    for size, lr in best.items():
        rates = sorted({r["lr"] for r in table["rows"] if r["size"] == size and r["seed"] == 0})
        assert rates[0] < lr < rates[-1], size
    assert [e["seeds"] for e in cap.at_best(table)] == [[0, 1, 2]] * 4
    assert tuple(best) == cap.ZIPF_SIZES  # the CLI's default sizes under --zipf
    for row in table["rows"]:
        assert len(row["head_bits"]) == 300 and len(row["tail_bits"]) == 100
        assert row["tail_ranks"] == cap.probe_ranks(row["seed"], ZIPF)[300:]

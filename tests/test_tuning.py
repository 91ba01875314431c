"""Learning-rate sweeps: every (method, rate, seed) trained and scored, summarised over seeds,
the best rate picked, tables saved atomically and refused for another base model."""

import json

import pytest

from llmup_lib.core.profiles import get_profile
from llmup_lib.core.tokenizer import load_tokenizer
from llmup_lib.experiments.runner import extend, provenance, save, stamp
from llmup_lib.experiments.tuning import (DEFAULT_LORA_LR, TUNING, best_rate, load_tuning_table,
                                          parse_grid, seed_values, summary, tune, tuned_rates,
                                          validate_method)


@pytest.fixture(scope="module")
def tiny_profile():
    # a pico base model of its own (8 steps on 40 stories, cached under a temporary LLMUP_CACHE),
    # a 2-step fine-tuning recipe (base_steps // 4) on 30 notes
    return get_profile("cpu", base_size="pico", base_steps=8, n_general=40, n_domain=30, n_val=8)


@pytest.fixture(scope="module")
def table(tiny_profile, tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("LLMUP_CACHE", str(tmp_path_factory.mktemp("cache")))
    try:
        yield tune({"full": [1e-3, 3e-3], "lora-r2": [1e-2], "scratch": [3e-3]}, [0, 1],
                   tiny_profile, load_tokenizer(), log=None)
    finally:
        mp.undo()


@pytest.mark.slow  # 48, the table fixture s on 2 shared cores (2026-12-04)
def test_every_method_rate_and_seed_is_trained_and_scored(table):
    rows = table["rows"]
    assert len(rows) == (2 + 1 + 1) * 2
    assert {(r["method"], r["lr"], r["seed"]) for r in rows} == {
        (m, lr, s) for m, lrs in {"full": [1e-3, 3e-3], "lora-r2": [1e-2],
                                  "scratch": [3e-3]}.items() for lr in lrs for s in (0, 1)}
    for r in rows:
        assert r["domain_excess"] == pytest.approx(r["domain_loss"] - table["floor_nats"])
        assert 0 <= r["domain_facts"] <= 1 and 0 <= r["world_facts"] <= 1
        assert r["steps"] == 2


@pytest.mark.slow  # the table fixture s on 2 shared cores (2026-12-04)
def test_seeds_change_the_run_and_the_summary_spreads_them(table):
    full = [r for r in table["rows"] if r["method"] == "full" and r["lr"] == 1e-3]
    assert full[0]["domain_loss"] != full[1]["domain_loss"]  # another batch order
    s = summary(table)[("full", 1e-3)]
    assert s["n"] == 2
    assert s["domain_loss"] == pytest.approx((full[0]["domain_loss"] + full[1]["domain_loss"]) / 2)
    assert s["domain_loss_std"] > 0


@pytest.mark.slow  # the table fixture s on 2 shared cores (2026-12-04)
def test_best_rate_is_the_lowest_mean_or_the_gentlest_within_one_std(table):
    stats = {lr: s for (m, lr), s in summary(table).items() if m == "full"}
    lowest = min(stats, key=lambda lr: stats[lr]["domain_excess"])
    assert best_rate(table, "full", one_std=False) == lowest
    bar = stats[lowest]["domain_excess"] + stats[lowest]["domain_excess_std"]
    gentle = best_rate(table, "full")
    assert gentle <= lowest and stats[gentle]["domain_excess"] <= bar
    assert all(stats[lr]["domain_excess"] > bar for lr in stats if lr < gentle)
    # a made-up table: 1e-2 is best by a hair, 3e-3 within its spread, 1e-3 far off
    rows = [{"method": "full", "lr": lr, "seed": s, **dict.fromkeys(
        ("domain_loss", "domain_facts", "general_loss", "world_facts"), 0.0),
        "domain_excess": v + 0.01 * s} for lr, v in ((1e-3, 0.5), (3e-3, 0.09), (1e-2, 0.085))
        for s in (0, 1, 2)]
    with pytest.warns(UserWarning, match="highest of its grid"):  # 1e-2 ends the grid
        assert best_rate({"rows": rows}, "full") == 3e-3
        assert best_rate({"rows": rows}, "full", one_std=False) == 1e-2
    with pytest.raises(ValueError, match="no rows for 'lora-r8'"):
        best_rate(table, "lora-r8")


@pytest.mark.slow  # 6.7 s on 2 shared cores (2026-12-04)
def test_extending_a_table_adds_only_new_runs_and_records_the_command(table, tiny_profile):
    """``experiment tune --extend``: a rank added later joins the table; runs it already holds
    are skipped (the skip list) and never duplicated (runner.extend), and the command is kept."""
    done = {(r["method"], r["lr"], r["seed"]) for r in table["rows"]}
    more = tune({"full": [1e-3], "lora-r4": [1e-2]}, [0], tiny_profile, load_tokenizer(),
                log=None, skip=done)
    assert [(r["method"], r["lr"], r["seed"]) for r in more["rows"]] == [("lora-r4", 1e-2, 0)]
    more["rows"].append(table["rows"][0])  # a run the table holds already is not added twice
    command = "python -m llmup_lib experiment tune --grid lora-r4=1e-2 --extend"
    extended = extend(TUNING, stamp(table, "python -m llmup_lib experiment tune", 30), more,
                      command, 12)
    assert len(extended["rows"]) == len(table["rows"]) + 1
    assert [(e["command"], e["runs"], e["wall_seconds"]) for e in provenance(extended)] == [
        ("python -m llmup_lib experiment tune", len(table["rows"]), 30), (command, 1, 12)]
    assert {"machine", "cores", "date"} <= set(extended["extended_by"][0])
    assert best_rate(extended, "lora-r4") == 1e-2 and "extended_by" not in table
    with pytest.raises(ValueError, match="another recipe .recipe_key 'other', not .* write them "
                                         "to a table of their own"):
        extend(TUNING, table, {**more, "recipe_key": "other"}, "cmd", 1)


@pytest.mark.slow  # 13 s on 2 shared cores (2026-12-04)
def test_larger_method_fine_tunes_notebook_07s_larger_pretrained_model(tiny_profile):
    """``larger`` starts from the shipped larger base (whatever the profile's own base size),
    loaded once for all its runs; its default rate is that model's pretraining peak."""
    from llmup_lib.core.base import LARGER
    from llmup_lib.core.models import count_params
    from llmup_lib.experiments.tuning import make_model, tuning_data

    tok = load_tokenizer()
    data = tuning_data(tiny_profile, tok)
    model = make_model("larger", data, tiny_profile, seed=0)
    assert model.config.hidden_size == 192 and all(p.requires_grad for p in model.parameters())
    assert count_params(model)["total"] > 3 * count_params(data["base"])["total"]
    assert make_model("larger", data, tiny_profile, seed=1) is not data["larger"]  # a copy
    rates, table = tuned_rates(get_profile("gpu"), tok, methods=("larger",), log=None)
    assert table is None and rates == {"larger": LARGER["gpu"]["lr"]}


@pytest.mark.slow  # the table fixture s on 2 shared cores (2026-12-04)
def test_tables_round_trip_and_refuse_another_base(table, tiny_profile, tmp_path):
    path = save(table, tmp_path / "t.json")
    assert not list(tmp_path.glob(".tmp-*"))
    tok = load_tokenizer()
    assert load_tuning_table(tiny_profile, tok, path)["rows"] == table["rows"]
    with pytest.raises(ValueError, match="made with another recipe .recipe_key .*; remake it "
                                         "with `python -m llmup_lib experiment tune --task domain"):
        load_tuning_table(get_profile("cpu"), tok, path)
    with pytest.raises(ValueError, match="another recipe .task 'domain', not 'distill'"):
        load_tuning_table(tiny_profile, tok, path, task="distill")
    with pytest.raises(FileNotFoundError, match="python -m llmup_lib experiment tune"):
        load_tuning_table(tiny_profile, tok, tmp_path / "missing.json")
    # a table scored on packed blocks (before 2026-12-05: no "scoring" field) is refused
    packed = save({k: v for k, v in table.items() if k != "scoring"}, tmp_path / "packed.json")
    with pytest.raises(ValueError, match="scoring 'packed blocks', not 'whole documents'"):
        load_tuning_table(tiny_profile, tok, packed)
    with pytest.raises(ValueError, match="another recipe .steps None, not 30.*--steps 30"):
        load_tuning_table(tiny_profile, tok, path, steps=30)


@pytest.mark.slow  # 30 s on 2 shared cores (2026-12-05)
def test_a_step_budget_and_replay_run_the_same_in_worker_processes(tiny_profile, tmp_path):
    """``--steps N`` trains every run for N steps under a recipe that records N; ``full-replay``
    trains on the replay mix; ``--workers 2`` gives the same numbers as one process."""
    mp = pytest.MonkeyPatch()
    mp.setenv("LLMUP_CACHE", str(tmp_path))
    try:
        tok = load_tokenizer()
        grid = {"full": [1e-3], "full-replay": [1e-3]}
        here = tune(grid, [0], tiny_profile, tok, log=None, steps=3)
        there = tune(grid, [0], tiny_profile, tok, log=None, steps=3, workers=2)
    finally:
        mp.undo()
    assert here["steps"] == 3 and here["scoring"] == "whole documents"
    assert [r["steps"] for r in here["rows"]] == [3, 3]
    drop = lambda rows: [{k: v for k, v in r.items() if k != "train_seconds"} for r in rows]
    assert drop(here["rows"]) == drop(there["rows"])
    full, replay = here["rows"]
    assert full["domain_loss"] != replay["domain_loss"]  # replay saw other blocks


def test_shipped_table_matches_the_shipped_base_and_has_three_seeds():
    """The table notebooks 02 and 03 read: made for the shipped base, >= 3 rates and >= 3 seeds
    for each method."""
    from llmup_lib.experiments.tuning import tuning_table_path

    profile, tok = get_profile("cpu"), load_tokenizer()
    table = load_tuning_table(profile, tok)
    assert table["command"].startswith("python -m llmup_lib experiment tune")
    assert table["scoring"] == "whole documents"
    for method in ("full", "lora-r2", "scratch"):
        stats = {lr: s for (m, lr), s in summary(table).items() if m == method}
        assert len(stats) >= 3 and all(s["n"] >= 3 for s in stats.values()), method
    assert json.loads(tuning_table_path("cpu").read_text())["profile"] == "cpu"


@pytest.mark.parametrize("bad, message", [
    ("lora", "Unknown method 'lora'"), ("lora-r0", "Unknown method 'lora-r0'"),
    (3, "Unknown method 3"),
])
def test_unknown_methods_are_refused(bad, message):
    with pytest.raises(ValueError, match=message):
        validate_method(bad)


def test_step_budgets_name_their_own_table_and_bad_budgets_are_refused():
    from llmup_lib.experiments.tuning import tuning_recipe, tuning_table_path, validate_steps

    assert validate_method("full-replay") == "full-replay"
    assert tuning_table_path("cpu").name == "cpu_domain.json"
    assert tuning_table_path("cpu", "domain", 30).name == "cpu_domain_steps30.json"
    recipe = tuning_recipe(get_profile("cpu"), load_tokenizer(), steps=30)
    assert (recipe.steps, recipe.scoring) == (30, "whole documents")
    assert tuning_recipe(get_profile("cpu"), load_tokenizer(), "distill").scoring == "packed blocks"
    for bad in (0, -5, 2.5, True, "30"):
        with pytest.raises(ValueError, match=f"steps={bad!r} must be a positive whole number"):
            validate_steps(bad)
    with pytest.raises(ValueError, match="only the domain task runs at another step budget"):
        validate_steps(30, "distill")


def test_bad_grids_and_seeds_are_refused(tiny_profile):
    with pytest.raises(ValueError, match="must be positive numbers"):
        parse_grid(["full=0"])
    with pytest.raises(ValueError, match="is not METHOD=RATE"):
        parse_grid(["full=fast"])
    with pytest.raises(ValueError, match="must be positive numbers"):
        parse_grid(["full"])
    with pytest.raises(ValueError, match="seeds=\\[\\] must be one or more whole numbers"):
        tune({"full": [1e-3]}, [], tiny_profile, load_tokenizer(), log=None)


def test_tuned_rates_fall_back_to_the_defaults_without_a_table(tmp_path):
    """cpu reads its shipped table; gpu has none, and a cpu profile with another recipe does not
    match it: both get the defaults and one line naming the command that makes a table."""
    tok = load_tokenizer()
    rates, table = tuned_rates(get_profile("cpu"), tok, log=None)
    assert table is not None and rates["full"] == best_rate(table, "full")
    lines = []
    for profile in (get_profile("gpu"), get_profile("cpu", context=256)):
        rates, table = tuned_rates(profile, tok, log=lines.append)
        assert table is None
        assert rates == {"full": profile.lr, "lora-r2": DEFAULT_LORA_LR, "scratch": profile.lr}
    assert all("llmup_lib experiment tune" in line and "default rates" in line
               for line in lines)


def test_student_rates_come_from_the_distill_table_or_the_default():
    from llmup_lib.experiments.tuning import DEFAULT_STUDENT_LR

    tok = load_tokenizer()
    methods = ("scratch", "kd")
    rates, table = tuned_rates(get_profile("cpu"), tok, methods, log=None, task="distill")
    assert table is not None and table["task"] == "distill"
    assert rates == {m: best_rate(table, m) for m in methods}
    lines = []
    rates, table = tuned_rates(get_profile("gpu"), tok, methods, log=lines.append, task="distill")
    assert table is None and rates == dict.fromkeys(methods, DEFAULT_STUDENT_LR)
    assert "experiment tune --task distill" in lines[0]
    with pytest.raises(ValueError, match="Unknown distillation method 'lora-r2'"):
        tuned_rates(get_profile("cpu"), tok, ("lora-r2",), log=None, task="distill")


@pytest.mark.slow  # the table fixture s on 2 shared cores (2026-12-04)
def test_seed_values_are_one_per_seed_in_seed_order(table):
    values = seed_values(table, "full", 1e-3, "domain_loss")
    rows = sorted((r for r in table["rows"] if r["method"] == "full" and r["lr"] == 1e-3),
                  key=lambda r: r["seed"])
    assert values == [r["domain_loss"] for r in rows] and len(values) == 2
    with pytest.raises(ValueError, match="no runs of 'full' at lr=0.5"):
        seed_values(table, "full", 0.5, "domain_loss")


def test_shipped_instructions_table_tunes_every_arm_to_an_interior_rate():
    """Notebook 04's table: each arm over >= 4 rates spanning >= 10x, 3 seeds each, and its
    rate (chosen by trained-question error) strictly inside its grid, so no edge warning."""
    import warnings

    profile, tok = get_profile("cpu"), load_tokenizer()
    table = load_tuning_table(profile, tok, task="instructions")
    assert table["task"] == "instructions" and table["scoring"] == "exact sentence"
    for method in ("full", "lora-r8", "lora-r8-unmasked"):
        stats = {lr: s for (m, lr), s in summary(table).items() if m == method}
        rates = sorted(stats)
        assert len(rates) >= 4 and rates[-1] / rates[0] >= 10, method
        assert all(s["n"] >= 3 for s in stats.values()), method
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # an edge optimum warns: fail on it
            best = best_rate(table, method)
        assert rates[0] < best < rates[-1], method


def test_instruction_methods_are_their_own():
    assert validate_method("lora-r8-unmasked", "instructions") == "lora-r8-unmasked"
    with pytest.raises(ValueError, match="Unknown instruction-tuning method 'lora-r4'"):
        validate_method("lora-r4", "instructions")

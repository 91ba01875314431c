"""The Zipf associative memory (methods/zipf_memory.py, issue 26): the predicted exponents, the
exact excess, nested streams, rates trained side by side, its bad inputs, and the `zipf`
experiment's table (made with the tiny QUICK recipe, a second or two)."""

import dataclasses
import json
import math
import re

import numpy as np
import pytest
import torch

from llmup_lib.__main__ import main
from llmup_lib.experiments import runner
from llmup_lib.methods import zipf_memory as Z


@pytest.fixture(scope="module")
def world():
    return Z.make_world(1.5, 256, 8, seed=0)


@pytest.fixture(scope="module")
def quick_table():
    return Z.run_table(Z.QUICK, seeds=(0,), log=None)


# --------------------------------------------------------------------------- theory


def test_predicted_exponents_follow_the_derivation():
    e = Z.predicted_exponents(1.5)
    assert e["model"] == pytest.approx(0.5)
    assert e["data"] == pytest.approx(1 / 3)
    assert e["isoflop_width"] == pytest.approx(0.4)
    assert e["isoflop_loss"] == pytest.approx(0.2)
    # the optimum balances the two limits: n^-(a-1) = T^-(1-1/a) with T = C/n and n = C^w
    e = Z.predicted_exponents(1.8)
    w = e["isoflop_width"]
    assert w * e["model"] == pytest.approx((1 - w) * e["data"])
    assert e["isoflop_loss"] == pytest.approx(w * e["model"])


def test_finite_n_slopes_approach_the_predictions_as_n_grows():
    # widths well above 1 (at n = 4..16 the discrete tail's offset lowers the slope a few %)
    # and well below N (a truncated tail raises it)
    grid = [64, 128, 256]
    small = Z.finite_n_exponents(Z.make_world(1.5, 2**10, 2), grid, grid)
    large = Z.finite_n_exponents(Z.make_world(1.5, 2**18, 2), grid, grid)
    pred = Z.predicted_exponents(1.5)
    assert abs(large["model"] - pred["model"]) < abs(small["model"] - pred["model"])
    assert large["model"] == pytest.approx(pred["model"], rel=0.1)
    assert large["data"] == pytest.approx(pred["data"], rel=0.15)


# --------------------------------------------------------------------------- the world and excess


def test_world_is_normalised_with_known_entropy(world):
    assert world.p.sum() == pytest.approx(1.0)
    assert np.all(np.diff(world.p) < 0)
    np.testing.assert_allclose(world.q.sum(1), 1.0)
    h = -np.sum(world.q * np.log(world.q), axis=1)
    np.testing.assert_allclose(h, world.conditional_entropy)


def _brute_force_excess(world, emb, W) -> float:
    """Σ_x p(x) Σ_y q(y|x) log(q(y|x) / softmax(W e_x)_y), one number at a time."""
    total = 0.0
    for x in range(world.n_contexts):
        logits = [sum(float(W[v, k]) * float(emb[x, k]) for k in range(emb.shape[1]))
                  for v in range(world.vocab)]
        log_z = math.log(sum(math.exp(z) for z in logits))
        for v in range(world.vocab):
            q = world.q[x, v]
            total += world.p[x] * q * (math.log(q) - (logits[v] - log_z))
    return total


def test_the_exact_excess_equals_a_brute_force_sum(monkeypatch):
    world = Z.make_world(1.3, 5, 3, seed=1, eps=0.2)
    g = torch.Generator().manual_seed(0)
    emb = torch.randn(5, 2, generator=g, dtype=torch.float64)
    W = 2 * torch.randn(3, 2, generator=g, dtype=torch.float64)
    brute = _brute_force_excess(world, emb, W)
    assert brute > 0.05  # a random read-out is far from q: the comparison is not of zeros
    assert Z.excess_loss(world, emb, W) == pytest.approx(brute, rel=1e-12)
    monkeypatch.setattr(Z, "_SLICE", 4)  # two contexts a slice: the slicing adds up the same
    assert Z.excess_loss(world, emb, W) == pytest.approx(brute, rel=1e-12)
    heads = torch.stack([W, torch.zeros_like(W)])
    assert Z.excess_losses(world, emb, heads)[0] == pytest.approx(brute, rel=1e-12)


def test_excess_is_zero_for_the_true_conditionals_and_positive_otherwise(world):
    emb = torch.eye(world.n_contexts, dtype=torch.float64)  # width N: W can output q exactly
    W = torch.as_tensor(np.log(world.q).T)
    assert Z.excess_loss(world, emb, W) == pytest.approx(0.0, abs=1e-10)
    assert Z.excess_from_log_probs(world, np.log(world.q)) == pytest.approx(0.0, abs=1e-12)
    assert Z.excess_loss(world, emb, torch.zeros_like(W)) > 0.1  # the uniform model
    nudged = W + 0.1 * torch.randn(W.shape, generator=torch.Generator().manual_seed(0),
                                   dtype=W.dtype)
    assert Z.excess_loss(world, emb, nudged) > 1e-4


# --------------------------------------------------------------------------- data and training


def test_streams_are_nested_and_follow_the_frequencies(world):
    x_short, y_short = Z.sample_stream(world, 1000, seed=3)
    x_long, y_long = Z.sample_stream(world, 5000, seed=3)
    np.testing.assert_array_equal(x_short, x_long[:1000])
    np.testing.assert_array_equal(y_short, y_long[:1000])
    x_other, _ = Z.sample_stream(world, 1000, seed=4)
    assert not np.array_equal(x_short, x_other)
    assert np.mean(x_long == 0) == pytest.approx(world.p[0], abs=0.03)
    peak = world.q.argmax(1)
    assert np.mean(y_long == peak[x_long]) == pytest.approx(world.q.max(1)[0], abs=0.02)


def test_rates_trained_side_by_side_equal_separate_runs(world):
    heads = Z.train_heads(Z.make_embeddings(world.n_contexts, 16, 2),
                          *Z.sample_stream(world, 600, 2), world.vocab, [0.5, 8.0])
    for lr, head in zip([0.5, 8.0], heads):
        W, _ = Z.train_memory(world, 16, 600, lr, seed=2)
        torch.testing.assert_close(head, W, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(heads[0], heads[1])  # the rates did differ


def test_a_tiny_training_run_lowers_the_excess(world):
    W, emb = Z.train_memory(world, 32, 4096, lr=8.0)
    before = Z.excess_loss(world, emb, torch.zeros_like(W))
    assert Z.excess_loss(world, emb, W) < 0.7 * before


def test_pick_rate_keeps_the_lowest_mean_and_flags_an_edge(world):
    pick = Z.pick_rate((1, 2, 4), [[0.5, 0.3, 0.4], [0.5, 0.5, 0.2]])  # means .5, .4, .3
    assert pick["lr"] == 4.0 and pick["at_edge"] and pick["excess"] == pytest.approx(0.3)
    assert pick["excess_by_seed"] == [0.4, 0.2]
    inside = Z.pick_rate((1, 2, 4), [[0.5, 0.3, 0.4]])
    assert inside["lr"] == 2.0 and not inside["at_edge"]
    assert Z.pick_rate((1, 2, 4), [[0.5, float("nan"), 0.4]])["lr"] == 4.0  # NaN never wins
    far_too_small = Z.tune_lr(world, 16, 512, rates=(0.01, 0.02, 0.04))
    assert far_too_small["lr"] == 0.04 and far_too_small["at_edge"]


def test_measure_exponent_recovers_a_known_slope_and_not_a_flat_curve():
    x = np.array([8, 16, 32, 64, 128])
    rng = np.random.default_rng(0)
    fit = Z.measure_exponent(x, 3.0 * x ** -0.5 * np.exp(rng.normal(0, 0.01, len(x))))
    assert fit["exponent"] == pytest.approx(0.5, rel=0.05) and fit["r2"] > 0.99
    flat = Z.measure_exponent(x, 0.3 * np.exp(rng.normal(0, 0.01, len(x))))
    assert abs(flat["exponent"]) < 0.05  # a null curve: nowhere near the law


# --------------------------------------------------------------------------- bad inputs


def _one_sentence(message: str) -> bool:
    return len(re.findall(r"[.!?](\s|$)", message.replace("e.g.", "eg"))) == 1


BAD = [
    ("a-one", lambda: Z.make_world(1.0, 10, 4), "a=1.0"),
    ("a-below-one", lambda: Z.predicted_exponents(0.7), "a=0.7"),
    ("a-nan", lambda: Z.predicted_exponents(float("nan")), "a=nan"),
    ("a-inf", lambda: Z.make_world(float("inf"), 10, 4), "a=inf"),
    ("a-text", lambda: Z.predicted_exponents("1.5"), "a='1.5'"),
    ("a-in-recipe", lambda: Z.ZipfRecipe(exponents=(1.5, 1.0)), "a=1.0"),
    ("width-zero", lambda: Z.make_embeddings(10, 0), "width=0"),
    ("width-negative", lambda: Z.train_memory(Z.make_world(1.5, 10, 4), -3, 64, 1.0),
     "width=-3"),
    ("width-fraction", lambda: Z.make_embeddings(10, 2.5), "width=2.5"),
    ("width-float", lambda: Z.make_embeddings(10, 4.0), "width=4.0"),
    ("width-bool", lambda: Z.make_embeddings(10, True), "width=True"),
    ("tokens-zero", lambda: Z.sample_stream(Z.make_world(1.5, 10, 4), 0), "tokens=0"),
    ("tokens-negative", lambda: Z.train_memory(Z.make_world(1.5, 10, 4), 8, -5, 1.0),
     "tokens=-5"),
    ("tokens-fraction", lambda: Z.sample_stream(Z.make_world(1.5, 10, 4), 100.5),
     "tokens=100.5"),
    ("widths-grid-zero", lambda: Z.ZipfRecipe(widths=(0, 4, 8, 16)), "holds 0"),
    ("widths-grid-fraction", lambda: Z.ZipfRecipe(widths=(4, 8, 16.5)), "holds 16.5"),
    ("tokens-grid-negative", lambda: Z.ZipfRecipe(tokens=(1024, -2048, 4096)), "holds -2048"),
    ("two-widths", lambda: Z.ZipfRecipe(widths=(8, 16)), "widths=[8, 16] holds 2 distinct"),
    ("repeated-widths", lambda: Z.ZipfRecipe(widths=(8, 8, 16)), "holds 2 distinct"),
    ("two-token-budgets", lambda: Z.ZipfRecipe(tokens=(1024, 2048)), "tokens=[1024, 2048]"),
    ("two-isoflop-budgets", lambda: Z.ZipfRecipe(isoflop_budgets=(65536, 262144)),
     "isoflop_budgets=[65536, 262144]"),
    ("slope-of-two-widths", lambda: Z.finite_n_exponents(Z.make_world(1.5, 10, 4), [4, 8],
                                                         [10, 20, 40]), "widths=[4, 8]"),
    ("budget-without-three-widths", lambda: Z.ZipfRecipe(isoflop_budgets=(1 << 16, 1 << 18,
                                                                           1 << 20, 1 << 30)),
     "budget 1073741824"),
    ("two-rates", lambda: Z.ZipfRecipe(tokens_rates=(4.0, 8.0)), "tokens_rates=[4.0, 8.0]"),
    ("rate-zero", lambda: Z.tune_lr(Z.make_world(1.5, 10, 4), 4, 64, rates=(0, 1, 2)),
     "rates=[0, 1, 2]"),
    ("eps", lambda: Z.make_world(1.5, 10, 4, eps=1.0), "eps=1.0"),
    ("seeds-repeated", lambda: Z.validate_seeds([0, 0]), "seeds=[0, 0]"),
    ("optimizer", lambda: Z.ZipfRecipe(optimizer="adam"), "'adam'"),
]


@pytest.mark.parametrize("call, words", [(c, w) for _, c, w in BAD], ids=[i for i, _, _ in BAD])
def test_a_bad_input_is_one_sentence_naming_the_value_and_the_fix(call, words):
    with pytest.raises(ValueError) as err:
        call()
    message = str(err.value)
    assert words in message, message
    assert ("pass" in message or "use one of" in message) and _one_sentence(message), message


def test_the_sentence_check_can_fail():
    assert not _one_sentence("Bad width. Pass e.g. 8.")
    assert _one_sentence("width=0 must be a positive whole number; pass e.g. width=64.")


# --------------------------------------------------------------------------- the recipe and table


def test_a_recipe_is_normalised_and_its_cells_cover_three_axes():
    recipe = dataclasses.replace(Z.QUICK, widths=[8, 2, 4, 4])
    assert recipe.widths == (2, 4, 8) and recipe == dataclasses.replace(Z.QUICK, widths=(2, 4, 8))
    cells = Z.cells(Z.QUICK)
    cost = [c[3] * (1 + c[2] / 512) for c in cells]
    assert cost == sorted(cost, reverse=True)  # the slowest first
    for a in Z.QUICK.exponents:
        mine = [c for c in cells if c[0] == a]
        assert sorted(c[2] for c in mine if c[1] == "widths") == list(Z.QUICK.widths)
        assert sorted(c[3] for c in mine if c[1] == "tokens") == list(Z.QUICK.tokens)
        for budget in Z.QUICK.isoflop_budgets:
            at = [c for c in mine if c[1] == "isoflop" and c[4] == budget]
            assert len(at) >= 3 and all(16 <= c[3] <= 512 and c[2] * c[3] == budget for c in at)
    # a budget that a width does not divide: its cells keep the budget, not width x tokens
    odd = dataclasses.replace(Z.QUICK, isoflop_budgets=(300, 600, 1200, 2400))
    assert {c[4] for c in Z.cells(odd) if c[1] == "isoflop"} == {300, 600, 1200, 2400}
    assert len(Z.RECIPE.isoflop_budgets) >= 4 and Z.RECIPE.exponents == (1.2, 1.5, 1.8, 2.1)


def test_the_table_holds_a_tuned_cell_per_row(quick_table):
    rows, budgets = quick_table["rows"], Z.QUICK.isoflop_budgets
    assert len(rows) == len(Z.cells(Z.QUICK))
    assert {r["axis"] for r in rows} == set(Z.AXES)
    for r in rows:
        assert r["lr"] in r["rates"] and r["excess"] == min(r["excess_by_rate"]) > 0
        assert r["at_edge"] == (r["lr"] in (r["rates"][0], r["rates"][-1]))
        assert r["seeds"] == [0] and (r["compute"] == r["width"] * r["tokens"]
                                      or r["axis"] == "isoflop" and r["compute"] in budgets)
    assert [t["a"] for t in quick_table["theory"]] == list(Z.QUICK.exponents)
    # training helped: every cell beats the uniform model's excess, log V - entropy
    uniform = math.log(Z.QUICK.vocab) - Z.peaked_entropy(Z.QUICK.vocab, Z.QUICK.eps)
    assert max(r["excess"] for r in rows) < uniform


def test_a_table_round_trips_and_another_recipe_is_refused(quick_table, tmp_path):
    path = runner.save(runner.stamp(quick_table, "test", 0.0), tmp_path / "zipf.json")
    loaded = Z.load_table(path, Z.QUICK)
    assert loaded["rows"] == json.loads(json.dumps(quick_table["rows"]))
    assert loaded["recipe"] == Z.recipe_dict(Z.QUICK) and loaded["command"] == "test"
    with pytest.raises(ValueError, match=r"made with another recipe .*experiment zipf`\.$"):
        Z.load_table(path)  # the default recipe is not QUICK
    with pytest.raises(ValueError, match=r"another recipe \(vocab 4, not 5\).*zipf`\.$"):
        Z.load_table(path, dataclasses.replace(Z.QUICK, vocab=5))
    with pytest.raises(FileNotFoundError, match="experiment zipf --quick"):
        Z.load_table(tmp_path / "none.json", Z.QUICK)


def _power_law_table(model, data, width_exp, loss_exp) -> dict:
    """A made-up table whose cells follow exact power laws: excess = width^-model (widths),
    tokens^-data (tokens), and per budget a parabola in log width around C^width_exp whose
    bottom falls as C^-loss_exp."""
    rows = [{"a": 1.5, "axis": "widths", "width": n, "tokens": 1, "excess": n ** -model,
             "at_edge": False} for n in (4, 8, 16, 32)]
    rows += [{"a": 1.5, "axis": "tokens", "width": 1, "tokens": t, "excess": t ** -data,
              "at_edge": True} for t in (1024, 2048, 4096)]
    for c in (2**16, 2**18, 2**20, 2**22):
        best = c ** width_exp
        rows += [{"a": 1.5, "axis": "isoflop", "width": n, "tokens": c // n, "compute": c,
                  "excess": c ** -loss_exp + 1e-4 * math.log(n / best) ** 2, "at_edge": False}
                 for n in (8, 16, 32, 64, 128, 256, 512, 1024, 2048)]
    theory = [{"a": 1.5, **Z.predicted_exponents(1.5), "finite_n_model": 0.5,
               "finite_n_data": 0.35}]
    return {"rows": rows, "theory": theory}


def test_measured_exponents_read_the_laws_off_a_table():
    pred = Z.predicted_exponents(1.5)
    (m,) = Z.measured_exponents(_power_law_table(*pred.values()))
    for key, value in pred.items():  # the loss at the budget's best grid width, not its optimum
        assert m[key] == pytest.approx(value, rel=1e-3 if key == "isoflop_loss" else 1e-6), key
    assert m["interior"] == [True] * 4 and m["edge_cells"] == 3
    (flat,) = Z.measured_exponents(_power_law_table(0.0, 0.0, 0.0, 0.0))  # a null world
    assert all(abs(flat[k]) < 1e-6 for k in pred)
    assert flat["interior"][-1] is False  # the optimum at width 1 lies outside 8..2048


# --------------------------------------------------------------------------- the command line


@pytest.mark.parametrize("argv, message", [
    (["--seeds", "0,x"], "--seeds '0,x' must be comma-separated whole numbers"),
    (["--seeds", "1,1"], "seeds=[1, 1] must be distinct"),
    (["--seeds", "-1"], "seeds=[-1]"),
    (["--workers", "0"], "workers=0"),
    (["--workers", "x"], "argument --workers: invalid int value: 'x'"),
    (["--seeds", ""], "--seeds '' must be comma-separated whole numbers"),
    (["--workers", "99"], "workers=99 must be a whole number from 1"),
])
def test_the_cli_refuses_bad_options_in_one_line(argv, message, capsys, tmp_path):
    out = tmp_path / "t.json"
    with pytest.raises(SystemExit) as stop:
        main(["experiment", "zipf", *argv, "--out", str(out)])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and message in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not out.exists()  # refused before anything ran


def test_the_cli_quick_run_writes_a_table_with_provenance(tmp_path, capsys):
    out = tmp_path / "quick.json"
    main(["experiment", "zipf", "--quick", "--seeds", "0", "--out", str(out)])
    said = capsys.readouterr().out
    assert f"to {out}" in said and "a=1.5: model" in said and "(predicted 0.500)" in said
    table = Z.load_table(out, Z.QUICK)
    assert table["command"].endswith(f"experiment zipf --quick --seeds 0 --out {out}")
    assert table["runs"] == len(table["rows"]) == len(Z.cells(Z.QUICK))
    assert "zipf" in table["command"] and table["cores"] >= 1


@pytest.mark.slow  # spawns two worker processes: 4.5 s on 2 shared cores, load 4 (2026-12-05)
def test_workers_make_the_same_table_as_one_process():
    small = dataclasses.replace(Z.QUICK, exponents=(1.5,))
    here = Z.run_table(small, seeds=(0,), log=None)
    there = Z.run_table(small, seeds=(0,), workers=2, log=None)
    assert [r["excess"] for r in there["rows"]] == pytest.approx([r["excess"] for r in
                                                                  here["rows"]], rel=1e-6)
    assert [r["lr"] for r in there["rows"]] == [r["lr"] for r in here["rows"]]


# --------------------------------------------------------------------------- composition


def _synthetic_rows(law, a=1.5):
    rows = []
    for n in (8, 16, 32, 64, 128, 256, 512, 1024, 2048):
        for t in (256, 1024, 4096, 16384, 65536, 1 << 18, 1 << 20):
            m, d = 2 * n ** -0.5, 3 * t ** (-1 / 3)
            rows.append({"a": a, "width": n, "tokens": t, "excess": law(m, d)})
    return rows


def test_composition_prefers_the_power_mean_when_the_limits_compose_as_a_max():
    out = Z.composition({"rows": _synthetic_rows(max)})[0]
    assert out["best"] == "power mean" and out["extrapolation"] >= 30
    best, additive = out["forms"]["power mean"], out["forms"]["additive"]
    assert best["held_out_rms_rel_err"] < 0.01 < additive["held_out_rms_rel_err"]
    assert best["alpha"] == pytest.approx(0.5, rel=0.02) and best["p"] > 10


def test_composition_does_not_favour_the_power_mean_when_the_limits_add():
    out = Z.composition({"rows": _synthetic_rows(lambda m, d: m + d)})[0]
    additive = out["forms"]["additive"]
    assert additive["held_out_rms_rel_err"] < 1e-3 and additive["beta"] == pytest.approx(1 / 3)
    # the power mean contains the sum (p = 1): it fits as well, and no better
    assert out["forms"]["power mean"]["p"] == pytest.approx(1.0, rel=0.05)


def test_composition_refuses_too_few_cells_and_unknown_forms():
    with pytest.raises(ValueError, match="needs at least 5 cells"):
        Z.fit_composition([8, 16], [256, 256], [0.5, 0.4], "additive")
    with pytest.raises(ValueError, match="Unknown composition form 'sum'"):
        Z.fit_composition([8] * 5, [256] * 5, [0.5] * 5, "sum")
    with pytest.raises(ValueError, match=r"No cell costs 30x the corner's dearest"):
        Z.composition_cells([{"width": 8, "tokens": 256, "excess": 1.0}], corner=1 << 18)


def test_explorer_text_applies_the_predicted_exponents():
    text = Z.explorer_text(1.5, 10)
    assert "excess x 0.316" in text  # 10^-(a-1)
    assert "excess x 0.464" in text  # 10^-(1-1/a)
    assert "width x 2.51" in text and "excess x 0.631" in text  # 10^(1/(1+a)), 10^-((a-1)/(1+a))
    with pytest.raises(ValueError, match="Zipf exponent a=1.0 must be a finite number > 1"):
        Z.explorer_text(1.0)
    with pytest.raises(ValueError, match="factor=0 must be a number > 0"):
        Z.explorer_text(1.5, 0)


def test_exponent_errors_fail_a_memory_that_does_not_learn():
    """The notebook's 10 % check reads ``worst``: a broken run (an excess that does not fall
    with width or tokens) gives exponents near 0, a relative error near 100 %."""
    def table(excess):
        rows = []
        for n in (4, 8, 16, 32):
            rows.append({"a": 1.5, "axis": "widths", "width": n, "tokens": 1 << 18,
                         "compute": n << 18, "excess": excess(n, 1 << 18)})
        for t in (1024, 2048, 4096, 8192):
            rows.append({"a": 1.5, "axis": "tokens", "width": 4096, "tokens": t,
                         "compute": 4096 * t, "excess": excess(4096, t)})
        for c in (1 << 16, 1 << 18, 1 << 20):
            for n in (8, 16, 32, 64, 128, 256):
                rows.append({"a": 1.5, "axis": "isoflop", "width": n, "tokens": c // n,
                             "compute": c, "excess": excess(n, c // n), "at_edge": False})
        for r in rows:
            r.setdefault("at_edge", False)
        theory = [{"a": 1.5, **Z.predicted_exponents(1.5), "finite_n_model": 0.5,
                   "finite_n_data": 1 / 3}]
        return {"rows": rows, "theory": theory}

    def law(n, t):  # the theory's own composition, exactly
        return max(n ** -0.5, 2 * t ** (-1 / 3))

    good = Z.exponent_errors(Z.measured_exponents(table(law)))[0]
    assert good["rel_err"]["model"] == pytest.approx(0, abs=0.01) and good["worst"] < 0.15
    flat = Z.exponent_errors(Z.measured_exponents(table(lambda n, t: 0.7)))[0]
    assert flat["worst"] > 0.9 and flat["rel_err"]["model"] == pytest.approx(-1, abs=0.01)


def test_the_shipped_table_is_the_recipe_s_grid_over_three_seeds():
    table = Z.load_table()  # refused if made under another recipe
    assert {(r["a"], r["axis"], r["width"], r["tokens"]) for r in table["rows"]} == {
        cell[:4] for cell in Z.cells(Z.RECIPE)}
    for r in table["rows"]:
        assert r["seeds"] == [0, 1, 2] and len(r["excess_by_seed"]) == 3
        rates = Z.rates_of(Z.RECIPE, r["axis"])
        assert r["rates"] == list(rates) and r["lr"] in rates
        assert r["excess"] == pytest.approx(min(r["excess_by_rate"]))
        assert r["at_edge"] == (r["lr"] in (rates[0], rates[-1]))
    for stored, now in zip(table["theory"], Z.theory(Z.RECIPE), strict=True):
        assert stored == pytest.approx(now)
    (made,) = runner.provenance(table)
    assert made["command"].endswith("experiment zipf --seeds 0,1,2 --workers 2")

"""Sweeps on every core and across machines: worker processes, shards and their merge, the
per-run peak memory, and the bad inputs of each."""

import json
import subprocess
import sys

import pytest

from llmup_lib.experiments import runner as R
from llmup_lib.experiments import sweep as W
from llmup_lib.experiments.sweep import (SweepRecipe, load_table, merge_tables, parse_shard, run_sweep, save_table, shard_points)
from llmup_lib.experiments.runner import validate_workers

# what depends on the machine's speed and load, not on the run
TIMING = ("train_seconds", "wall_seconds", "tokens_per_second", "peak_rss_mb", "peak_scope",
          "threads")


def _runs(rows):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


@pytest.fixture
def tiny(monkeypatch, tmp_path, char_tok, tiny_blocks):
    monkeypatch.setenv("LLMUP_CACHE", str(tmp_path / "cache"))
    recipe = SweepRecipe(context=32, batch_size=4, lr_ref=1e-2, width_ref=32, eval_blocks=8)
    points = [{"size": s, "tokens": 32 * 4 * 6} for s in ("2x16", "pico", "2x24")]
    return recipe, (char_tok, *tiny_blocks), points


def test_parse_shard_and_shard_points():
    assert parse_shard("2/3") == (2, 3) and parse_shard("1/1") == (1, 1)
    for bad in ("3/2", "0/2", "1/0", "a/b", "2", "1/2/3", None):
        with pytest.raises(ValueError, match=r"is not K/N with 1 <= K <= N; pass e\.g\. "
                                             r"--shard 1/2"):
            parse_shard(bad)
    points = [{"size": str(i), "tokens": 1} for i in range(7)]
    shards = [shard_points(points, f"{k}/3") for k in (1, 2, 3)]
    assert [[p["point_index"] for p in s] for s in shards] == [[0, 3, 6], [1, 4], [2, 5]]
    assert sorted(p["point_index"] for s in shards for p in s) == list(range(7))
    assert shard_points(points, (2, 3)) == shards[1]


def test_validate_workers_names_the_value_and_the_cores():
    cores = R.usable_cores()
    assert cores >= 1 and validate_workers(1) == 1 and validate_workers(cores) == cores
    for bad in (0, cores + 1, -1, 1.5, True):
        with pytest.raises(ValueError, match=rf"workers={bad!r} must be a whole number from 1 to "
                                             rf"the {cores} cores of this machine"):
            validate_workers(bad)


@pytest.mark.slow  # 47 s on 2 shared cores (2026-12-04)
def test_peak_rss_is_measured_and_resettable():
    """In a fresh process: one that has run other tests (2.3 GB of real-model weights, freed but
    still mapped) can serve 200 MB from memory that is already resident, so its peak would not
    move whatever the code under test does (seen under pytest-xdist)."""
    script = """
from llmup_lib.core.memory import process_peak_rss_mb, reset_peak_rss
resettable = reset_peak_rss()
before = process_peak_rss_mb()
big = bytearray(200 * 2**20)  # touch 200 MB
for i in range(0, len(big), 4096):
    big[i] = 1
during = process_peak_rss_mb()
del big
reset_peak_rss()
after = process_peak_rss_mb()
print(int(resettable), before, during, after)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120, check=True).stdout.split()
    resettable, before, during, after = bool(int(out[0])), *map(float, out[1:])
    assert before > 10  # python + torch
    if not resettable:  # no clear_refs: only that the mark never falls
        assert during >= before
        return
    assert during >= before + 150
    assert after < before + 100  # Linux: the high-water mark drops back to what is resident


def test_recipe_id_changes_with_the_recipe():
    assert W.recipe_id(SweepRecipe()) == W.recipe_id(SweepRecipe())
    assert W.recipe_id(SweepRecipe()) != W.recipe_id(SweepRecipe(batch_size=8))


def test_sharded_then_merged_sweep_equals_the_single_process_sweep(tiny, tmp_path):
    recipe, data, points = tiny
    single = run_sweep(points, recipe, data=data, cache=False, log=None)
    assert all(r["peak_scope"] == "run" and r["peak_rss_mb"] > 0 for r in single)
    parts = []
    for k in (1, 2):
        shard = [{**p, "shard": f"{k}/2"} for p in shard_points(points, f"{k}/2")]
        rows = run_sweep(shard, recipe, data=data, cache=False, log=None)
        parts.append(save_table(rows, tmp_path / f"part{k}.json"))
    assert [r["size"] for r in load_table(parts[0])] == ["2x16", "2x24"]
    merged = merge_tables(list(reversed(parts)), out=tmp_path / "all.json")
    assert _runs(merged) == _runs(single)  # same rows, same order, same numbers
    assert _runs(load_table(tmp_path / "all.json")) == _runs(single)
    with pytest.warns(UserWarning, match="merged 1 of 2 shards"):
        merge_tables(parts[:1])


@pytest.mark.slow  # 82 s on 2 shared cores (2026-12-04)
def test_workers_train_points_in_processes_of_their_own(tiny, monkeypatch, tmp_path):
    recipe, data, points = tiny
    inproc = run_sweep(points[:2], recipe, data=data, cache=False, log=None)
    monkeypatch.setattr(R, "usable_cores", lambda: 2)  # the test must not depend on the machine
    rows = run_sweep(points[:2], recipe, data=data, log=None, workers=2)
    assert _runs(rows) == _runs(inproc)  # one thread each here and there: the same numbers
    assert [r["threads"] for r in rows] == [1, 1] and all(r["peak_scope"] == "run" for r in rows)
    assert all(100 < r["peak_rss_mb"] < 4096 for r in rows)  # a process per run: its own peak
    # the parent wrote the workers' rows to the cache: a rerun trains nothing
    assert len(list((tmp_path / "cache" / "scaling").glob("*.json"))) == 2
    again = run_sweep(points[:2], recipe, data=data, log=None)
    assert [r["wall_seconds"] for r in again] == [r["wall_seconds"] for r in rows]


def test_merge_refuses_other_recipes_and_duplicates(tiny, tmp_path):
    recipe, data, points = tiny
    a = run_sweep(points[:1], recipe, data=data, log=None)
    other = SweepRecipe(context=32, batch_size=4, lr_ref=2e-2, width_ref=32, eval_blocks=8)
    b = run_sweep(points[1:2], other, data=data, log=None)
    pa, pb = save_table(a, tmp_path / "a.json"), save_table(b, tmp_path / "b.csv")
    with pytest.raises(ValueError, match=r"b.csv' was made with recipe '\w+' but '.*a.json' with "
                                         r"'\w+'; merge only the shards of one sweep command"):
        merge_tables([pa, pb], out=tmp_path / "out.json")
    assert not (tmp_path / "out.json").exists()
    with pytest.raises(ValueError, match="both hold the point 2x16 at 768 tokens"):
        merge_tables([pa, pa])
    with pytest.raises(ValueError, match="at least one table"):
        merge_tables([])


@pytest.mark.slow  # 6.7 s on 2 shared cores (2026-12-04)
def test_sweep_command_shards_and_merges(monkeypatch, tmp_path, capsys):
    from llmup_lib.__main__ import main

    monkeypatch.setenv("LLMUP_CACHE", str(tmp_path / "cache"))
    common = ["experiment", "sweep", "--sizes", "2x16,pico,2x24", "--tokens", "1024", "--context", "32",
              "--batch-size", "4"]
    main(common + ["--out", str(tmp_path / "single.json"), "--no-cache"])
    for k in (1, 2):
        main(common + ["--shard", f"{k}/2", "--out", str(tmp_path / f"s{k}.json"), "--no-cache"])
    assert [r["shard"] for r in load_table(tmp_path / "s2.json")] == ["2/2"]
    main(["experiment", "sweep", "merge", str(tmp_path / "s1.json"), str(tmp_path / "s2.json"), "--out",
          str(tmp_path / "merged.json")])
    assert "merged 2 tables, 3 runs" in capsys.readouterr().out
    assert _runs(load_table(tmp_path / "merged.json")) == _runs(load_table(tmp_path /
                                                                          "single.json"))
    merged = json.loads((tmp_path / "merged.json").read_text())
    assert [e["command"].split()[4:6] for e in R.provenance(merged)] == [
        ["sweep", "--sizes"], ["sweep", "--sizes"], ["sweep", "merge"]]  # the shards', the merge
    assert merged["recipe"]["context"] == 32
    for argv, needle in ([["--workers", "0"], "workers=0 must be a whole number from 1"],
                         [["--shard", "3/2"], "shard '3/2' is not K/N"],
                         [["stray"], "unexpected argument 'stray'"],
                         [["--sizes", "giant"], "Unknown size 'giant'"],
                         [["--profile", "tpu"], "Unknown profile 'tpu'"],
                         [["--flops", "big"], "--flops 'big' must be comma-separated numbers"],
                         [["--workers", "two"], "argument --workers: invalid int value"]):
        with pytest.raises(SystemExit) as stop:
            main(common + argv + ["--out", str(tmp_path / "never.json")])
        err = capsys.readouterr().err
        assert stop.value.code == 2 and needle in err and len(err.strip().splitlines()) == 1, err
        assert "Traceback" not in err
    assert not (tmp_path / "never.json").exists()


def test_tables_keep_the_recipe_id_in_csv_and_json(tiny, tmp_path):
    recipe, data, points = tiny
    rows = run_sweep(points[:1], recipe, data=data, log=None)
    for name in ("t.csv", "t.json"):
        assert load_table(save_table(rows, tmp_path / name))[0]["recipe_id"] == \
            W.recipe_id(recipe)
    json.loads((tmp_path / "t.json").read_text())


def test_a_tuned_sweep_point_trains_at_its_own_rate_and_seed(tiny):
    recipe, data, points = tiny
    base = {"size": "2x16", "tokens": points[0]["tokens"]}
    plain, at_rate, seeded = run_sweep([base, {**base, "lr": 3e-3}, {**base, "seed": 1}], recipe,
                                       data=data, log=None)
    assert plain["lr"] == recipe.lr(16) and plain["seed"] == recipe.seed
    assert at_rate["lr"] == 3e-3 and seeded["seed"] == 1
    # another rate or another initialisation is another run, and another cache entry
    assert len({plain["val_loss"], at_rate["val_loss"], seeded["val_loss"]}) == 3
    n = len(data[1])
    keys = {W._row_key(p, recipe, (2, 16, 2), n) for p in (base, {**base, "lr": 3e-3},
                                                           {**base, "seed": 1})}
    assert len(keys) == 3
    # a point without its own rate or seed keeps the key rows were cached under before
    from dataclasses import asdict

    from llmup_lib.store import digest
    assert W._row_key(base, recipe, (2, 16, 2), n) == digest(
        [asdict(recipe), [2, 16, 2], base["tokens"], n, 3], 16)


@pytest.mark.parametrize("bad, needle", [({"lr": 0}, "lr=0; a learning rate must be a number > 0"),
                                         ({"lr": "fast"}, "lr='fast'"),
                                         ({"seed": -1}, "seed=-1; a seed must be a whole number"),
                                         ({"seed": 1.5}, "seed=1.5")])
def test_a_sweep_point_with_a_bad_rate_or_seed_is_refused(tiny, bad, needle):
    recipe, data, points = tiny
    with pytest.raises(ValueError, match=needle):
        run_sweep([{**points[0], **bad}], recipe, data=data, log=None)


def test_lr_factors_and_seeds_expand_every_size():
    from llmup_lib.experiments.cli import _tuned_points

    recipe = SweepRecipe()  # lr = min(1.2e-2, 3e-3 * 128 / width)
    points = _tuned_points([{"size": "2x48", "tokens": 10}, {"size": "4x96", "tokens": 10}],
                           recipe, "0.5,1,2", "0,1")
    assert [(p["size"], p["lr"], p["seed"]) for p in points[:2]] == [("2x48", 0.004, 0),
                                                                    ("2x48", 0.004, 1)]
    assert sorted({p["lr"] for p in points if p["size"] == "4x96"}) == [0.002, 0.004, 0.008]
    assert _tuned_points([{"size": "2x48", "tokens": 10}], recipe, None, None) == [
        {"size": "2x48", "tokens": 10}]  # no flags: the rule's rate, the recipe's seed
    for factors, seeds, needle in (("0,1", None, "--lr-factors '0,1' must all be > 0"),
                                   ("fast", None, "--lr-factors 'fast' must be comma-separated"),
                                   (None, "0,0", "--seeds '0,0' must be distinct"),
                                   (None, "-1", "--seeds '-1' must be distinct whole numbers")):
        with pytest.raises(ValueError, match=needle):
            _tuned_points([{"size": "2x48", "tokens": 10}], recipe, factors, seeds)

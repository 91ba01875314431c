"""The one table runner every experiment uses: atomic saves, checked loads, extensions, the
best-rate rule, provenance and the worker settings."""

import json
from dataclasses import dataclass

import pytest

from llmup_lib.experiments import runner as R
from llmup_lib.store import DATA_DIR


@dataclass(frozen=True)
class Recipe:
    people: int = 3
    steps: int = 10


KIND = R.Kind("capacity", "toy", row_key=("size", "lr", "seed"), order=("seed", "lr"))


def _rows(*keys, value=1.0):
    return [{"size": s, "lr": lr, "seed": seed, "val_loss": value} for s, lr, seed in keys]


def test_a_table_holds_its_recipe_rows_and_one_provenance_scheme():
    table = R.new_table(KIND, Recipe(), _rows(("a", 1e-2, 0)), inventory=5.0)
    assert table == {"recipe": {"people": 3, "steps": 10}, "inventory": 5.0,
                     "rows": _rows(("a", 1e-2, 0))}
    made = R.stamp(table, "python -m llmup_lib experiment capacity --seeds 0", 12.4)
    assert {k: made[k] for k in ("command", "runs", "wall_seconds")} == {
        "command": "python -m llmup_lib experiment capacity --seeds 0", "runs": 1,
        "wall_seconds": 12}
    assert made["cores"] == R.usable_cores() and len(made["date"]) == 10 and made["machine"]
    assert R.provenance(made) == [{k: made[k] for k in R.PROVENANCE}]
    assert "command" not in table  # stamping returns a new table


def test_provenance_reads_every_shipped_form():
    """The shipped tables stay as they are: the distillation sweep's command + extended_by,
    capacity's made_by list; the domain sweep and the extraction table (both remade 2026-12-05)
    are in the one scheme, with their machine, cores and date."""
    distill = json.loads((DATA_DIR / "tuning" / "cpu_distill.json").read_text())
    assert [e["wall_seconds"] for e in R.provenance(distill)] == [1244, 422, 104]
    domain = json.loads((DATA_DIR / "tuning" / "cpu_domain.json").read_text())
    assert set(R.provenance(domain)[0]) == set(R.PROVENANCE)
    extraction = json.loads((DATA_DIR / "extraction" / "cpu.json").read_text())
    assert [e["command"].split()[3:5] for e in R.provenance(extraction)] == [
        ["experiment", "extraction"]]
    assert set(R.provenance(extraction)[0]) == set(R.PROVENANCE)
    capacity = json.loads((DATA_DIR / "capacity" / "cpu.json").read_text())
    assert [e["runs"] for e in R.provenance(capacity)] == [15, 1, 10]


def test_save_is_atomic_and_a_failed_save_leaves_the_old_table(tmp_path, monkeypatch):
    path = R.save({"recipe": None, "rows": []}, tmp_path / "t.json")
    before = path.read_bytes()
    with pytest.raises(TypeError):  # not JSON: nothing is written
        R.save({"rows": [object()]}, path)

    def full_disk(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("llmup_lib.store.os.replace", full_disk)
    with pytest.raises(OSError, match="No space left"):
        R.save({"recipe": None, "rows": _rows(("a", 1e-2, 0))}, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.json"]  # no temporary debris


def test_checked_load_refuses_missing_corrupt_and_another_recipe(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"No toy table at '.*none.json'; make it with "
                                                r"`python -m llmup_lib experiment capacity`"):
        R.load(KIND, tmp_path / "none.json", Recipe())
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_text('{"recipe": {"people": 3}, "rows": [')
    with pytest.raises(ValueError, match=r"The toy table '.*corrupt.json' is not valid JSON"):
        R.load(KIND, corrupt, Recipe())
    path = R.save(R.new_table(KIND, Recipe(steps=20), []), tmp_path / "t.json")
    with pytest.raises(ValueError) as err:
        R.load(KIND, path, Recipe())
    message = str(err.value)
    assert message.startswith(f"The toy table {str(path)!r} was made with another recipe "
                              "(steps 20, not 10); remake it with `python -m llmup_lib "
                              "experiment capacity`.")
    assert message.count(". ") == 0  # one sentence
    assert R.load(KIND, path, Recipe(steps=20))["recipe"] == {"people": 3, "steps": 20}
    assert R.load(KIND, path)["rows"] == []  # no recipe given: not checked
    listed = tmp_path / "list.json"
    listed.write_text("[]")
    with pytest.raises(ValueError, match="is not a toy table .it holds no rows"):
        R.load(KIND, listed, Recipe())


def test_extend_skips_runs_the_table_holds_and_keeps_every_command():
    table = R.stamp(R.new_table(KIND, Recipe(), _rows(("a", 1e-2, 1), ("a", 2e-2, 0))),
                    "first", 10)
    more = R.new_table(KIND, Recipe(), _rows(("a", 1e-2, 1), ("a", 1e-2, 0), value=9.0))
    out = R.extend(KIND, table, more, "second", 5)
    assert [(r["lr"], r["seed"], r["val_loss"]) for r in out["rows"]] == [
        (1e-2, 0, 9.0), (2e-2, 0, 1.0), (1e-2, 1, 1.0)]  # sorted; the held run kept as it was
    assert [(e["command"], e["runs"]) for e in R.provenance(out)] == [("first", 2), ("second", 1)]
    assert len(table["rows"]) == 2  # not changed in place
    with pytest.raises(ValueError, match=r"another recipe .steps 11, not 10. by these runs; "
                                         r"write them to a table of their own with --out"):
        R.extend(KIND, table, R.new_table(KIND, Recipe(steps=11), []))
    assert R.row_keys(KIND, out) == {("a", 1e-2, 0), ("a", 2e-2, 0), ("a", 1e-2, 1)}


def test_extend_brings_an_older_provenance_form_into_the_one_scheme():
    legacy = {"recipe": {"people": 3, "steps": 10}, "rows": [],
              "made_by": [{"command": "a", "runs": 1, "wall_seconds": 1},
                          {"command": "b", "runs": 2, "wall_seconds": 2}]}
    out = R.extend(KIND, legacy, R.new_table(KIND, Recipe(), _rows(("a", 1e-2, 0))), "c", 3)
    assert "made_by" not in out and out["command"] == "a"
    assert [e["command"] for e in out["extended_by"]] == ["b", "c"]


def test_best_rate_rule_one_std_takes_the_gentlest_rate_the_seeds_cannot_separate():
    # 1e-2 is best by a hair, 3e-3 within its spread, 1e-3 far off
    rows = [{"m": "x", "lr": lr, "seed": s, "loss": v + 0.01 * s}
            for lr, v in ((1e-3, 0.5), (3e-3, 0.09), (1e-2, 0.085)) for s in (0, 1, 2)]
    with pytest.warns(UserWarning, match="highest of its grid"):  # 1e-2 ends the grid
        assert R.best_rates(rows, "m", "loss") == {"x": 3e-3}
        assert R.best_rates(rows, "m", "loss", rule="lowest") == {"x": 1e-2}
    stats = R.rate_stats(rows, "m", "loss")["x"]
    assert stats[1e-2][2] == 3 and stats[1e-2][1] == pytest.approx(0.01)
    with pytest.raises(ValueError, match="Unknown best-rate rule 'median'"):
        R.best_rates(rows, "m", "loss", rule="median")


def test_each_caller_keeps_its_rule_and_its_rates_on_the_shipped_tables():
    """Tuning (notebooks 02, 03, 06, 07) reads the one-std rule, capacity (notebook 05) the
    lowest mean: the rates each notebook read before the runner, table by table."""
    from llmup_lib.experiments import capacity, tuning

    tables = {task: json.loads((DATA_DIR / "tuning" / f"cpu_{task}.json").read_text())
              for task in ("domain", "distill")}
    # the domain table scored on whole notes (2026-12-05): full's 3e-3 and 1e-2 are 0.008 apart,
    # beyond one seed deviation, so its best moved from 3e-3 (packed blocks) to 1e-2
    # (replay's grid spans its front, not its domain-only optimum: no best rate is read for it)
    expected = {"domain": {"full": 1e-2, "lora-r1": 3e-2, "lora-r2": 3e-2, "lora-r4": 3e-2,
                           "lora-r8": 1e-2, "lora-r16": 1e-2, "larger": 3e-3, "scratch": 3e-3},
                "distill": {"scratch": 1e-2, "kd": 1e-2, "kd-half": 3e-3, "kd-half-init": 1e-3,
                            "t4-with-t2": 1e-2, "t4-without-t2": 3e-3}}  # T² arms tuned 2026-12-04
    for task, rates in expected.items():
        assert {m: tuning.best_rate(tables[task], m) for m in rates} == rates, task
    assert tuning.best_rate(tables["domain"], "full", one_std=False) == 1e-2  # the rules agree
    assert capacity.best_rates(capacity.load_table())["2x24"] == 1.2e-2


def test_workers_and_threads_are_validated_before_anything_runs():
    cores = R.usable_cores()
    assert R.validate_workers(cores) == cores and R.validate_threads(2) == 2
    for bad in (0, cores + 1, 1.5, True, "2"):
        with pytest.raises(ValueError, match=rf"workers={bad!r} must be a whole number from 1 to "
                                             rf"the {cores} cores of this machine; pass e\.g\."):
            R.validate_workers(bad)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match=rf"threads={bad!r} must be a positive whole number"):
            R.validate_threads(bad)
    ran = []
    with pytest.raises(ValueError, match="workers=0"):
        R.run_points([(1,)], ran.append, ran.append, workers=0)
    with pytest.raises(ValueError, match="threads=-2"):
        R.run_points([(1,)], ran.append, ran.append, workers=1, threads=-2)
    assert ran == []


def test_run_points_in_process_returns_results_in_order_and_reports_each():
    seen = []
    out = R.run_points([(1, 2), (3, 4)], lambda a, b: a * b, done=lambda i, r: seen.append((i, r)))
    assert out == [2, 12] and seen == [(0, 2), (1, 12)]
    assert R.run_points([], None, workers=1) == []  # nothing to run: no process is started

"""The benchmark entry point, ``benchmarks/run_benchmarks.py``: ``--quick`` runs every section
and prints its table (a check that the code paths run, not a measurement), and the test-run row
reads pytest's own summary line. ``benchmarks/bench_timings.py`` holds the timing budgets the
tests no longer assert: it prints a table and exits 1 when a time is over its budget."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

HEADERS = [
    "## 2. Training speed by size",
    "## 3. Eager vs torch.compile",
    "| model | eager tokens/s | compiled tokens/s | compile (s) | compiled / eager |",
    "## 4. llmup train() vs transformers.Trainer",
    "## 5. Generation speed by size",
    "## 6. Sweep throughput by worker count",
    "| workers x threads | sweep tokens/s (median) | min - max | wall s (median) |",
    "_7. Test run: skipped; add `--tests`",
    "## 8. Timing budgets",
    "| name | what | budget (s) | measured (s) | within budget | detail |",
]
MACHINE = re.compile(r"^_.+, \d+ cores, torch \S+, \d+ threads, \d{4}-\d\d-\d\d_")


def _cells(out: str, first: str) -> list[str]:
    """The cells of the table row that starts with ``first``."""
    row = next(line for line in out.splitlines() if line.startswith(f"| {first} |"))
    return [cell.strip() for cell in row.strip().strip("|").split("|")]


def _number(cell: str) -> float:
    return float(cell.replace(",", "").removesuffix("x"))


@pytest.mark.slow  # 55-80 s on 2 busy cores: torch.compile (~30 s cold) and 4 worker processes
def test_quick_run_prints_every_table_with_its_machine_line():
    done = subprocess.run([sys.executable, "benchmarks/run_benchmarks.py", "--quick",
                           "--skip-notebooks"], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    for header in HEADERS:
        assert header in out, out
    lines = out.splitlines()
    for i, line in enumerate(lines):  # every section says where and when it was measured
        if line.startswith("## "):
            assert MACHINE.match(lines[i + 2]), lines[i + 2]

    _, eager, compiled, compile_s, ratio = _cells(out, "char 4x128 ctx64 b12")
    assert all(_number(c) > 0 for c in (eager, compiled, compile_s, ratio))
    for arm in ("2 x 1", "1 x 2"):
        _, tok_s, _, wall = _cells(out, arm)
        assert _number(tok_s) > 0 and _number(wall) > 0
    assert float(re.search(r"ratio 2 x 1 / 1 x 2: \*\*([\d.]+)x\*\*", out)[1]) > 0


@pytest.mark.slow  # 11 s on 2 shared cores (2026-12-04)
def test_test_run_row_has_wall_time_exit_status_and_pytest_summary(tmp_path):
    from run_benchmarks import tests_table

    (tmp_path / "test_two.py").write_text("def test_ok():\n    pass\n\n\n"
                                           "def test_no():\n    assert 0\n")
    out = tests_table([str(tmp_path / "test_two.py")])
    assert out.splitlines()[0] == "| command | wall (s) | exit status | pytest's summary |"
    _, wall, status, summary = _cells(out, f"`pytest {tmp_path / 'test_two.py'}`")
    assert _number(wall) >= 0 and status == "1"  # pytest's exit status: some tests failed
    assert re.fullmatch(r"1 failed, 1 passed in [\d.]+s", summary), summary


def _fake_budget(name, seconds, measured, detail="ok"):
    import bench_timings

    return bench_timings.Budget(name, f"fake {name}", seconds, lambda: (measured, detail))


def test_timing_budgets_table_and_exit_status(monkeypatch, capsys):
    import bench_timings

    fast, slow = _fake_budget("fast", 1.0, 0.2), _fake_budget("slow", 1.0, 3.0)
    rows = bench_timings.measure([fast, slow], log=None)
    assert [r.ok for r in rows] == [True, False]
    out = bench_timings.table(rows)
    assert out.splitlines()[0] == HEADERS[-1]
    assert _cells(out, "fast")[2:5] == ["1", "0.20", "yes"]
    assert _cells(out, "slow")[2:5] == ["1", "3.00", "**NO**"]
    # a wrong result is a failure whatever its time (the detail says so in bold)
    assert not bench_timings.measure([_fake_budget("bad", 9, 0.1, "**ran**")], log=None)[0].ok

    monkeypatch.setattr(bench_timings, "BUDGETS", [fast, slow])
    assert bench_timings.main(["--only", "fast"]) == 0
    assert bench_timings.main([]) == 1
    assert "over budget: slow" in capsys.readouterr().out
    assert bench_timings.main(["--scale", "4"]) == 0  # 3.0 s against 1 s x 4
    with pytest.raises(SystemExit, match="Unknown budget.*nope.*choose from fast, slow"):
        bench_timings.main(["--only", "nope"])


def test_every_timing_budget_is_documented_with_its_value():
    import bench_timings

    doc = (ROOT / "docs" / "benchmarks.md").read_text()
    for budget in bench_timings.BUDGETS:
        cells = _cells(doc, f"`{budget.name}`")
        assert _number(cells[-1].removesuffix(" s")) == budget.seconds, (budget.name, cells)
    assert len(bench_timings.BUDGETS) == len({b.name for b in bench_timings.BUDGETS})


def test_the_colab_cell_budget_runs_and_checks_what_it_times():
    import bench_timings

    (row,) = bench_timings.measure(bench_timings.select("colab-setup"), log=None)
    assert row.detail == "did nothing" and row.seconds >= 0

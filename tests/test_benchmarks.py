"""The benchmark entry point, ``benchmarks/run_benchmarks.py``: ``--quick`` runs every section
and prints its table (a check that the code paths run, not a measurement), and the test-run row
reads pytest's own summary line."""

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


def test_test_run_row_has_wall_time_exit_status_and_pytest_summary(tmp_path):
    from run_benchmarks import tests_table

    (tmp_path / "test_two.py").write_text("def test_ok():\n    pass\n\n\n"
                                           "def test_no():\n    assert 0\n")
    out = tests_table([str(tmp_path / "test_two.py")])
    assert out.splitlines()[0] == "| command | wall (s) | exit status | pytest's summary |"
    _, wall, status, summary = _cells(out, f"`pytest {tmp_path / 'test_two.py'}`")
    assert _number(wall) >= 0 and status == "1"  # pytest's exit status: some tests failed
    assert re.fullmatch(r"1 failed, 1 passed in [\d.]+s", summary), summary

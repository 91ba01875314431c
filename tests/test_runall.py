"""``python -m llmup_lib run-all`` on a tiny notebook folder: one passing, one failing notebook."""

import nbformat
import pytest

from llmup_lib.__main__ import main
from llmup_lib.runall import find_notebooks, key_result

KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}


def _notebook(path, cells):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = KERNELSPEC
    nb.cells = cells
    nbformat.write(nb, str(path))


@pytest.fixture
def folder(tmp_path):
    books = tmp_path / "nbs"
    books.mkdir()
    md, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell
    _notebook(books / "01_pass.ipynb", [
        md("# A passing notebook"),
        code("import os\nblock = bytearray(64 * 2**20)  # 64 MB: shows in the peak RSS\n"
             "print('profile', os.environ.get('LLMUP_PROFILE'))"),
        md("## 2 · Checks"),
        code("assert len(block) == 64 * 2**20\nprint('a detail')\n"
             "print('all checks passed (64 MB held)')"),
        md("## Summary"),
        code("print('not a check')\n"
             "from llmup_lib.teaching.results import record\nrecord('01_pass', held_mb=64, share=0.25)"),
    ])
    _notebook(books / "02_fail.ipynb", [
        code("print('KEY RESULT: loss 1.25')"),
        code("raise ValueError('boom: the model is wrong\\nsecond line')"),
        code("print('never runs')"),
    ])
    return books


@pytest.mark.slow  # 8.1 s on 2 shared cores (2026-12-04)
def test_run_all_table_and_exit_code(folder, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("LLMUP_RESULTS_DIR", raising=False)  # run-all's default: <out>/results
    out = tmp_path / "executed"
    with pytest.raises(SystemExit) as exit_:
        main(["run-all", "--notebooks", str(folder), "--out", str(out), "--profile", "cpu",
              "--timeout", "120"])
    assert exit_.value.code == 1  # one notebook failed
    table = capsys.readouterr().out
    rows = {line.split()[0]: line for line in table.splitlines()
            if line.startswith(("01_pass", "02_fail"))}
    passed, failed = rows["01_pass"], rows["02_fail"]
    assert passed.split()[1] == "ok"
    assert passed.endswith("all checks passed (64 MB held)")
    assert "failed: ValueError: boom: the model is wrong" in failed
    assert "second line" not in failed  # only the first line of the error
    assert failed.endswith("loss 1.25")  # a KEY RESULT line wins over the checks line
    # what the notebook recorded (LLMUP_RESULTS_DIR = <out>/results) is printed and kept
    assert "01_pass: held_mb=64, share=0.25" in table
    assert (out / "results" / "01_pass.json").exists()
    assert not (out / "results" / "02_fail.json").exists()
    # wall time and peak RSS columns: numbers; the 64 MB buffer shows in the kernel's peak
    fields = passed.split()
    seconds, peak_mb = float(fields[2]), float(fields[3])
    assert 0 < seconds < 60
    assert peak_mb > 64
    assert "1/2 ok, 1 failed" in table
    # executed copies, the failed one with its traceback and without the cell after it
    done = nbformat.read(str(out / "01_pass.ipynb"), as_version=4)
    assert "profile cpu" in done.cells[1].outputs[0]["text"]  # --profile reached the kernel
    bad = nbformat.read(str(out / "02_fail.ipynb"), as_version=4)
    assert bad.cells[1].outputs[-1]["output_type"] == "error"
    assert bad.cells[2].outputs == []


def test_only_selects_by_number_or_name(folder):
    assert [p.stem for p in find_notebooks(folder, "02")] == ["02_fail"]
    assert [p.stem for p in find_notebooks(folder, "01_pass, 02")] == ["01_pass", "02_fail"]
    assert [p.stem for p in find_notebooks(folder)] == ["01_pass", "02_fail"]
    with pytest.raises(ValueError, match="matches no notebook"):
        find_notebooks(folder, "07")


def test_bad_arguments_fail_with_a_message(folder, tmp_path):
    with pytest.raises(SystemExit, match="No notebook folder"):
        main(["run-all", "--notebooks", str(tmp_path / "missing")])
    with pytest.raises(SystemExit, match="matches no notebook"):
        main(["run-all", "--notebooks", str(folder), "--only", "09"])


def test_key_result_falls_back_to_empty():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("print(1)")]
    nb.cells[0].outputs = [nbformat.v4.new_output("stream", name="stdout", text="1\n")]
    assert key_result(nb) == ""  # no Checks heading, no KEY RESULT line


def test_the_suite_notebooks_have_a_key_result():
    """Every committed notebook's executed outputs give the table a key result."""
    for path in find_notebooks():
        assert key_result(nbformat.read(str(path), as_version=4)), path.name


def test_a_notebook_past_its_timeout_fails_and_the_run_goes_on(tmp_path):
    from llmup_lib.runall import run_notebook

    path = tmp_path / "03_slow.ipynb"
    _notebook(path, [nbformat.v4.new_code_cell("print('started')"),
                     nbformat.v4.new_code_cell("import time\ntime.sleep(60)")])
    run = run_notebook(path, tmp_path / "out", timeout=4)
    assert run.status == "failed: timeout: the notebook ran past 4 s"
    assert run.seconds < 60  # stopped at the limit, not after the 60 s sleep (no speed budget)
    assert (tmp_path / "out" / "03_slow.ipynb").exists()


@pytest.mark.slow  # 9.5 s on 2 shared cores (2026-12-04)
def test_widget_cells_do_not_stall_the_run(tmp_path):
    # nbclient#312: after a widget cell the execute_reply can go unseen until the cell's timeout.
    # Unpatched, 40 such cells stalled twice for the full 120 s (measured); each cell here would
    # stall for the notebook's whole 60 s, so one stall fails the run.
    from llmup_lib.runall import run_notebook

    code = nbformat.v4.new_code_cell
    cells = [code("import ipywidgets as w")]
    cells += [code(f"w.interactive(lambda x: print(2 * x), x=w.IntSlider(value={i}))")
              for i in range(60)]
    path = tmp_path / "04_widgets.ipynb"
    _notebook(path, cells)
    run = run_notebook(path, tmp_path / "out", timeout=60)
    assert run.ok, run.status  # its time (45 s budget): benchmarks/bench_timings.py


@pytest.mark.slow  # 30 s on 2 shared cores (2026-12-04)
def test_solutions_mode_fills_the_exercises_and_leaves_the_file_alone(tmp_path, capsys,
                                                                      monkeypatch):
    """`run-all --solutions`: the check that fails unanswered passes with the solution filled."""
    monkeypatch.delenv("LLMUP_RESULTS_DIR", raising=False)
    books = tmp_path / "nbs"
    books.mkdir()
    code = nbformat.v4.new_code_cell
    stub = "def lora_scale(alpha, rank):\n    # YOUR CODE HERE\n    raise NotImplementedError"
    _notebook(books / "03_exercise.ipynb", [
        code("from llmup_lib.exercises.grader import check"),
        code(stub, metadata={"tags": ["exercise"], "exercise_id": "03.lora_scale"}),
        code("assert check(lora_scale)\nprint('all checks passed')"),
    ])
    before = (books / "03_exercise.ipynb").read_text()
    args = ["run-all", "--notebooks", str(books), "--timeout", "120"]
    with pytest.raises(SystemExit) as exit_:  # unanswered: the check fails
        main(args + ["--out", str(tmp_path / "learner")])
    assert exit_.value.code == 1
    with pytest.raises(SystemExit) as exit_:
        main(args + ["--out", str(tmp_path / "teacher"), "--solutions"])
    assert exit_.value.code == 0, capsys.readouterr().out
    done = nbformat.read(str(tmp_path / "teacher" / "03_exercise.ipynb"), as_version=4)
    assert "alpha / rank" in done.cells[1].source
    assert "LoRA scale: correct!" in done.cells[2].outputs[0]["text"]
    assert (books / "03_exercise.ipynb").read_text() == before

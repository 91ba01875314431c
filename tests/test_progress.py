"""Progress bars leave one final text line in a saved notebook, not a widget's first frame."""
import nbformat
import pytest

from llmup_lib.core.progress import finish, progress


def test_terminal_bar_runs_and_finishes():
    bar = progress(range(3), total=3, desc="train")
    assert list(bar) == [0, 1, 2]
    finish(bar, "train: 3/3 steps")  # a terminal bar has no display handle: nothing to replace
    assert getattr(bar, "handle", None) is None


def test_disabled_bar_is_silent(capsys):
    bar = progress(range(2), total=2, desc="train", disable=True)
    assert list(bar) == [0, 1]
    finish(bar, "train: 2/2 steps")
    assert capsys.readouterr().err == ""


@pytest.mark.slow
def test_saved_notebook_keeps_the_final_line_not_the_widget():
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipywidgets")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        "from llmup_lib.core.progress import finish, progress\n"
        "bar = progress(range(5), total=5, desc='train')\n"
        "for step in bar:\n    pass\n"
        "finish(bar, 'train: 5/5 steps, train loss 1.000')")]
    nbclient.NotebookClient(nb, kernel_name="python3", timeout=120).execute()
    outputs = nb.cells[0].outputs
    assert [o.get("data") for o in outputs] == [{"text/plain": "train: 5/5 steps, train loss 1.000"}]

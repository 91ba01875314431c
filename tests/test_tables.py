"""Tables a rendered notebook shows as tables: HTML in Jupyter, fixed columns as the fallback."""
import nbformat
import pytest

from llmup_lib.teaching.tables import format_table, html_table, plain_table, show_table

ROWS = [{"method": "full fine-tuning", "lr": 3e-3, "domain excess": 0.0871, "seeds": 3},
        {"method": "LoRA r=4", "lr": 3e-2, "domain excess": 0.4123, "seeds": 3, "note": "<edge>"}]


def test_columns_in_first_seen_order_and_cells_formatted():
    columns, cells = format_table(ROWS, formats={"domain excess": ".3f", "lr": "g"})
    assert columns == ["method", "lr", "domain excess", "seeds", "note"]
    assert cells[0] == ["full fine-tuning", "0.003", "0.087", "3", ""]
    assert cells[1][2] == "0.412"


def test_plain_text_aligns_names_left_and_numbers_right():
    text = plain_table(*format_table(ROWS, formats={"domain excess": ".3f"}))
    lines = text.splitlines()
    assert lines[1].startswith("full fine-tuning") and lines[2].startswith("LoRA r=4")
    # right-aligned: the numbers' last digits line up under the header's last letter
    assert lines[0].index("excess") + len("excess") == lines[1].index("0.087") + len("0.087")


def test_html_escapes_and_keeps_every_cell():
    out = html_table(*format_table(ROWS), title="a & b")
    assert "&lt;edge&gt;" in out and "<caption>a &amp; b</caption>" in out
    assert out.count("<tr>") == 3 and out.count("<th>") == 5


def test_outside_a_kernel_the_text_is_printed(capsys):
    assert show_table(ROWS[:1], formats={"lr": "g"}, title="best rates") is None
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "best rates" and lines[2].split()[:2] == ["full", "fine-tuning"]


def test_no_rows_is_one_clear_sentence():
    with pytest.raises(ValueError, match="no rows"):
        show_table([])


@pytest.mark.slow
def test_a_saved_notebook_holds_the_html_table_and_its_text():
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        "from llmup_lib.teaching.tables import show_table\n"
        "show_table([{'method': 'full', 'loss': 0.303}], formats={'loss': '.3f'})")]
    nbclient.NotebookClient(nb, kernel_name="python3", timeout=120).execute()
    (out,) = nb.cells[0].outputs  # the table alone: no echo of a returned value
    assert out["output_type"] == "display_data"
    assert "<td style=\"text-align:right\">0.303</td>" in out["data"]["text/html"]
    assert out["data"]["text/plain"].splitlines()[1].split() == ["full", "0.303"]

"""Tables that a rendered notebook shows as tables.

A table printed with padded f-strings reads as a table only in a monospaced font and only while
its lines fit the page. ``show_table`` displays the same rows as an HTML table in Jupyter (and
so on GitHub, nbviewer and in JupyterLab), with the fixed-column text as the fallback that a
terminal, a text diff or a plain-text render shows.

    show_table([{"method": "full", "lr": 3e-3, "domain excess": 0.087}, ...],
               formats={"lr": "g", "domain excess": ".3f"})
"""
from __future__ import annotations

import html
import numbers


def _cell(value, spec: str | None) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, bool) or not isinstance(value, numbers.Number):
        return str(value)  # text passes through a column's number format
    if spec is not None:
        return format(value, spec)
    if isinstance(value, numbers.Integral):
        return f"{value:,}"
    return f"{value:.4g}"


def format_table(rows: list[dict], formats: dict[str, str] | None = None) -> tuple[list[str], list[list[str]]]:
    """The column names (in first-seen order) and every row's cells as text."""
    if not rows:
        raise ValueError("show_table got no rows; pass a list with at least one dict.")
    formats = formats or {}
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    return columns, [[_cell(row.get(c), formats.get(c)) for c in columns] for row in rows]


def plain_table(columns: list[str], cells: list[list[str]]) -> str:
    """Fixed columns: the first left-aligned (the row's name), the rest right-aligned."""
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]

    def line(values):
        return "  ".join(v.ljust(w) if i == 0 else v.rjust(w)
                         for i, (v, w) in enumerate(zip(values, widths))).rstrip()

    return "\n".join([line(columns)] + [line(row) for row in cells])


def html_table(columns: list[str], cells: list[list[str]], title: str | None = None) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(
        f'<td style="text-align:{"left" if i == 0 else "right"}">{html.escape(v)}</td>'
        for i, v in enumerate(row)) + "</tr>" for row in cells)
    caption = f"<caption>{html.escape(title)}</caption>" if title else ""
    return f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _in_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and hasattr(shell, "kernel")


def show_table(rows: list[dict], formats: dict[str, str] | None = None,
               title: str | None = None) -> None:
    """Display ``rows`` (one dict per row, the keys are the columns) as a table.

    ``formats`` maps a column to a format spec (``".3f"``, ``".0%"``, ``"g"``, ``","``); other
    numbers get 4 significant digits, integers thousands separators. In a Jupyter kernel the
    table is displayed as HTML with its text as the plain fallback; elsewhere the text is printed.
    Returns None, so a call that ends a cell leaves no second copy of the table behind it.
    """
    columns, cells = format_table(rows, formats)
    text = plain_table(columns, cells)
    if title:
        text = f"{title}\n{text}"
    if _in_kernel():
        from IPython.display import display

        display({"text/html": html_table(columns, cells, title), "text/plain": text}, raw=True)
    else:
        print(text)

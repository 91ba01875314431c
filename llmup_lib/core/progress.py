"""Progress bars that leave one line of text behind.

In a notebook, tqdm draws a widget. A notebook saved after it ran keeps that widget's first
frame as plain text ("train:   0%|  | 0/400"), and that is what a reader of the rendered notebook
sees. ``progress`` shows the live widget while the loop runs, then ``finish`` replaces it in
place (an IPython display update) with one final text line, so the saved output says what
happened. In a terminal it is tqdm as usual.

    bar = progress(range(steps), total=steps, desc="train")
    for step in bar:
        ...
    finish(bar, f"train: {steps}/{steps} steps, train loss {loss:.3f}")
"""
from __future__ import annotations

from tqdm.auto import tqdm


def _in_notebook() -> bool:
    """True when tqdm.auto chose the notebook widget (a Jupyter kernel with ipywidgets)."""
    try:
        from tqdm.notebook import tqdm_notebook
    except ImportError:  # no ipywidgets
        return False
    return issubclass(tqdm, tqdm_notebook)


def progress(iterable, *, total: int, desc: str, initial: int = 0, disable: bool = False):
    """A tqdm bar over ``iterable``; in a notebook, one that ``finish`` can turn into text."""
    if disable or not _in_notebook():
        return tqdm(iterable, total=total, initial=initial, desc=desc, disable=disable)
    from IPython.display import display

    bar = tqdm(iterable, total=total, initial=initial, desc=desc, display=False)
    bar.handle = display(bar.container, display_id=True)  # the output finish() replaces
    return bar


def finish(bar, line: str) -> None:
    """Close ``bar``; in a notebook, replace its widget with ``line`` (plain text, no timing)."""
    bar.close()
    handle = getattr(bar, "handle", None)
    if handle is not None:
        handle.update({"text/plain": line}, raw=True)

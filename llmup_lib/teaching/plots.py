"""One plotting style for the whole suite."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt

STYLE = {"figure.figsize": (7, 3.6), "figure.dpi": 90, "axes.grid": True, "grid.alpha": 0.3,
         "axes.spines.top": False, "axes.spines.right": False, "font.size": 10}


def use_style() -> None:
    plt.rcParams.update(STYLE)


def plot_training(result, tokens_per_char: float | None = None, floor_bpc: float | None = None,
                  ax=None, label: str = ""):
    """Train and validation loss against steps; with ``tokens_per_char`` the axis is bits per
    character, and ``floor_bpc`` draws the corpus's true entropy as the line no model can cross."""
    use_style()
    ax = ax or plt.subplots()[1]
    scale = tokens_per_char / math.log(2) if tokens_per_char else 1.0
    for key, style in (("train_loss", "-"), ("val_loss", "o-")):
        steps, values = result.series(key)
        ax.plot(steps, [v * scale for v in values], style, label=f"{label} {key}".strip(), ms=3)
    if floor_bpc is not None:
        ax.axhline(floor_bpc, color="k", ls="--", lw=1, label="true entropy (floor)")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("bits per character" if tokens_per_char else "loss (nats/token)")
    ax.legend()
    return ax

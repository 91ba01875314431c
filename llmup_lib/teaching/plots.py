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


def plot_fronts(points: dict, fronts: dict, marked: dict | None = None, ax=None,
                forgetting: str = "general-loss rise over the base", log_forgetting: bool = True):
    """Learning against forgetting: each method's rates (``points[method]``, from
    ``fronts.front_points``) as mean ± seed deviation on both axes, its front (``fronts[method]``)
    as a line, and ``marked[method]`` (a learning rate, e.g. its best by domain excess alone)
    circled. Domain excess is logarithmic, and so is the forgetting unless ``log_forgetting`` is
    False (world facts lost, which can be 0); ``forgetting`` names that axis. Lower-left is
    better."""
    use_style()
    ax = ax or plt.subplots(figsize=(7, 4.2))[1]
    for i, (method, pts) in enumerate(points.items()):
        color = f"C{i}"
        # a log axis has no room for <= 0
        shown = [p for p in pts if p["forgetting"] > 0 or not log_forgetting]
        ax.errorbar([p["domain_excess"] for p in shown], [p["forgetting"] for p in shown],
                    xerr=[p["domain_excess_std"] for p in shown],
                    yerr=[p["forgetting_std"] for p in shown], fmt="o", ms=3, color=color,
                    alpha=0.5, capsize=2)
        curve = fronts.get(method)
        if curve:
            ax.plot([p["domain_excess"] for p in curve], [p["forgetting"] for p in curve], "-",
                    color=color, label=method)
        chosen = [p for p in shown if marked and p["lr"] == marked.get(method)]
        ax.scatter([p["domain_excess"] for p in chosen], [p["forgetting"] for p in chosen],
                   s=120, facecolors="none", edgecolors=color, lw=1.5)
    ax.set_xscale("log")
    if log_forgetting:
        ax.set_yscale("log")
    ax.set_xlabel("domain excess over the floor (nats/token; learns more ←)")
    ax.set_ylabel(f"{forgetting} (forgets more ↑)")
    ax.legend(fontsize=8)
    return ax

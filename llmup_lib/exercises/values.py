"""``check_…()`` helpers for the notebooks' value exercises: each says right, or what kind of
mistake it looks like, and never prints the expected value (a learner who reads it has nothing
left to find). The function exercises — the learner writes the code, graded on hidden cases —
are in ``llmup_lib.exercises.grader`` (``check(fn)``, ``hint(id, tier)``) and ``bank``.

Only the checks a notebook uses live here (00's ``check_perplexity``); the formulas of the old
value checks (bits per character, 6·N·D, LoRA parameters, masked labels, forward KL, gap closed,
Chinchilla's optimum) are graded as function exercises in the bank.
"""

from __future__ import annotations

import math

from .grader import check_value


def _number(value):
    """The learner's value as a float, or the value itself (the grader names its type)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return value


def check_perplexity(loss_nats: float, your_perplexity: float) -> bool:
    """Exercise: perplexity from a mean loss in nats per token."""
    return check_value("perplexity", _number(your_perplexity), math.exp(loss_nats), mistakes=[
        (2 ** loss_nats, "That is 2 to the loss; the loss is in nats, so the base is e."),
        (loss_nats / math.log(2), "That is the loss in bits; perplexity exponentiates it."),
    ], hint_text="perplexity is e to the mean loss in nats.")

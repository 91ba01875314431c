"""``check_…()`` helpers for the notebooks' exercises: each says right, or how far off and why."""

from __future__ import annotations

import math


def _report(name: str, ok: bool, hint: str) -> bool:
    print(f"{name}: " + ("correct!" if ok else f"not yet: {hint}"))
    return ok


def check_perplexity(loss_nats: float, your_perplexity: float) -> bool:
    """Exercise: perplexity from a mean loss in nats per token."""
    truth = math.exp(loss_nats)
    return _report("perplexity", math.isclose(your_perplexity, truth, rel_tol=1e-3),
                   f"expected about {truth:.3f}; perplexity is e to the mean loss in nats.")


def check_bits_per_char(loss_nats: float, tokens_per_char: float, your_bpc: float) -> bool:
    """Exercise: convert nats per token into bits per character."""
    truth = loss_nats / math.log(2) * tokens_per_char
    return _report("bits per character", math.isclose(your_bpc, truth, rel_tol=1e-3),
                   f"expected about {truth:.4f}; divide by ln 2, multiply by tokens per char.")


def check_param_count(config, your_count: int) -> bool:
    """Exercise: the non-embedding parameters of a Llama config, from its shape alone."""
    d, L, f = config.hidden_size, config.num_hidden_layers, config.intermediate_size
    truth = L * (4 * d * d + 3 * d * f + 2 * d) + d  # attention, SwiGLU, two RMSNorms; final norm
    return _report("parameter count", your_count == truth,
                   f"expected {truth:,}; count q,k,v,o (d×d each), gate/up/down (d×f) and the "
                   "RMSNorm gains (d each).")

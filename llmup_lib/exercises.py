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


def check_training_flops(n_matmul_params: int, tokens: int, your_flops: float) -> bool:
    """Exercise: the weights' training FLOPs of a run, 6·N·D."""
    truth = 6 * n_matmul_params * tokens
    return _report("training FLOPs", math.isclose(your_flops, truth, rel_tol=1e-3),
                   f"expected about {truth:.3e}; 2 FLOPs per weight per token forward, 4 backward.")


def check_lora_params(d_in: int, d_out: int, rank: int, your_count: int) -> bool:
    """Exercise: the parameters a rank-r LoRA adds to one d_in -> d_out linear layer."""
    truth = rank * (d_in + d_out)
    return _report("LoRA parameters", your_count == truth,
                   f"expected {truth:,}; A is r x d_in and B is d_out x r.")


def check_masked_labels(prompt_ids: list, answer_ids: list, your_labels: list) -> bool:
    """Exercise: the labels of one prompt-masked training row (inputs = all tokens but the last)."""
    seq = list(prompt_ids) + list(answer_ids)
    truth = [-100 if i + 1 < len(prompt_ids) else t for i, t in enumerate(seq[1:])]
    return _report("masked labels", list(your_labels) == truth,
                   f"expected {truth}; label i is token i+1, and -100 while that is prompt.")

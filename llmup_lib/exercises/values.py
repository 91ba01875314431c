"""``check_…()`` helpers for the notebooks' value exercises: each says right, or what kind of
mistake it looks like, and never prints the expected value (a learner who reads it has nothing
left to find). The function exercises — the learner writes the code, graded on hidden cases —
are in ``llmup_lib.exercises.grader`` (``check(fn)``, ``hint(id, tier)``).

``check_forward_kl``, ``check_gap_closed`` (also in ``distill``) and ``check_six_nd``,
``check_tokens_per_param`` (also in ``scaling``) are here in their quiet form, with the same
signatures; those modules' copies still print the expected value until they delegate here.
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


def check_bits_per_char(loss_nats: float, tokens_per_char: float, your_bpc: float) -> bool:
    """Exercise: convert nats per token into bits per character."""
    truth = loss_nats / math.log(2) * tokens_per_char
    return check_value("bits per character", _number(your_bpc), truth, mistakes=[
        (loss_nats * tokens_per_char, "Off by exactly a factor ln 2 — did you forget to divide "
                                      "by ln 2 (nats -> bits)?"),
        (loss_nats / math.log(2) / tokens_per_char, "You divided by tokens per character; "
                                                    "bits per token × tokens per char."),
        (loss_nats / math.log(2), "That is bits per token; convert to per character."),
    ], hint_text="divide by ln 2, then convert per token to per character.")


def check_param_count(config, your_count: int) -> bool:
    """Exercise: the non-embedding parameters of a Llama config, from its shape alone."""
    d, L, f = config.hidden_size, config.num_hidden_layers, config.intermediate_size
    truth = L * (4 * d * d + 3 * d * f + 2 * d) + d  # attention, SwiGLU, two RMSNorms; final norm
    return check_value("parameter count", _number(your_count), truth, rtol=0, mistakes=[
        (L * (4 * d * d + 3 * d * f), "You left out the RMSNorm gains (d per norm)."),
        (L * (4 * d * d + 3 * d * f + 2 * d), "You left out the final RMSNorm (d more)."),
        (L * (4 * d * d + 2 * d * f + 2 * d) + d, "SwiGLU has three d×f matrices (gate, up, "
                                                  "down), not two."),
    ], hint_text="count q,k,v,o (d×d each), gate/up/down (d×f) and the RMSNorm gains (d each).")


def check_training_flops(n_matmul_params: int, tokens: int, your_flops: float) -> bool:
    """Exercise: the weights' training FLOPs of a run, 6·N·D."""
    n, d = n_matmul_params, tokens
    return check_value("training FLOPs", _number(your_flops), 6 * n * d, mistakes=[
        (2 * n * d, "That is the forward pass only; backward costs twice as much again."),
        (n * d, "N·D counts weight-token pairs; each costs several FLOPs."),
    ], hint_text="2 FLOPs per weight per token forward, 4 backward.")


def check_lora_params(d_in: int, d_out: int, rank: int, your_count: int) -> bool:
    """Exercise: the parameters a rank-r LoRA adds to one d_in -> d_out linear layer."""
    return check_value("LoRA parameters", _number(your_count), rank * (d_in + d_out), rtol=0,
                       mistakes=[(d_in * d_out, "That is the full layer, not the adapter."),
                                 (rank * d_in, "You counted A only; B adds d_out × r."),
                                 (rank * d_out, "You counted B only; A adds r × d_in.")],
                       hint_text="A is r x d_in and B is d_out x r.")


def check_masked_labels(prompt_ids: list, answer_ids: list, your_labels: list) -> bool:
    """Exercise: the labels of one prompt-masked training row (inputs = all tokens but the last)."""
    from . import solutions
    from .bank import _masked

    seq, p = list(prompt_ids) + list(answer_ids), list(prompt_ids)
    got = list(your_labels) if isinstance(your_labels, (list, tuple)) else your_labels
    return check_value("masked labels", got, solutions.mask_prompt_labels(p, answer_ids),
                       rtol=0, mistakes=[
        (_masked(+1)(p, answer_ids), "Masking off by one: the answer's first token is masked."),
        (_masked(-1)(p, answer_ids), "Masking off by one: the last prompt token is still a "
                                     "label."),
        (seq[1:], "Nothing is masked: the prompt's labels must be -100."),
        ([-100 if i < len(p) else t for i, t in enumerate(seq[:-1])], "Labels not shifted: "
                                                                      "label i is token i + 1."),
    ], hint_text="label i is token i+1, and -100 while that is prompt.")


# ----------------------------------------------------------------------------- 05 and 06


def check_forward_kl(student_logits, teacher_logits, temperature: float, your_value) -> bool:
    """Exercise: the forward-KL distillation loss with its T², written by hand."""
    from ..methods.distill import forward_kl, reverse_kl

    T = temperature
    truth = float(forward_kl(student_logits, teacher_logits, T))
    return check_value("forward KL", _number(your_value), truth, rtol=1e-4, atol=1e-7, mistakes=[
        (truth / (T * T), "Off by exactly T² — did you forget the T² factor?"),
        (float(reverse_kl(student_logits, teacher_logits, T)), "That is the reverse KL; the "
                                                               "teacher's p weighs the log-ratio."),
    ], hint_text="soften both logits by T, take sum p·(log p − log q) over the vocabulary, "
                 "average over positions, times T².")


def check_gap_closed(scratch_loss: float, student_loss: float, teacher_loss: float,
                     your_fraction) -> bool:
    """Exercise: the fraction of the scratch → teacher gap that a distilled student closes."""
    truth = (scratch_loss - student_loss) / (scratch_loss - teacher_loss)
    return check_value("gap closed", _number(your_fraction), truth, mistakes=[
        (1 - truth, "That is the gap left, not the gap closed."),
        (100 * truth, "A fraction, please, not a percentage."),
    ], hint_text="(scratch − student) / (scratch − teacher).")


def check_six_nd(row: dict, your_flops: float) -> bool:
    """Exercise: the 6·N·D training FLOPs of one sweep row."""
    n, d = row["params"], row["tokens"]
    return check_value("6ND", _number(your_flops), 6 * n * d, mistakes=[
        (2 * n * d, "That is the forward pass only (2·N·D)."),
    ], hint_text="6 x non-embedding parameters x training tokens.")


def check_tokens_per_param(flops: float, your_ratio: float) -> bool:
    """Exercise: Chinchilla's optimal tokens per parameter at a budget (its reference law)."""
    from ..methods.scaling import REFERENCES, CHINCHILLA_TOKENS_PER_PARAM

    truth = float(REFERENCES["chinchilla"].optimal(flops)["tokens_per_param"])
    return check_value("tokens per parameter", _number(your_ratio), truth, rtol=1e-2, mistakes=[
        (CHINCHILLA_TOKENS_PER_PARAM, "20 is the rule of thumb; this asks for the reference "
                                      "law's own optimum at this budget."),
        (1 / truth, "That is parameters per token; invert it."),
    ], hint_text="use compute_optimal(C, REFERENCES['chinchilla']).")

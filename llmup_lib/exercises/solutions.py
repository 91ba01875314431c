"""Reference solutions of the notebooks' exercises: the code a learner is asked to write.

Kept out of the notebooks so a learner does not scroll past the answer; ``hint(id, 3)`` shows one
on demand and ``grader.fill_solutions`` pastes them into a notebook for a teacher's run. Each
function has the name and signature the notebook's exercise cell asks for, and uses only
``math``, ``numpy as np``, ``torch`` and ``torch.nn.functional as F`` (the names a teacher's
filled notebook gets imported for it).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

# ----------------------------------------------------------------------------- 00 start here


def count_parameters(model):
    """The number of numbers a torch model learns: each tensor once, frozen ones included."""
    return sum(p.numel() for p in model.parameters())  # parameters() yields a shared tensor once


# ----------------------------------------------------------------------------- 01 the baseline


def bits_per_char(token_losses, n_chars):
    """Bits per character of a text from its per-token losses in nats."""
    total_nats = np.sum(token_losses)  # the whole text's code length, in nats
    return float(total_nats / math.log(2) / n_chars)  # nats -> bits, then per character


def perplexity(token_losses):
    """Perplexity: e to the mean per-token loss in nats."""
    return float(np.exp(np.mean(token_losses)))


def next_token_cross_entropy(logits, targets):
    """Mean cross-entropy of next-token predictions: logits (B, V), target ids (B,)."""
    log_probs = torch.log_softmax(logits, dim=-1)  # normalise first: logits are not log-probs
    return -log_probs.gather(-1, targets[:, None]).squeeze(-1).mean()


# ----------------------------------------------------------------------------- 02 fine-tuning


def shift_labels(input_ids):
    """(inputs, labels) of a causal LM: position t is asked to predict token t + 1."""
    return input_ids[:, :-1], input_ids[:, 1:]


def causal_lm_loss(logits, input_ids):
    """Mean next-token cross-entropy of logits (B, T, V) on their own input ids (B, T)."""
    vocab = logits.shape[-1]
    # The last position has no next token and the first token is never a target.
    return F.cross_entropy(logits[:, :-1].reshape(-1, vocab), input_ids[:, 1:].reshape(-1))


def reinit_unseen_rows(weight, unseen_ids, noise):
    """A copy of the embedding ``weight`` (V, d) whose ``unseen_ids`` rows are redrawn as
    ``mean + std · noise`` with the per-dimension mean and std of the *trained* rows."""
    trained = torch.ones(weight.shape[0], dtype=torch.bool)
    trained[unseen_ids] = False  # unseen rows were only pushed down: leave them out of the stats
    mean, std = weight[trained].mean(0), weight[trained].std(0)
    new = weight.clone()
    new[unseen_ids] = mean + std * noise
    return new


# ----------------------------------------------------------------------------- 03 LoRA


def lora_scale(alpha, rank):
    """The factor LoRA multiplies B·A by."""
    return alpha / rank


def lora_forward(x, W, A, B, alpha, rank):
    """A LoRA linear layer: x (n, d_in), frozen W (d_out, d_in), A (r, d_in), B (d_out, r)."""
    # Two thin matmuls instead of forming B·A: r is much smaller than d_in and d_out.
    return x @ W.T + (alpha / rank) * (x @ A.T) @ B.T


def lora_merge(W, A, B, alpha, rank):
    """The merged weight W + (alpha / r) · B · A: a plain linear layer again."""
    return W + (alpha / rank) * B @ A


def lora_param_count(d_in, d_out, rank):
    """Parameters a rank-r LoRA adds to one d_in -> d_out linear layer."""
    return rank * (d_in + d_out)  # A is r x d_in, B is d_out x r


# ----------------------------------------------------------------------------- 04 instructions


def mask_prompt_labels(prompt_ids, answer_ids):
    """Labels of one training row whose inputs are all tokens but the last: label i is token
    i + 1, or -100 while that token is still the prompt."""
    seq = list(prompt_ids) + list(answer_ids)
    return [-100 if i + 1 < len(prompt_ids) else t for i, t in enumerate(seq[1:])]


def chat_example(tokenizer, question, answer):
    """(inputs, labels) lists of one chat example: EOS, the templated prompt, the answer with a
    leading space, EOS; the prompt's labels masked."""
    eos = tokenizer.eos_token_id
    text = tokenizer.apply_chat_template([{"role": "user", "content": question}],
                                         add_generation_prompt=True, tokenize=False)
    prompt = [eos, *tokenizer.encode(text, add_special_tokens=False)]
    reply = [*tokenizer.encode(" " + answer.strip(), add_special_tokens=False), eos]
    seq = prompt + reply
    labels = [-100] * (len(prompt) - 1) + reply  # label i is token i + 1; prompt ones masked
    return seq[:-1], labels


def masked_mean_loss(token_losses, labels):
    """Mean of per-token losses over the positions whose label is not -100."""
    keep = labels != -100
    return token_losses[keep].sum() / keep.sum()


# ----------------------------------------------------------------------------- 05 scaling


def fit_power_law(n, loss, floor=0.0):
    """Fit ``loss = floor + A · n^(-alpha)`` as a straight line in log space; returns
    ``(A, alpha)``. ``log(loss - floor) = log A - alpha · log n``."""
    slope, intercept = np.polyfit(np.log(n), np.log(np.asarray(loss) - floor), 1)
    return float(np.exp(intercept)), float(-slope)


def six_nd(n_params, tokens):
    """Training FLOPs of the weights: 2 per weight per token forward, 4 backward."""
    return 6 * n_params * tokens


def compute_optimal_size(flops, law):
    """Compute-optimal parameters N for a budget C = 6·N·D under a Chinchilla law
    ``L = E + A/N^alpha + B/D^beta`` (Hoffmann et al. 2022, eq. 4)."""
    a = law.beta / (law.alpha + law.beta)
    G = (law.alpha * law.A / (law.beta * law.B)) ** (1 / (law.alpha + law.beta))
    return G * (flops / 6) ** a


# ----------------------------------------------------------------------------- 06 distillation


def soften(logits, temperature):
    """The teacher's softened distribution softmax(logits / T)."""
    return torch.softmax(logits / temperature, dim=-1)


def kd_forward_kl(student_logits, teacher_logits, temperature):
    """Hinton's KD loss: T² · KL(p_T ‖ q_T), summed over the vocabulary, mean over positions."""
    T = temperature
    log_q = torch.log_softmax(student_logits / T, dim=-1)
    log_p = torch.log_softmax(teacher_logits / T, dim=-1)
    # T² keeps the gradient's size independent of T (the soft gradients shrink as 1/T²).
    return T * T * (log_p.exp() * (log_p - log_q)).sum(-1).mean()


def reverse_kl(student_logits, teacher_logits, temperature):
    """T² · KL(q_T ‖ p_T): weighed by the student's own distribution (mode-seeking)."""
    T = temperature
    log_q = torch.log_softmax(student_logits / T, dim=-1)
    log_p = torch.log_softmax(teacher_logits / T, dim=-1)
    return T * T * (log_q.exp() * (log_q - log_p)).sum(-1).mean()


def gap_closed(scratch_loss, student_loss, teacher_loss):
    """Share of the scratch -> teacher loss gap that the distilled student closes."""
    return (scratch_loss - student_loss) / (scratch_loss - teacher_loss)


# ----------------------------------------------------------------------------- 07 which upgrade?


def choose_upgrade(scenario):
    """The lever for a scenario (a dict of constraints), by the notebook's decision guide."""
    if scenario["prompting_ok"] or scenario["examples"] == 0:
        return "prompting"  # nothing to learn from, or nothing to fix: training costs for nothing
    if scenario["too_slow_to_serve"]:
        return "distillation"  # the quality exists; it must fit a smaller, faster model
    if scenario["weak_everywhere"] and scenario["compute"] == "large":
        return "larger model"  # a general gap is capacity, which fine-tuning does not add
    if scenario["keep_general"] or not scenario["memory_for_full"] or scenario["examples"] < 1000:
        return "LoRA"  # forgets less, needs little memory, fits few examples
    return "full fine-tuning"  # many examples, memory to spare, forgetting acceptable


def adamw_state_bytes(trainable_params, bytes_per_value=4):
    """AdamW keeps two moments (m and v) per *trainable* parameter."""
    return 2 * bytes_per_value * trainable_params


def pareto_front(options):
    """Names of the options no other option beats on both cost and loss (lower is better),
    sorted by cost."""
    front = [o for o in options
             if not any(p["cost"] <= o["cost"] and p["loss"] <= o["loss"] and p is not o
                        and (p["cost"] < o["cost"] or p["loss"] < o["loss"]) for p in options)]
    return [o["name"] for o in sorted(front, key=lambda o: o["cost"])]

"""The exercises of notebooks 01–07: hidden cases, ground truth, hints and recognised mistakes.

Each ``Mistake`` is a small wrong implementation (the one learners really write); when it
reproduces every wrong answer the grader names it. The ground truth is the package's own
implementation where one exists (``distill.forward_kl``, ``ChinchillaLaw.optimal``,
``finetune.instruction_rows``, ``peft``'s LoRA layer), so a reference solution that drifted
from the package would fail its own test.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
import torch.nn.functional as F

from . import solutions as S
from .grader import Exercise, Mistake

LN2 = math.log(2)


def _register(*items: Exercise) -> dict[str, Exercise]:
    return {ex.id: ex for ex in items}


# ----------------------------------------------------------------------------- 01 the baseline


def _loss_arrays(rng):
    cases = []
    for _ in range(6):
        k = int(rng.integers(5, 40))
        losses = rng.uniform(0.05, 3.0, size=k)
        cases.append((losses, int(k * rng.uniform(2.0, 5.0))))
    return cases


def _logits_targets(rng):
    cases = []
    for _ in range(5):
        b, v = int(rng.integers(2, 7)), int(rng.integers(5, 30))
        cases.append((2 * torch.randn(b, v), torch.randint(0, v, (b,))))
    return cases


EX01 = [
    Exercise(
        id="01.bits_per_char", title="bits per character",
        writes="bits_per_char(token_losses, n_chars) -> float",
        cases=_loss_arrays, solution=S.bits_per_char,
        hints=("The losses are in nats and per token; you want bits and per character.",
               "bits/char = (sum of the token losses in nats) / ln 2 / (number of characters)."),
        mistakes=(
            Mistake(lambda x, c: np.sum(x) / c, "Off by exactly a factor ln 2 — did you forget "
                    "to divide by ln 2 to turn nats into bits?"),
            Mistake(lambda x, c: np.sum(x) * LN2 / c, "Off by a factor (ln 2)² — you multiplied "
                    "by ln 2 where nats -> bits divides by it."),
            Mistake(lambda x, c: np.sum(x) / LN2 / len(x), "That is bits per *token*: divide "
                    "the total by the number of characters instead."),
            Mistake(lambda x, c: np.mean(x) / LN2 / c, "You divided the *mean* loss by the "
                    "characters; the text's total loss is the sum over its tokens."),
        )),
    Exercise(
        id="01.perplexity", title="perplexity",
        writes="perplexity(token_losses) -> float",
        cases=lambda rng: [(x,) for x, _ in _loss_arrays(rng)], solution=S.perplexity,
        hints=("Perplexity undoes the log of the average loss.",
               "perplexity = exp(mean of the token losses in nats)."),
        mistakes=(
            Mistake(lambda x: 2 ** np.mean(x), "That is 2 to the mean loss; these losses are in "
                    "nats, so the base is e."),
            Mistake(lambda x: np.mean(np.exp(x)), "You averaged e^loss per token; perplexity is "
                    "e to the *mean* loss (the order matters)."),
            Mistake(lambda x: np.exp(np.sum(x)), "You exponentiated the total loss; use the "
                    "mean per token."),
        )),
    Exercise(
        id="01.next_token_cross_entropy", title="next-token cross-entropy",
        writes="next_token_cross_entropy(logits, targets) -> 0-d tensor",
        cases=_logits_targets, solution=S.next_token_cross_entropy,
        expect=lambda z, t: F.cross_entropy(z, t),
        hints=("Turn logits into log-probabilities, pick the target's, average the negatives.",
               "loss = -mean_b log_softmax(logits[b])[targets[b]]."),
        mistakes=(
            Mistake(lambda z, t: -z.gather(-1, t[:, None]).mean(), "You used the raw logits as "
                    "log-probabilities: apply log_softmax over the vocabulary first."),
            Mistake(lambda z, t: -torch.softmax(z, -1).gather(-1, t[:, None]).mean(),
                    "You used the target's probability, not its log."),
            Mistake(lambda z, t: F.cross_entropy(z, t, reduction="sum"), "You summed over the "
                    "batch; the loss is the mean over predictions."),
            Mistake(lambda z, t: -torch.log_softmax(z, 0).gather(-1, t[:, None]).mean(),
                    "Your softmax normalises over the batch (dim 0); normalise over the "
                    "vocabulary (the last dim)."),
        )),
]

# ----------------------------------------------------------------------------- 02 fine-tuning


def _ids(rng):
    return [(torch.randint(0, 50, (int(rng.integers(1, 4)), int(rng.integers(4, 10)))),)
            for _ in range(5)]


def _logits_ids(rng):
    cases = []
    for _ in range(5):
        b, t, v = int(rng.integers(1, 4)), int(rng.integers(3, 8)), int(rng.integers(5, 20))
        cases.append((2 * torch.randn(b, t, v), torch.randint(0, v, (b, t))))
    return cases


def _ce(logits, ids, reduction="mean"):
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids.reshape(-1),
                           reduction=reduction)


def _embedding_cases(rng):
    cases = []
    for _ in range(4):
        v, d, k = int(rng.integers(12, 30)), int(rng.integers(3, 8)), int(rng.integers(2, 5))
        weight = torch.randn(v, d) * torch.rand(d) + torch.randn(d)
        unseen = torch.tensor(sorted(rng.choice(v, size=k, replace=False).tolist()))
        weight[unseen] = -3.0 + 0.1 * torch.randn(k, d)  # pushed down: far from the trained rows
        cases.append((weight, unseen, torch.randn(k, d)))
    return cases


def _reinit_with(stats_rows, scale=True):
    def wrong(weight, unseen, noise):
        rows = stats_rows(weight, unseen)
        new = weight.clone()
        new[unseen] = rows.mean(0) + (rows.std(0) if scale else 1.0) * noise
        return new
    return wrong


def _trained_rows(weight, unseen):
    keep = torch.ones(weight.shape[0], dtype=torch.bool)
    keep[unseen] = False
    return weight[keep]


EX02 = [
    Exercise(
        id="02.shift_labels", title="shifted labels",
        writes="shift_labels(input_ids) -> (inputs, labels), each (B, T - 1)",
        cases=_ids, solution=S.shift_labels,
        hints=("Each position is trained to predict the *next* token.",
               "inputs = ids[:, :-1], labels = ids[:, 1:]."),
        mistakes=(
            Mistake(lambda x: (x[:, :-1], x[:, :-1]), "Your labels are the inputs themselves — "
                    "labels not shifted: position t must predict token t + 1."),
            Mistake(lambda x: (x[:, 1:], x[:, :-1]), "Shifted the wrong way: the inputs drop the "
                    "last token and the labels drop the first."),
        )),
    Exercise(
        id="02.causal_lm_loss", title="causal LM loss",
        writes="causal_lm_loss(logits, input_ids) -> 0-d tensor",
        cases=_logits_ids, solution=S.causal_lm_loss,
        hints=("The logits at position t are a guess of token t + 1.",
               "cross_entropy(logits[:, :-1] flattened, input_ids[:, 1:] flattened)."),
        mistakes=(
            Mistake(lambda z, x: _ce(z, x), "Labels not shifted: you scored position t against "
                    "its own token; drop the last logit and the first label."),
            Mistake(lambda z, x: _ce(z[:, 1:], x[:, :-1]), "Shifted the wrong way: keep the "
                    "logits of positions 0..T-2 and the tokens 1..T-1."),
            Mistake(lambda z, x: _ce(z[:, :-1], x[:, 1:], "sum"), "You summed the token losses; "
                    "the loss is their mean."),
        )),
    Exercise(
        id="02.reinit_unseen_rows", title="re-initialised unseen rows",
        writes="reinit_unseen_rows(weight, unseen_ids, noise) -> tensor like weight",
        cases=_embedding_cases, solution=S.reinit_unseen_rows, rtol=1e-4, atol=1e-5,
        hints=("New rows should look like the rows that were trained, not like the unseen ones.",
               "mean, std per dimension over the trained rows; new row = mean + std * noise."),
        mistakes=(
            Mistake(_reinit_with(lambda w, u: w), "Your mean and std include the unseen rows "
                    "themselves; compute them over the trained rows only."),
            Mistake(_reinit_with(_trained_rows, scale=False), "The noise is not scaled: multiply "
                    "it by the trained rows' per-dimension std."),
            Mistake(lambda w, u, n: w.clone(), "Nothing changed: write the new values into the "
                    "unseen rows of a copy."),
        )),
]

# ----------------------------------------------------------------------------- 03 LoRA


def _lora_cases(rng, with_x=True):
    cases = []
    for _ in range(4):
        d_in, d_out = int(rng.integers(4, 12)), int(rng.integers(3, 10))
        r = int(rng.integers(1, 4))
        alpha = float(rng.choice([1, 2, 8, 16, 3 * r]))
        if alpha == r:  # scale 1 would hide a missing scale
            alpha = 4.0 * r
        W, A, B = torch.randn(d_out, d_in), torch.randn(r, d_in), torch.randn(d_out, r)
        args = (W, A, B, alpha, r)
        cases.append((torch.randn(int(rng.integers(2, 6)), d_in), *args) if with_x else args)
    return cases


def _peft_layer(W, A, B, alpha, r):
    """A peft LoRA ``Linear`` wrapping ``W``, with ``A`` and ``B`` as its adapter: the ground
    truth the hand-written layer is checked against."""
    from peft import LoraConfig, inject_adapter_in_model

    holder = torch.nn.Module()
    holder.lin = torch.nn.Linear(W.shape[1], W.shape[0], bias=False)
    config = LoraConfig(r=r, lora_alpha=alpha, target_modules=["lin"], lora_dropout=0.0)
    holder = inject_adapter_in_model(config, holder)
    with torch.no_grad():
        holder.lin.base_layer.weight.copy_(W)
        holder.lin.lora_A["default"].weight.copy_(A)
        holder.lin.lora_B["default"].weight.copy_(B)
    return holder.lin


def peft_lora_forward(x, W, A, B, alpha, r):
    with torch.no_grad():
        return _peft_layer(W, A, B, alpha, r)(x)


def peft_lora_merge(W, A, B, alpha, r):
    layer = _peft_layer(W, A, B, alpha, r)
    layer.merge()
    return layer.base_layer.weight.detach().clone()


_NO_SCALE = ("Off by the α/r scale: the adapter's term is (alpha / r) · B·A — did you "
             "forget it?")
_INVERTED = "You scaled by r/α; the LoRA scale is α/r."

EX03 = [
    Exercise(
        id="03.lora_scale", title="LoRA scale",
        writes="lora_scale(alpha, rank) -> float",
        cases=lambda rng: [(float(rng.integers(1, 65)), int(rng.integers(2, 33)))
                           for _ in range(6)],
        solution=S.lora_scale,
        hints=("alpha sets the adapter's strength independently of its rank.",
               "scale = alpha / r."),
        mistakes=(Mistake(lambda a, r: r / a, _INVERTED),
                  Mistake(lambda a, r: a, "That is alpha alone: divide it by the rank."),
                  Mistake(lambda a, r: a / math.sqrt(r), "That is rsLoRA's α/√r; plain LoRA "
                          "divides by r."))),
    Exercise(
        id="03.lora_forward", title="LoRA forward",
        writes="lora_forward(x, W, A, B, alpha, rank) -> tensor (n, d_out)",
        cases=_lora_cases, solution=S.lora_forward, expect=peft_lora_forward, atol=1e-4,
        hints=("The frozen layer's output plus a scaled low-rank correction.",
               "y = x·Wᵀ + (alpha / r) · (x·Aᵀ)·Bᵀ."),
        mistakes=(Mistake(lambda x, W, A, B, a, r: x @ W.T + x @ A.T @ B.T, _NO_SCALE),
                  Mistake(lambda x, W, A, B, a, r: x @ W.T + r / a * x @ A.T @ B.T, _INVERTED),
                  Mistake(lambda x, W, A, B, a, r: a / r * x @ A.T @ B.T, "You returned the "
                          "adapter's term only; add the frozen layer's own x·Wᵀ."))),
    Exercise(
        id="03.lora_merge", title="LoRA merge",
        writes="lora_merge(W, A, B, alpha, rank) -> tensor like W",
        cases=functools.partial(_lora_cases, with_x=False), solution=S.lora_merge,
        expect=peft_lora_merge, atol=1e-4,
        hints=("Merging folds the adapter's update into the weight once.",
               "W_merged = W + (alpha / r) · B·A."),
        mistakes=(Mistake(lambda W, A, B, a, r: W + B @ A, _NO_SCALE),
                  Mistake(lambda W, A, B, a, r: W + r / a * B @ A, _INVERTED),
                  Mistake(lambda W, A, B, a, r: a / r * B @ A, "That is the update alone; add "
                          "it to W."))),
    Exercise(
        id="03.lora_param_count", title="LoRA parameters",
        writes="lora_param_count(d_in, d_out, rank) -> int",
        cases=lambda rng: [tuple(int(v) for v in (rng.integers(8, 512), rng.integers(8, 512),
                                                   rng.integers(1, 33))) for _ in range(6)],
        solution=S.lora_param_count, rtol=0, atol=0,
        hints=("Count the entries of A and of B.", "A is r × d_in, B is d_out × r."),
        mistakes=(Mistake(lambda i, o, r: i * o, "That is the full layer's d_in × d_out; the "
                          "adapter is two thin matrices."),
                  Mistake(lambda i, o, r: r * i * o, "r × d_in × d_out is more than the layer "
                          "itself; A and B are each thin."),
                  Mistake(lambda i, o, r: r * i, "You counted A only; B adds d_out × r."))),
]

# ----------------------------------------------------------------------------- 04 instructions

_WORDS = ("where does mira live what does the cat eat which drug treats fever how many doses "
          "oakville tom river blue daily twice aspirin clinic the a of in").split()


def _mask_cases(rng):
    cases = []
    for _ in range(6):
        p, a = int(rng.integers(2, 9)), int(rng.integers(1, 6))
        ids = rng.choice(np.arange(3, 1000), size=p + a, replace=False).tolist()
        cases.append((ids[:p], ids[p:]))
    return cases


def _masked(shift):
    """Labels masked ``shift`` positions too many (+) or too few (-)."""
    def wrong(p, a):
        seq = list(p) + list(a)
        return [-100 if i + 1 < len(p) + shift else t for i, t in enumerate(seq[1:])]
    return wrong


@functools.lru_cache(maxsize=1)
def _suite_tokenizer():
    from ..core.tokenizer import load_tokenizer

    return load_tokenizer()


def _chat_cases(rng):
    tok = _suite_tokenizer()
    words = lambda k: " ".join(rng.choice(_WORDS, size=k))  # noqa: E731
    return [(tok, words(int(rng.integers(3, 7))) + "?", words(int(rng.integers(1, 3))).title())
            for _ in range(4)]


def _chat_truth(tok, question, answer):
    from ..methods.finetune import instruction_rows

    inputs, labels = instruction_rows(tok, [question], [answer])
    return inputs[0].tolist(), labels[0].tolist()


def _chat_variant(space=True, eos=True, mask=True):
    def wrong(tok, question, answer):
        e = tok.eos_token_id
        text = tok.apply_chat_template([{"role": "user", "content": question}],
                                       add_generation_prompt=True, tokenize=False)
        prompt = [e, *tok.encode(text, add_special_tokens=False)]
        reply = tok.encode((" " if space else "") + answer.strip(), add_special_tokens=False)
        reply += [e] * eos
        seq = prompt + reply
        labels = S.mask_prompt_labels(prompt, reply) if mask else seq[1:]
        return seq[:-1], labels
    return wrong


def _loss_label_cases(rng):
    cases = []
    for _ in range(5):
        b, t = int(rng.integers(2, 4)), int(rng.integers(4, 9))
        labels = torch.randint(0, 50, (b, t))
        for row in range(b):  # a prompt of a different length in each row
            labels[row, :int(rng.integers(1, t))] = -100
        cases.append((torch.rand(b, t) * 3, labels))
    return cases


def _row_means(losses, labels):
    keep = (labels != -100).float()
    return ((losses * keep).sum(1) / keep.sum(1)).mean()


EX04 = [
    Exercise(
        id="04.mask_prompt_labels", title="masked labels",
        writes="mask_prompt_labels(prompt_ids, answer_ids) -> list of len(prompt)+len(answer)-1",
        cases=_mask_cases, solution=S.mask_prompt_labels, rtol=0, atol=0,
        hints=("Label i is token i + 1 of prompt + answer; it is -100 while that token is prompt.",
               "labels = [-100 if i + 1 < len(prompt) else t for i, t in enumerate(seq[1:])]."),
        mistakes=(
            Mistake(_masked(+1), "Masking off by one: you also masked the answer's first token, "
                    "which the model must learn to write."),
            Mistake(_masked(-1), "Masking off by one: the last prompt token is still a label; "
                    "it should be -100 too."),
            Mistake(lambda p, a: [-100 if i < len(p) else t for i, t in
                                  enumerate((list(p) + list(a))[:-1])],
                    "Labels not shifted: label i is token i + 1, not token i."),
            Mistake(lambda p, a: (list(p) + list(a))[1:], "Nothing is masked: the prompt's "
                    "labels must be -100."),
        )),
    Exercise(
        id="04.chat_example", title="chat training example",
        writes="chat_example(tokenizer, question, answer) -> (inputs, labels) lists",
        cases=_chat_cases, solution=S.chat_example, expect=_chat_truth, rtol=0, atol=0,
        hints=("EOS, then the chat template's prompt (with the generation prompt), then the "
               "answer and EOS; inputs drop the last token, labels mask the prompt.",
               "prompt = [eos] + encode(apply_chat_template(..., add_generation_prompt=True)); "
               "reply = encode(' ' + answer) + [eos]; labels as in mask_prompt_labels."),
        mistakes=(
            Mistake(_chat_variant(space=False), "The answer lost its leading space: encode "
                    "' ' + answer, as it appears in running text."),
            Mistake(_chat_variant(eos=False), "No EOS after the answer: without it the model "
                    "never learns to stop."),
            Mistake(_chat_variant(mask=False), "The prompt is not masked: its labels must be "
                    "-100."),
        )),
    Exercise(
        id="04.masked_mean_loss", title="masked mean loss",
        writes="masked_mean_loss(token_losses, labels) -> 0-d tensor",
        cases=_loss_label_cases, solution=S.masked_mean_loss,
        hints=("Only positions with a real label count.",
               "keep = labels != -100; loss = token_losses[keep].sum() / keep.sum()."),
        mistakes=(
            Mistake(lambda x, y: x.mean(), "You averaged over every position, the masked prompt "
                    "too; keep only labels != -100."),
            Mistake(lambda x, y: x[y != -100].sum(), "You summed the kept losses; divide by how "
                    "many there are."),
            Mistake(_row_means, "You averaged each row first: every answer token should count "
                    "the same, so average over all kept tokens at once."),
        )),
]

# ----------------------------------------------------------------------------- 05 scaling


def _power_law_cases(rng):
    cases = []
    for i in range(4):
        n = np.geomspace(10 ** rng.uniform(4, 5), 10 ** rng.uniform(7, 8), int(rng.integers(5, 9)))
        A, alpha = rng.uniform(5, 50), rng.uniform(0.1, 0.5)
        floor = 0.0 if i % 2 == 0 else rng.uniform(0.5, 2.0)
        loss = floor + A * n ** -alpha * np.exp(rng.normal(0, 0.05, len(n)))
        cases.append((n, loss, floor))
    return cases


def _linear_space_fit(n, loss, floor=0.0):
    """The usual mistake: least squares on the loss itself, which lets the smallest models'
    large losses dominate the fit."""
    from scipy.optimize import curve_fit

    start = S.fit_power_law(n, loss, floor)
    (A, alpha), _ = curve_fit(lambda x, A, a: floor + A * x ** -a, n, loss, p0=start,
                              maxfev=20000)
    return float(A), float(alpha)


def _law_cases(rng):
    from ..methods.scaling import ChinchillaLaw

    return [(10 ** rng.uniform(15, 24),
             ChinchillaLaw(E=rng.uniform(0.5, 2), A=rng.uniform(100, 600), B=rng.uniform(100, 2500),
                           alpha=rng.uniform(0.25, 0.4), beta=rng.uniform(0.25, 0.4)))
            for _ in range(5)]


def _optimal(key):
    return lambda c, law: float(law.optimal(c)[key])


EX05 = [
    Exercise(
        id="05.fit_power_law", title="power-law fit",
        writes="fit_power_law(n, loss, floor) -> (A, alpha)",
        cases=_power_law_cases, solution=S.fit_power_law, rtol=1e-3,
        hints=("A power law is a straight line in log-log space, once the floor is taken off.",
               "polyfit(log n, log(loss - floor), 1) -> slope, intercept; "
               "A = exp(intercept), alpha = -slope."),
        mistakes=(
            Mistake(_linear_space_fit, "That is a fit in linear space (least squares on the loss "
                    "itself); fit a straight line to the logs instead."),
            Mistake(lambda n, y, e: S.fit_power_law(n, y, 0.0), "You did not subtract the floor: "
                    "fit log(loss − floor), not log(loss)."),
            Mistake(lambda n, y, e: (S.fit_power_law(n, y, e)[0], -S.fit_power_law(n, y, e)[1]),
                    "alpha has the wrong sign: loss = A·N^(−alpha), so alpha is minus the "
                    "slope."),
            Mistake(lambda n, y, e: (math.log(S.fit_power_law(n, y, e)[0]),
                                     S.fit_power_law(n, y, e)[1]),
                    "Your A is log A: exponentiate the intercept."),
        )),
    Exercise(
        id="05.six_nd", title="6ND",
        writes="six_nd(n_params, tokens) -> float",
        cases=lambda rng: [(int(10 ** rng.uniform(5, 9)), int(10 ** rng.uniform(7, 11)))
                           for _ in range(5)],
        solution=S.six_nd,
        hints=("Count FLOPs per weight per token, forward and backward.",
               "C = 6 · N · D: 2 forward, 4 backward."),
        mistakes=(Mistake(lambda n, d: 2 * n * d, "That is the forward pass only (2·N·D); the "
                          "backward pass costs twice as much again."),
                  Mistake(lambda n, d: n * d, "N·D counts weight-token pairs; each costs 6 FLOPs "
                          "in training."))),
    Exercise(
        id="05.compute_optimal_size", title="compute-optimal size",
        writes="compute_optimal_size(flops, law) -> float",
        cases=_law_cases, solution=S.compute_optimal_size, expect=_optimal("n_opt"),
        hints=("Minimise the law's loss along C = 6·N·D; the optimum is a power of the budget.",
               "N_opt = G · (C/6)^(β/(α+β)) with G = (α·A / (β·B))^(1/(α+β))."),
        mistakes=(
            Mistake(lambda c, law: math.sqrt(c / 120), "That is the 20-tokens-per-parameter rule "
                    "of thumb, not this law's optimum; use its α, β, A and B."),
            Mistake(_optimal("d_opt"), "That is the optimal number of tokens D, not parameters N "
                    "(exponents swapped?)."),
            Mistake(lambda c, law: S.compute_optimal_size(6 * c, law), "You used C where the "
                    "formula has C/6 (C = 6·N·D)."),
        )),
]

# ----------------------------------------------------------------------------- 06 distillation


def _kd_cases(rng):
    cases = []
    for _ in range(4):
        b, t, v = int(rng.integers(1, 4)), int(rng.integers(2, 6)), int(rng.integers(5, 20))
        cases.append((2 * torch.randn(b, t, v), 2 * torch.randn(b, t, v),
                      float(rng.choice([2.0, 3.0, 4.0, 0.5]))))  # never 1: T² must show
    return cases


def _kl_with(forward=True, T2=True, soften=True, mean=True):
    def wrong(s, t, T):
        k = T if soften else 1.0
        log_q, log_p = torch.log_softmax(s / k, -1), torch.log_softmax(t / k, -1)
        a, b = (log_p, log_q) if forward else (log_q, log_p)
        per_pos = (a.exp() * (a - b)).sum(-1)
        total = per_pos.mean() if mean else per_pos.sum() / s.shape[0]  # batchmean over B only
        return total * (T * T if T2 else 1.0)
    return wrong


def _distill(name):
    def truth(*args):
        from ..methods import distill

        return getattr(distill, name)(*args)
    return truth


EX06 = [
    Exercise(
        id="06.soften", title="softened distribution",
        writes="soften(logits, temperature) -> tensor like logits",
        cases=lambda rng: [(2 * torch.randn(int(rng.integers(1, 4)), int(rng.integers(4, 12))),
                            float(rng.choice([0.5, 2.0, 3.0, 5.0]))) for _ in range(4)],
        solution=S.soften, expect=_distill("soften"),
        hints=("The temperature flattens the distribution before the softmax.",
               "softmax(logits / T, dim=-1)."),
        mistakes=(Mistake(lambda z, T: torch.softmax(z * T, -1), "You multiplied the logits by "
                          "T; divide them (T > 1 must flatten)."),
                  Mistake(lambda z, T: torch.softmax(z, -1), "The temperature is missing."))),
    Exercise(
        id="06.kd_forward_kl", title="KD loss (forward KL)",
        writes="kd_forward_kl(student_logits, teacher_logits, temperature) -> 0-d tensor",
        cases=_kd_cases, solution=S.kd_forward_kl, expect=_distill("forward_kl"),
        hints=("Soften both, compare the teacher's distribution to the student's, and keep the "
               "gradient's size independent of T.",
               "T² · mean over positions of Σ_v p_T · (log p_T − log q_T), p teacher, "
               "q student."),
        mistakes=(
            Mistake(_kl_with(T2=False), "Off by exactly T² — did you forget the T² factor?"),
            Mistake(_kl_with(forward=False), "That is the reverse KL, KL(q‖p); Hinton's loss "
                    "weighs the log-ratio by the teacher's p."),
            Mistake(_kl_with(soften=False), "The logits are not divided by T before the softmax."),
            Mistake(_kl_with(mean=False), "You summed over positions and divided by the batch "
                    "only (KLDiv's 'batchmean' on 3-d logits); average over every position."),
        )),
    Exercise(
        id="06.reverse_kl", title="reverse KL",
        writes="reverse_kl(student_logits, teacher_logits, temperature) -> 0-d tensor",
        cases=_kd_cases, solution=S.reverse_kl, expect=_distill("reverse_kl"),
        hints=("Same pieces as the forward KL, but the student's own distribution weighs it.",
               "T² · mean over positions of Σ_v q_T · (log q_T − log p_T)."),
        mistakes=(
            Mistake(_kl_with(forward=True), "That is the forward KL, KL(p‖q); the reverse one "
                    "is weighed by the student's q."),
            Mistake(_kl_with(forward=False, T2=False), "Off by exactly T² — did you forget the "
                    "T² factor?"),
        )),
    Exercise(
        id="06.gap_closed", title="gap closed",
        writes="gap_closed(scratch_loss, student_loss, teacher_loss) -> float",
        cases=lambda rng: [tuple(float(x) for x in (s, s - rng.uniform(0, 1) * g, s - g))
                           for s, g in rng.uniform([1, 0.1], [3, 1], size=(5, 2))],
        solution=S.gap_closed, expect=_distill("gap_closed"),
        hints=("How much of the way from scratch to teacher did the student go?",
               "(scratch − student) / (scratch − teacher)."),
        mistakes=(Mistake(lambda s, st, t: (st - t) / (s - t), "That is the gap left, not the "
                          "gap closed (you computed one minus it)."),
                  Mistake(lambda s, st, t: 100 * (s - st) / (s - t), "A fraction, please, not a "
                          "percentage."))),
]

# ----------------------------------------------------------------------------- 07 which upgrade?

OPTIONS = ("prompting", "full fine-tuning", "LoRA", "larger model", "distillation")

# Why each reference decision is made, phrased as a question: a learner who got a scenario of
# that kind wrong reads the question, not the answer.
_NUDGES = {
    "prompting": "a scenario with no training examples, or where a good instruction already "
                 "does the job: what does training buy there?",
    "distillation": "a scenario where the quality is there but the model is too slow to serve: "
                    "which lever keeps that quality in a smaller model?",
    "larger model": "a model weak at everything, with a large compute budget: can adapting it "
                    "to a domain add general capacity?",
    "LoRA": "few examples, tight memory, or general skills to keep: which way of training "
            "forgets less and stores almost no optimizer state?",
    "full fine-tuning": "many examples, memory to spare and forgetting acceptable: is a "
                        "low-rank update still the best use of them?",
}


def _scenarios(rng):
    out = []
    for _ in range(40):
        out.append(({
            "examples": int(rng.choice([0, 50, 300, 2000, 20000])),
            "prompting_ok": bool(rng.random() < 0.15),
            "too_slow_to_serve": bool(rng.random() < 0.2),
            "weak_everywhere": bool(rng.random() < 0.3),
            "compute": str(rng.choice(["small", "large"])),
            "keep_general": bool(rng.random() < 0.35),
            "memory_for_full": bool(rng.random() < 0.65),
        },))
    return out


def _option_problem(answer) -> str | None:
    if answer not in OPTIONS:
        return (f"expected one of {', '.join(repr(o) for o in OPTIONS)}, got "
                f"{answer!r}." if isinstance(answer, str) else
                f"expected one of the option strings, got {_describe(answer)}.")
    return None


def _describe(x):
    from .grader import describe

    return describe(x)


def scenario_nudge(scenario) -> str:
    """The question that leads to the reference decision for ``scenario`` (no answer in it)."""
    return _NUDGES[S.choose_upgrade(scenario)]


def _pareto_cases(rng):
    cases = []
    for _ in range(5):
        k = int(rng.integers(4, 9))
        cost, loss = rng.uniform(1, 100, k), rng.uniform(0.2, 3, k)
        cases.append(([{"name": f"option{i}", "cost": float(c), "loss": float(v)}
                       for i, (c, v) in enumerate(zip(cost, loss))],))
    return cases


EX07 = [
    Exercise(
        id="07.choose_upgrade", title="which upgrade?",
        writes="choose_upgrade(scenario: dict) -> one of " + ", ".join(OPTIONS),
        cases=_scenarios, solution=S.choose_upgrade, validate=_option_problem,
        hints=("Decide in order: is training needed at all? Is the cost of serving the problem? "
               "Is the gap general or only the domain's? Then: how many examples, how much "
               "memory, and may it forget?",
               "prompting if no examples or prompting suffices; distillation if too slow to "
               "serve; larger model if weak everywhere and compute is large; LoRA if few "
               "examples (< 1000), tight memory or general skills to keep; else full "
               "fine-tuning."),
        explain=lambda args: "Look again at " + scenario_nudge(args[0])),
    Exercise(
        id="07.adamw_state_bytes", title="AdamW state",
        writes="adamw_state_bytes(trainable_params, bytes_per_value) -> int",
        cases=lambda rng: [(int(10 ** rng.uniform(3, 8)), int(rng.choice([2, 4])))
                           for _ in range(5)],
        solution=S.adamw_state_bytes, rtol=0, atol=0,
        hints=("AdamW keeps running statistics for every parameter that trains.",
               "2 moments (m and v) × bytes per value × trainable parameters."),
        mistakes=(Mistake(lambda n, b: b * n, "AdamW keeps two moments per parameter, m and v; "
                          "you counted one."),
                  Mistake(lambda n, b: 4 * b * n, "You counted weights and gradients too; the "
                          "question is the optimizer's state alone."),
                  Mistake(lambda n, b: 16 * b * n, "That is in bits; the answer is in bytes."))),
    Exercise(
        id="07.pareto_front", title="Pareto front",
        writes="pareto_front(options: list of {'name', 'cost', 'loss'}) -> list of names",
        cases=_pareto_cases, solution=S.pareto_front, unordered=True,
        hints=("Keep an option unless another one is at least as cheap *and* at least as good.",
               "o is dominated if some p has p.cost ≤ o.cost and p.loss ≤ o.loss, one "
               "strictly."),
        mistakes=(Mistake(lambda opts: [o["name"] for o in opts], "You kept every option; drop "
                          "those another option beats on both cost and loss."),
                  Mistake(lambda opts: [min(opts, key=lambda o: o["loss"])["name"]], "Only the "
                          "best-loss option: cheaper ones that nothing beats belong too."))),
]

EXERCISES = _register(*EX01, *EX02, *EX03, *EX04, *EX05, *EX06, *EX07)

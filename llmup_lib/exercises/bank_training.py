"""The exercises of notebooks 00–04 (start here, the baseline, full fine-tuning, LoRA, instruction tuning):
hidden cases, ground truth, hints and recognised mistakes. Registered by ``bank``.

Each ``Mistake`` is a small wrong implementation (the one learners really write); when it
reproduces every wrong answer the grader names it. The ground truth is the package's own
implementation where one exists (``instructions.instruction_rows``, ``peft``'s LoRA layer), so a
reference solution that drifted from the package would fail its own test.
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


# ----------------------------------------------------------------------------- 00 start here


def _small_models(rng):
    """Embedding -> Linear -> output layer: tied (one tensor, two layers) or not, some frozen."""
    cases = []
    for tied, frozen in ((True, False), (False, True), (True, True), (False, False)):
        vocab, width = int(rng.integers(10, 60)), int(rng.integers(4, 17))
        model = torch.nn.ModuleDict({"embed": torch.nn.Embedding(vocab, width),
                                     "block": torch.nn.Linear(width, width),
                                     "head": torch.nn.Linear(width, vocab, bias=False)})
        if tied:
            model["head"].weight = model["embed"].weight
        if frozen:
            model["block"].requires_grad_(False)
        cases.append((model,))
    return cases


EX00 = [
    Exercise(
        id="00.count_parameters", title="parameter count",
        writes="count_parameters(model) -> int",
        cases=_small_models, solution=S.count_parameters, rtol=0, atol=0,
        hints=("Every parameter tensor has .numel() numbers; model.parameters() lists the "
               "tensors, and a tensor shared by two layers only once.",
               "count = sum(p.numel() for p in model.parameters())"),
        mistakes=(
            Mistake(lambda m: sum(p.numel() for _, p in m.named_parameters(remove_duplicate=False)),
                    "A tied output layer shares its tensor with the embedding: you counted it "
                    "twice. Count each tensor once."),
            Mistake(lambda m: sum(p.numel() for p in m.parameters() if p.requires_grad),
                    "You counted only the trainable parameters; frozen ones are still part of "
                    "the model."),
            Mistake(lambda m: len(list(m.parameters())), "That is the number of tensors; count "
                    "the numbers inside them (.numel())."),
        )),
]


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
    from ..tasks.instructions import instruction_rows

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

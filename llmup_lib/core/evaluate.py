"""How good is a model, and what does it cost to run?

Loss and perplexity are per token, so they depend on the tokenizer. Bits per character do not:
``bpc = loss / ln 2 · tokens / characters``. On the suite's generated corpora we also know the
*true* entropy in bits per character (the generator's own log-probabilities), so the gap
``bpc − floor`` is exactly how much a model could still learn.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict

import torch

from .tokenizer import pack_blocks, tokenize_corpus
from .train import eval_loss


def count_tokens_per_char(texts: list[str], tokenizer) -> float:
    """Tokens (EOS included) per character: the factor from per-token to per-character loss."""
    return len(tokenize_corpus(texts, tokenizer)) / sum(len(t) for t in texts)


def language_model_metrics(model, tokenizer, texts: list[str], context: int,
                           batch_size: int = 16, floor_bpc: float | None = None) -> dict:
    """Loss (nats/token), perplexity, bits per character and, given the floor, the gap to it."""
    blocks = pack_blocks(texts, tokenizer, context)
    loss = eval_loss(model, blocks, batch_size)
    return _metrics(loss, count_tokens_per_char(texts, tokenizer), floor_bpc)


def _metrics(loss: float, tokens_per_char: float, floor_bpc: float | None) -> dict:
    """Loss (nats/token), perplexity, bits per character and, given the floor, the gap to it."""
    bpc = loss / math.log(2) * tokens_per_char
    out = {"loss": loss, "perplexity": math.exp(loss), "bits_per_char": bpc,
           "tokens_per_char": tokens_per_char}
    if floor_bpc is not None:
        out["floor_bpc"] = floor_bpc
        out["gap_bpc"] = bpc - floor_bpc
    return out


@torch.no_grad()
def whole_document_losses(model, tokenizer, texts: list[str], batch_size: int = 32
                          ) -> tuple[torch.Tensor, torch.Tensor]:
    """Each document scored alone, from its start: its tokens and its closing EOS, predicted
    after one boundary token (EOS) with no other document in view. Returns the nats of each
    document and the number of tokens scored in it.

    Packed blocks (``pack_blocks``) cut documents wherever a block ends, so a token after a cut
    is predicted without its document's beginning (the protagonist, the condition): the floor of
    what packing scores is higher than the world's, by a *packing term* notebook 01 measures.
    Scored whole, a document's floor is exactly its generator log-probability."""
    validate_prompts(texts, "texts")
    eos = tokenizer.eos_token_id
    limit = getattr(model.config, "max_position_embeddings", None)
    encoded = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    docs = [[eos, *ids, eos] for ids in encoded]
    too_long = [i for i, d in enumerate(docs) if limit is not None and len(d) - 1 > limit]
    if too_long:
        raise ValueError(f"Document {too_long[0]} is {len(docs[too_long[0]]) - 2} tokens, longer "
                         f"than the model's context ({limit}) with its boundary and EOS; score it "
                         "in packed blocks (language_model_metrics) or use a longer context.")
    device = next(model.parameters()).device
    model.eval()
    nats, counts = torch.zeros(len(docs), dtype=torch.float64), torch.zeros(len(docs))
    for start in range(0, len(docs), batch_size):
        chunk = docs[start:start + batch_size]
        width = max(len(d) for d in chunk) - 1
        x = torch.full((len(chunk), width), eos, device=device)
        y = torch.full((len(chunk), width), -100, device=device)
        for row, d in enumerate(chunk):  # right-padded: causal attention never sees the padding
            x[row, :len(d) - 1] = torch.tensor(d[:-1])
            y[row, :len(d) - 1] = torch.tensor(d[1:])
        logits = model(input_ids=x).logits.float()
        per_token = torch.nn.functional.cross_entropy(logits.transpose(1, 2), y, reduction="none",
                                                      ignore_index=-100)
        nats[start:start + len(chunk)] = per_token.sum(1).double().cpu()
        counts[start:start + len(chunk)] = (y != -100).sum(1).float().cpu()
    return nats, counts


def whole_document_metrics(model, tokenizer, texts: list[str], floor_bpc: float | None = None,
                           batch_size: int = 32) -> dict:
    """``language_model_metrics`` on whole documents (``whole_document_losses``): the loss per
    token, bits per character and, given the floor, the gap to it, with no packing term."""
    nats, counts = whole_document_losses(model, tokenizer, texts, batch_size)
    chars = sum(len(t) for t in texts)
    return _metrics(float(nats.sum() / counts.sum()), float(counts.sum()) / chars, floor_bpc)


@torch.no_grad()
def sequence_logprobs(model, tokenizer, prompts: list[str], continuations: list[str],
                      batch_size: int = 64) -> list[float]:
    """log p(continuation | EOS + prompt), summed over the continuation's tokens."""
    eos = tokenizer.eos_token_id
    device = next(model.parameters()).device
    pairs = [([eos, *tokenizer.encode(p, add_special_tokens=False)],
              tokenizer.encode(c, add_special_tokens=False)) for p, c in zip(prompts, continuations)]
    model.eval()
    scores = []
    for i in range(0, len(pairs), batch_size):
        chunk = pairs[i:i + batch_size]
        width = max(len(p) + len(c) for p, c in chunk)
        ids = torch.full((len(chunk), width), eos, dtype=torch.long)
        labels = torch.full((len(chunk), width), -100, dtype=torch.long)
        for row, (p, c) in enumerate(chunk):  # right-padded: causal attention ignores the pad
            ids[row, :len(p) + len(c)] = torch.tensor(p + c)
            labels[row, len(p):len(p) + len(c)] = torch.tensor(c)
        logp = torch.log_softmax(model(input_ids=ids.to(device)).logits[:, :-1].float(), -1)
        target = labels[:, 1:].to(device)
        picked = logp.gather(-1, target.clamp(min=0)[..., None])[..., 0] * (target != -100)
        scores.extend(picked.sum(-1).tolist())
    return scores


def fact_accuracy(model, tokenizer, facts: list[dict]) -> dict:
    """Multiple-choice fact probe: after ``context + prompt``, is the true answer the most likely
    of all answers of the same relation? Returns accuracy, per relation, and the chance level."""
    candidates = defaultdict(set)
    for f in facts:
        candidates[f["relation"]].add(f["answer"])
    prompts, conts, owners = [], [], []
    for i, f in enumerate(facts):
        for c in sorted(candidates[f["relation"]]):
            prompts.append(f.get("context", "") + f["prompt"])
            conts.append(c)
            owners.append((i, c))
    scores = sequence_logprobs(model, tokenizer, prompts, conts)
    best = {}
    for (i, c), s in zip(owners, scores):
        if i not in best or s > best[i][1]:
            best[i] = (c, s)
    correct = [best[i][0] == f["answer"] for i, f in enumerate(facts)]
    by_relation = defaultdict(list)
    for f, ok in zip(facts, correct):
        by_relation[f["relation"]].append(ok)
    chance = sum(1 / len(candidates[f["relation"]]) for f in facts) / max(len(facts), 1)
    return {"accuracy": sum(correct) / max(len(facts), 1), "chance": chance,
            "by_relation": {r: sum(v) / len(v) for r, v in sorted(by_relation.items())}}


def _prompt_ids(tokenizer, prompt: str) -> list[int]:
    """The prompt's token ids after a document boundary: the tokenizer's BOS when it has one,
    else EOS, not doubled when the prompt already starts with it."""
    ids = tokenizer.encode(prompt, add_special_tokens=False)
    boundary = tokenizer.bos_token_id if tokenizer.bos_token_id is not None \
        else tokenizer.eos_token_id
    return ids if ids and ids[0] == boundary else [boundary, *ids]


def validate_prompt_length(model, n_tokens: int, what: str = "The prompt") -> None:
    """Refuse a prompt longer than the model's context (``max_position_embeddings``): positions
    past it were never trained, so the answer would be noise, not an error."""
    limit = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    if limit is not None and n_tokens > limit:
        raise ValueError(f"{what} is {n_tokens} tokens but the model's context is {limit}; "
                         f"shorten it (e.g. fewer few-shot examples) to at most {limit} tokens.")


@torch.no_grad()
def generate(model, tokenizer, prompt: str, max_new_tokens: int = 60, temperature: float = 1.0,
             top_k: int | None = None, seed: int = 0, greedy: bool = False) -> str:
    """Continue ``prompt`` (after a document boundary); returns only the new text.

    The boundary is the tokenizer's BOS when it has one (Hub models such as SmolLM2), else EOS
    (the suite's tokenizers end every document with it); it is not doubled when the prompt
    already starts with it (a chat prompt that opens with ``<|im_start|>``)."""
    if not greedy and temperature <= 0:
        raise ValueError(f"temperature={temperature} must be > 0; use greedy=True for argmax.")
    torch.manual_seed(seed)
    ids = _prompt_ids(tokenizer, prompt)
    validate_prompt_length(model, len(ids))
    device = next(model.parameters()).device
    model.eval()
    out = model.generate(
        torch.tensor([ids], device=device), attention_mask=torch.ones(1, len(ids), device=device,
                                                                       dtype=torch.long),
        max_new_tokens=max_new_tokens, do_sample=not greedy,
        temperature=None if greedy else temperature, top_k=None if greedy else top_k,
        top_p=None, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
    )
    return tokenizer.decode(out[0, len(ids):], skip_special_tokens=True)


def validate_prompts(prompts, what: str = "prompts") -> None:
    """A list of strings; one string would be read as a list of characters (one answer each)."""
    if isinstance(prompts, (str, bytes)):
        raise ValueError(f"{what} is one string ({prompts[:40]!r}), not a list of them, so each "
                         f"character would get an answer; pass a list, e.g. [{prompts[:20]!r}].")
    if not all(isinstance(p, str) for p in prompts):
        raise ValueError(f"{what} must all be strings; got "
                         f"{sorted({type(p).__name__ for p in prompts})}.")


@torch.no_grad()
def generate_greedy(model, tokenizer, prompts: list[str], max_new_tokens: int = 60,
                    batch_size: int = 64) -> list[str]:
    """Greedy continuations of many prompts, ``batch_size`` at a time: the same text as
    ``generate(..., greedy=True)`` one prompt at a time (each prompt after a document boundary,
    left-padded and masked, so its positions and attention are its own), about 10x faster for
    the suite's small models on a CPU, where a decoding step costs the same for 1 or 64 rows."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
        raise ValueError(f"batch_size={batch_size!r} must be a positive whole number; pass e.g. "
                         "64.")
    validate_prompts(prompts)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    encoded = [_prompt_ids(tokenizer, prompt) for prompt in prompts]
    for i, ids in enumerate(encoded):
        validate_prompt_length(model, len(ids), f"Prompt {i}")
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))  # less padding
    device = next(model.parameters()).device
    model.eval()
    texts: dict[int, str] = {}
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        width = max(len(encoded[i]) for i in chunk)
        ids = torch.tensor([[pad] * (width - len(encoded[i])) + encoded[i] for i in chunk],
                           device=device)
        mask = torch.tensor([[0] * (width - len(encoded[i])) + [1] * len(encoded[i])
                             for i in chunk], device=device)
        out = model.generate(ids, attention_mask=mask, max_new_tokens=max_new_tokens,
                             do_sample=False, temperature=None, top_k=None, top_p=None,
                             pad_token_id=pad, eos_token_id=tokenizer.eos_token_id)
        for i, row in zip(chunk, out):
            texts[i] = tokenizer.decode(row[width:], skip_special_tokens=True)
    return [texts[i] for i in range(len(encoded))]


def exact_match(model, tokenizer, questions: list[str], answers: list[str], prompt_fn,
                max_new_tokens: int = 16) -> dict:
    """Greedy answers to ``prompt_fn(question)``, cut at the first newline, vs the gold answers."""
    validate_prompts(questions, "questions")
    preds = [text.split("\n")[0].strip() for text in
             generate_greedy(model, tokenizer, [prompt_fn(q) for q in questions], max_new_tokens)]
    hits = [p == a.strip() for p, a in zip(preds, answers)]
    return {"accuracy": sum(hits) / max(len(hits), 1), "predictions": preds}


@torch.no_grad()
def generation_times(model, tokenizer, batch_size: int = 1, new_tokens: int = 64,
                     repeats: int = 3) -> list[float]:
    """Seconds for greedy decoding of ``new_tokens`` for ``batch_size`` sequences at once, with
    the KV cache: ``repeats`` timed runs after one warm-up run."""
    device = next(model.parameters()).device
    ids = torch.full((batch_size, 1), tokenizer.eos_token_id, device=device)
    model.eval()
    times = []
    for _ in range(repeats + 1):
        t0 = time.perf_counter()
        model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=new_tokens,
                       min_new_tokens=new_tokens, do_sample=False,
                       pad_token_id=tokenizer.pad_token_id)
        times.append(time.perf_counter() - t0)
    return times[1:]  # the first run warms up


def generation_speed(model, tokenizer, new_tokens: int = 64, repeats: int = 3) -> dict:
    """Greedy decoding speed with the KV cache, batch 1: median tokens/s and ms per token."""
    times = sorted(generation_times(model, tokenizer, 1, new_tokens, repeats))
    median = times[len(times) // 2]
    return {"tokens_per_second": new_tokens / median, "ms_per_token": 1000 * median / new_tokens}

"""Instruction data: chat-formatted prompts, answers as running text, and ``(inputs, labels)``
rows with the prompt's loss masked; greedy answers of a chat model; notebook 04's arms, trained
and scored the same way by the notebook and by ``experiment tune --task instructions``."""

from __future__ import annotations

import torch


def chat_prompt(tokenizer, question: str) -> str:
    """The chat-formatted prompt of one user turn, ending where the assistant starts writing."""
    return tokenizer.apply_chat_template([{"role": "user", "content": question}],
                                         add_generation_prompt=True, tokenize=False)


def chat_answer(answer: str) -> str:
    # A leading space: the answer is tokenized as it is in running text (" Oakville"), so what
    # pretraining stored under those tokens can be reused.
    return " " + answer.strip()


def instruction_rows(tokenizer, questions, answers, mask_prompt: bool = True,
                     width: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(inputs, labels)`` for chat examples, one example per row, right-padded.

    With ``mask_prompt`` the labels are -100 on the prompt (the model is not trained to write
    questions), so the loss is the answer's (and its closing EOS) alone.
    """
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    rows = []
    for q, a in zip(questions, answers):
        prompt = [eos, *tokenizer.encode(chat_prompt(tokenizer, q), add_special_tokens=False)]
        answer = [*tokenizer.encode(chat_answer(a), add_special_tokens=False), eos]
        rows.append((prompt, answer))
    if not rows:
        raise ValueError("No instruction examples given; pass at least one question and answer.")
    longest = max(len(p) + len(a) for p, a in rows)
    width = width or longest
    if longest > width:
        raise ValueError(f"An example has {longest} tokens, more than width={width}; raise width.")
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    for i, (p, a) in enumerate(rows):
        seq = torch.tensor(p + a)
        ids[i, :len(seq)] = seq
        first_label = len(p) if mask_prompt else 1
        labels[i, first_label:len(seq)] = seq[first_label:]
    # Next-token targets: position t predicts token t+1.
    return ids[:, :-1], labels[:, 1:]


def answer_questions(model, tokenizer, questions, max_new_tokens: int = 12) -> list[str]:
    """Greedy answers of a chat model, cut at its end-of-turn (many questions at once)."""
    from ..core.evaluate import generate_greedy, validate_prompts

    validate_prompts(questions, "questions")
    prompts = [chat_prompt(tokenizer, q) for q in questions]
    return [text.strip() for text in generate_greedy(model, tokenizer, prompts, max_new_tokens)]


# ----------------------------------------------------------------------------- the tuning task
# Notebook 04's arms, the methods ``tune --task instructions`` sweeps: full fine-tuning and LoRA
# (rank 8, all linear layers) with the prompt's loss masked, and LoRA with the prompt counted.
# Each trains INSTRUCTION_STEPS steps of INSTRUCTION_BATCH rows. The seed sets the batch order
# and LoRA's random A; full fine-tuning starts from the same base every seed.
INSTRUCTION_METHODS = ("full", "lora-r8", "lora-r8-unmasked")
INSTRUCTION_STEPS, INSTRUCTION_BATCH, LORA_RANK = 100, 32, 8
TRAINED_ASKED = 100  # trained questions scored per run (a fixed sample)
MAX_ANSWER_TOKENS = 24


def validate_method(method) -> str:
    if method not in INSTRUCTION_METHODS:  # a tuple: an unhashable value is refused too
        raise ValueError(f"Unknown instruction-tuning method {method!r}; use one of "
                         f"{', '.join(INSTRUCTION_METHODS)}.")
    return method


def instruction_tuning_data(profile, tokenizer) -> dict:
    """Everything an instruction-tuning run needs, built once: notebook 02's prepared base, the
    masked and unmasked rows of the training questions, the trained questions scored (a fixed
    sample of ``TRAINED_ASKED``) and the held-out world questions."""
    from ..tasks.domain import prepared_base
    from ..world.stories import instruction_set

    qa = instruction_set()
    questions, responses = list(qa["train"]["question"]), list(qa["train"]["response"])
    test = qa["test"]
    return {"base": prepared_base(profile, tokenizer)[0], "tokenizer": tokenizer,
            "masked": instruction_rows(tokenizer, questions, responses, mask_prompt=True),
            "unmasked": instruction_rows(tokenizer, questions, responses, mask_prompt=False),
            "trained": qa["train"].shuffle(seed=0).select(range(TRAINED_ASKED)),
            "heldout": test.select([i for i, k in enumerate(test["kind"]) if k == "world"])}


def instruction_model(method: str, base, seed: int):
    """A fresh trainable copy of ``base`` for ``method`` (``seed`` draws LoRA's A)."""
    from ..methods.finetune import full_finetune_model
    from ..methods.lora import lora_model

    if validate_method(method) == "full":
        return full_finetune_model(base)
    torch.manual_seed(seed)  # the adapter's random A
    return lora_model(base, LORA_RANK, targets="all-linear")


def instruction_train(method: str, lr: float, seed: int, data: dict):
    """Train one arm (``TrainResult``): the notebook and the sweep both train through here, so a
    notebook run at a table's rate and seed is that table's row."""
    from ..core.train import TrainConfig, train

    rows = data["unmasked" if method.endswith("-unmasked") else "masked"]
    cfg = TrainConfig(steps=INSTRUCTION_STEPS, batch_size=INSTRUCTION_BATCH, lr=lr, seed=seed,
                      progress=False)
    return train(instruction_model(method, data["base"], seed), rows, None, cfg)


def exact_match_share(model, tokenizer, rows) -> float:
    """Share of ``rows``' questions answered with exactly the expected sentence (greedy)."""
    answers = answer_questions(model, tokenizer, rows["question"], MAX_ANSWER_TOKENS)
    return sum(a == r for a, r in zip(answers, rows["response"])) / len(rows)


def instruction_tune_run(method: str, lr: float, seed: int, data: dict, profile=None) -> dict:
    """One row of the instructions tuning table: train, then score exact match on the trained
    questions and on the held-out world questions."""
    import time

    start = time.perf_counter()
    model = instruction_train(method, lr, seed, data).model
    em_trained = exact_match_share(model, data["tokenizer"], data["trained"])
    return {"method": method, "lr": lr, "seed": seed, "steps": INSTRUCTION_STEPS,
            "em_trained": em_trained, "trained_error": round(1 - em_trained, 6),
            "em_heldout": exact_match_share(model, data["tokenizer"], data["heldout"]),
            "train_seconds": round(time.perf_counter() - start, 1)}


def arm_points(table: dict, method: str) -> list[dict]:
    """``method``'s runs in an instructions tuning table, one point per rate (sorted): ``lr``,
    the seed count ``n`` and the mean and seed deviation of ``em_trained`` and ``em_heldout``:
    the arm's curve of held-out against trained exact match over its rates."""
    from ..experiments.runner import rate_stats

    validate_method(method)
    rows = [r for r in table["rows"] if r["method"] == method]
    if not rows:
        raise ValueError(f"The table has no runs of {method!r}; it has "
                         f"{sorted({r['method'] for r in table['rows']})}.")
    stats = {m: rate_stats(rows, "method", m)[method] for m in ("em_trained", "em_heldout")}
    points = []
    for lr in sorted(stats["em_trained"]):
        point = {"method": method, "lr": lr, "n": stats["em_trained"][lr][2]}
        for m, by_rate in stats.items():
            point[m], point[m + "_std"] = by_rate[lr][:2]
        points.append(point)
    return points

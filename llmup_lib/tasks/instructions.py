"""Instruction data: chat-formatted prompts, answers as running text, and ``(inputs, labels)``
rows with the prompt's loss masked; greedy answers of a chat model (notebook 04's task)."""

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

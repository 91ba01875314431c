"""The tiny corpus the CPU tests train on, in one place: conftest's fixtures and the driver
scripts that tests run in subprocesses (resume_train.py, ddp_train.py) all build it from here,
so a run in a child process sees exactly the fixtures' data."""

import random

from llmup_lib.core.tokenizer import char_tokenizer, pack_blocks

WORDS = "the cat sat on a mat and a dog ran to the park with a red ball".split()


def tiny_texts() -> list[str]:
    rng = random.Random(0)
    return [" ".join(rng.choice(WORDS) for _ in range(40)) + "." for _ in range(120)]


def tiny_blocks(texts, tokenizer):
    """``(train, val)`` blocks of 32 tokens: all but the last 16, and the last 16."""
    blocks = pack_blocks(texts, tokenizer, 32)
    return blocks[:-16], blocks[-16:]


def tiny_data():
    """``(texts, char tokenizer, train blocks, val blocks)``."""
    texts = tiny_texts()
    tokenizer = char_tokenizer(texts)
    return (texts, tokenizer, *tiny_blocks(texts, tokenizer))

import random

import pytest
import torch

from llmup_lib.tokenizer import char_tokenizer, pack_blocks

WORDS = "the cat sat on a mat and a dog ran to the park with a red ball".split()


@pytest.fixture(scope="session")
def tiny_texts():
    rng = random.Random(0)
    return [" ".join(rng.choice(WORDS) for _ in range(40)) + "." for _ in range(120)]


@pytest.fixture(scope="session")
def char_tok(tiny_texts):
    return char_tokenizer(tiny_texts)


@pytest.fixture(scope="session")
def tiny_blocks(tiny_texts, char_tok):
    blocks = pack_blocks(tiny_texts, char_tok, 32)
    return blocks[:-16], blocks[-16:]


@pytest.fixture(autouse=True)
def _few_threads():
    torch.set_num_threads(1)  # tiny models: threads only add noise and overhead

import pytest
import torch

import tiny_data  # tests/tiny_data.py, shared with the subprocess driver scripts
from llmup_lib.core.tokenizer import char_tokenizer


@pytest.fixture(scope="session")
def tiny_texts():
    return tiny_data.tiny_texts()


@pytest.fixture(scope="session")
def char_tok(tiny_texts):
    return char_tokenizer(tiny_texts)


@pytest.fixture(scope="session")
def tiny_blocks(tiny_texts, char_tok):
    return tiny_data.tiny_blocks(tiny_texts, char_tok)


@pytest.fixture(autouse=True)
def _few_threads():
    torch.set_num_threads(1)  # tiny models: threads only add noise and overhead

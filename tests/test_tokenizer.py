import pytest
import torch

from llmup_lib.core.tokenizer import (EOS, char_tokenizer, load_tokenizer, pack_blocks, tokenize_corpus, train_bpe)


def test_bpe_round_trip_and_specials(tiny_texts):
    tok = train_bpe(tiny_texts, vocab_size=300)
    assert len(tok) == 300
    text = "the dog sat on a red mat. Ünïcode too!"  # unseen characters: bytes still cover them
    assert tok.decode(tok.encode(text, add_special_tokens=False)) == text
    assert tok.eos_token == EOS and tok.pad_token_id != tok.eos_token_id
    # BPE learned merges: common words are single tokens
    assert len(tok.encode(" the", add_special_tokens=False)) == 1


def test_bpe_is_deterministic(tiny_texts):
    a, b = train_bpe(tiny_texts, 300), train_bpe(tiny_texts, 300)
    assert a.get_vocab() == b.get_vocab()


def test_bpe_rejects_tiny_vocab(tiny_texts):
    with pytest.raises(ValueError, match="vocab_size=100"):
        train_bpe(tiny_texts, 100)


def test_chat_template():
    tok = load_tokenizer()
    msgs = [{"role": "user", "content": "Where does Mia live?"}]
    text = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    assert text == "<|user|>Where does Mia live?<|endoftext|><|assistant|>"
    ids = tok.apply_chat_template(msgs, tokenize=True, add_generation_prompt=True)
    ids = ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids
    assert tok.convert_tokens_to_ids("<|assistant|>") == ids[-1]


def test_char_tokenizer(tiny_texts):
    tok = char_tokenizer(tiny_texts)
    ids = tok.encode("the cat", add_special_tokens=False)
    assert len(ids) == len("the cat")
    assert tok.decode(ids) == "the cat"
    assert tok.decode(tok.encode("z?", add_special_tokens=False)) == "<|unk|><|unk|>"
    with pytest.raises(ValueError, match="no text"):
        char_tokenizer([])


def test_shipped_tokenizer_loads():
    tok = load_tokenizer()
    assert 300 <= len(tok) <= 1024  # merges stop early: the world has a small vocabulary
    with pytest.raises(FileNotFoundError, match="build-tokenizer"):
        load_tokenizer("/nonexistent/tok")


def test_pack_blocks_cover_the_stream(tiny_texts, char_tok):
    stream = tokenize_corpus(tiny_texts, char_tok)
    blocks = pack_blocks(tiny_texts, char_tok, 32)
    assert blocks.shape[1] == 33
    assert torch.equal(blocks[1, 0], blocks[0, -1])  # one-token overlap: labels continue
    assert blocks.flatten()[:33].tolist() == stream[:33]
    assert stream.count(char_tok.eos_token_id) == len(tiny_texts)
    with pytest.raises(ValueError, match="fewer than one block"):
        pack_blocks(["hi"], char_tok, 32)


@pytest.mark.slow  # 11 s on 2 shared cores (2026-12-04)
def test_shipped_vocabulary_is_shared_with_the_domain():
    """The base model's pretraining blocks contain the ids of >= 99 % of the clinic notes'
    tokens (the general corpus carries a tenth of health text, and the BPE was trained on it);
    stories alone would leave most of them untrained: the check can fail."""
    import torch

    from llmup_lib.core.base import general_blocks
    from llmup_lib.core.corpora import load_corpus
    from llmup_lib.tasks.domain import domain_blocks
    from llmup_lib.methods.finetune import untrained_token_ids
    from llmup_lib.core.profiles import get_profile
    from llmup_lib.core.tokenizer import load_tokenizer, pack_blocks
    from llmup_lib.world.clinic import HEALTH_OPENINGS

    profile, tok = get_profile("cpu"), load_tokenizer()
    general_train, _ = general_blocks(profile, tok)
    domain_train, _ = domain_blocks(profile, tok)

    def coverage(blocks):
        return 1 - torch.isin(domain_train, untrained_token_ids(blocks, len(tok))).float().mean()

    assert coverage(general_train) >= 0.99
    texts = load_corpus("general", n_train=profile.n_general, n_val=profile.n_val)["train"]["text"]
    stories = [t for t in texts if not t.startswith(HEALTH_OPENINGS)]
    assert coverage(pack_blocks(stories, tok, profile.context)) < 0.9


def test_the_token_stream_is_tokenised_in_chunks_without_changing_it():
    """pack_blocks tokenises a chunk of documents at a time (memory); the stream, and so every
    block, is the one-shot tokenize_corpus's, across chunk boundaries."""
    import torch

    from llmup_lib.core.tokenizer import _token_stream, load_tokenizer, pack_blocks, tokenize_corpus

    tok = load_tokenizer()
    texts = [f"Note {i}: the patient took {i} mg." for i in range(11)]
    whole = torch.tensor(tokenize_corpus(texts, tok))
    for chunk in (1, 3, 64):
        assert torch.equal(_token_stream(texts, tok, chunk=chunk), whole)
    blocks = pack_blocks(texts, tok, 8)
    n = (len(whole) - 1) // 8
    assert blocks.shape == (n, 9) and blocks.dtype == torch.long and blocks.is_contiguous()
    assert torch.equal(blocks[:, :-1].reshape(-1), whole[:n * 8])  # inputs tile the stream
    assert torch.equal(blocks[:, -1], whole[8:n * 8 + 1:8])  # each last label starts the next

import pytest
import torch

from llmup_lib.core.models import (FAMILY, build_model, count_params, flops_per_token, load_model,
                              model_config)


def test_family_spans_30x_with_six_sizes():
    counts = []
    for size in FAMILY:
        with torch.device("meta"):
            from transformers import LlamaForCausalLM

            counts.append(count_params(LlamaForCausalLM(model_config(size, 1024, 128)))["total"])
    assert len(counts) >= 6
    assert counts == sorted(counts)
    assert counts[-1] / counts[0] >= 30


def test_param_counts_match_hand_count(char_tok):
    model = build_model("pico", char_tok, 32)
    d, L, f, V = 32, 2, model.config.intermediate_size, len(char_tok)
    non_emb = L * (4 * d * d + 3 * d * f + 2 * d) + d
    assert count_params(model) == {"total": non_emb + V * d, "non_embedding": non_emb}


def test_flops_per_token_is_6n_plus_attention(char_tok):
    cfg = build_model("pico", char_tok, 32).config
    fl = flops_per_token(cfg, 32)
    assert fl["attention"] == 12 * 2 * 32 * 32
    assert fl["total"] == fl["weights"] + fl["attention"]
    assert fl["weights"] == 6 * fl["n_matmul_params"]


def test_unknown_size():
    with pytest.raises(ValueError, match=r"Unknown model size 'gigantic'.*pico"):
        model_config("gigantic", 100, 32)


def test_same_seed_same_init(char_tok):
    a, b = build_model("pico", char_tok, 32, seed=3), build_model("pico", char_tok, 32, seed=3)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_save_load_round_trip(tmp_path, char_tok):
    model = build_model("pico", char_tok, 32).eval()
    model.save_pretrained(tmp_path / "ckpt")
    loaded = load_model(tmp_path / "ckpt").eval()
    x = torch.randint(0, len(char_tok), (2, 16))
    assert torch.allclose(model(x).logits, loaded(x).logits)
    assert loaded.lm_head.weight is loaded.model.embed_tokens.weight  # still tied


def test_load_errors(tmp_path, char_tok, monkeypatch):
    with pytest.raises(ValueError, match="no config.json"):
        load_model(tmp_path)
    build_model("pico", char_tok, 32).save_pretrained(tmp_path / "bad")
    (tmp_path / "bad" / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="corrupt"):
        load_model(tmp_path / "bad")
    with pytest.raises(ValueError, match="family size"):
        load_model("small")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ValueError, match=r"'nobody/no-such-model'.*connect to the internet"):
        load_model("nobody/no-such-model")

"""A family of Llama-style models, by size, plus loading any HF checkpoint by path or Hub name.

The configs are ordinary ``transformers`` ``LlamaConfig``s (RMSNorm, rotary positions, SwiGLU,
tied input/output embeddings): the shape of today's small open models, shrunk until they train
on a laptop CPU in minutes. Each layer has about ``12·d²`` weights (4·d² attention, 8·d² SwiGLU
with hidden size ≈ 8/3·d), so the non-embedding size is ``N ≈ 12·L·d²``.
"""

from __future__ import annotations

import numbers
import os
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM, PreTrainedModel

from ..hub import hub_unreachable

# name: (layers, width, heads). Sizes span ~250x in non-embedding parameters.
FAMILY = {
    "pico": (2, 32, 2),
    "nano": (2, 48, 2),
    "micro": (3, 64, 4),
    "mini": (4, 96, 4),
    "small": (4, 128, 4),
    "base": (6, 192, 6),
    "medium": (8, 256, 8),
    "large": (12, 384, 12),
}


def _swiglu_hidden(width: int) -> int:
    # 8/3·d keeps the SwiGLU MLP at ~8·d² weights like a 4·d GELU MLP; round up to a multiple of 8.
    return -(-8 * width // 3 // 8) * 8


def model_config(size: str, vocab_size: int, context: int, **overrides) -> LlamaConfig:
    """The ``LlamaConfig`` of family member ``size``."""
    if size not in FAMILY:
        raise ValueError(f"Unknown model size {size!r}; choose one of {', '.join(FAMILY)}.")
    if isinstance(context, bool) or not isinstance(context, numbers.Integral) or context <= 0:
        raise ValueError(f"context={context!r} must be a positive whole number of tokens "
                         "(the longest block the model sees); pass e.g. 128.")
    layers, width, heads = FAMILY[size]
    kwargs = dict(
        vocab_size=vocab_size, hidden_size=width, intermediate_size=_swiglu_hidden(width),
        num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=heads,
        max_position_embeddings=context, tie_word_embeddings=True, rms_norm_eps=1e-5,
        initializer_range=0.02, bos_token_id=None, pad_token_id=None, eos_token_id=None,
    )
    kwargs.update(overrides)
    return LlamaConfig(**kwargs)


def build_model(size: str, tokenizer, context: int, seed: int = 0, **overrides) -> LlamaForCausalLM:
    """A freshly initialised family member whose vocabulary matches ``tokenizer``."""
    config = model_config(size, len(tokenizer), context, **overrides)
    config.eos_token_id = tokenizer.eos_token_id
    config.pad_token_id = tokenizer.pad_token_id
    torch.manual_seed(seed)  # the same seed gives the same initial weights
    return LlamaForCausalLM(config)


def count_params(model: PreTrainedModel) -> dict:
    """Total and non-embedding parameters (shared tensors counted once).

    Non-embedding excludes the token embedding and an untied LM head: the count scaling laws use.
    """
    total = sum(p.numel() for p in model.parameters())  # parameters() yields a tied tensor once
    emb = model.get_input_embeddings().weight
    embedding = emb.numel()
    head = model.get_output_embeddings()
    if head is not None and head.weight is not emb:
        embedding += head.weight.numel()
    return {"total": total, "non_embedding": total - embedding}


def flops_per_token(config, context: int | None = None) -> dict:
    """Training FLOPs per token of any causal LM config: ``6·N`` for the weights plus the
    attention term.

    ``N`` counts every matmul weight (``nn.Linear`` and GPT-2's ``Conv1D``), the LM head included
    (it is a ``V×d`` matmul even when tied), read off the model built on the meta device, so no
    layout is assumed and nothing is allocated. The attention scores and the weighted sum cost
    ``2·2·L·T·(heads·head_dim)`` forward per token (nanoGPT's ``12·L·d·T`` for forward +
    backward when ``heads·head_dim = d``); causal masking halves the useful part, which we ignore,
    as PaLM and nanoGPT do, and so are sliding windows. A mixture of experts counts every expert.
    """
    L = config.num_hidden_layers
    T = context or config.max_position_embeddings
    heads = config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    n_matmul = _matmul_weights(config)
    weights = 6 * n_matmul
    attention = 12 * L * T * heads * head_dim
    return {"weights": weights, "attention": attention, "total": weights + attention,
            "n_matmul_params": n_matmul}


_MATMUL_WEIGHTS: dict[tuple[str, str], int] = {}


def _matmul_weights(config) -> int:
    """Weights of every matmul in the model ``config`` describes (cached by the config's JSON)."""
    from transformers.pytorch_utils import Conv1D

    key = (type(config).__name__, config.to_json_string(use_diff=False))
    if key not in _MATMUL_WEIGHTS:
        with torch.device("meta"):  # shapes only: no memory, no initialisation
            model = AutoModelForCausalLM.from_config(config)
        _MATMUL_WEIGHTS[key] = sum(m.weight.numel() for m in model.modules()
                                   if isinstance(m, (torch.nn.Linear, Conv1D)))
    return _MATMUL_WEIGHTS[key]


def decoder_layers(model) -> tuple[str, torch.nn.ModuleList]:
    """The stack of decoder blocks of any causal LM, and its name: ``model.layers`` (Llama,
    Qwen2, Gemma2, Phi), ``transformer.h`` (GPT-2), ``gpt_neox.layers``, ``model.decoder.layers``
    (OPT). It is the outermost ``nn.ModuleList`` with one entry per layer of the config."""
    n = model.config.num_hidden_layers
    found = [(name, module) for name, module in model.named_modules()
             if isinstance(module, torch.nn.ModuleList) and len(module) == n]
    if not found:
        raise ValueError(f"{type(model).__name__} keeps its {n} decoder layers in no single "
                         "nn.ModuleList, so this helper cannot find them; pass a model whose "
                         "blocks are one ModuleList, as in every transformers causal LM.")
    return min(found, key=lambda item: item[0].count("."))


def final_norm(model) -> torch.nn.Module | None:
    """The normalisation after the last decoder block (``model.norm``, GPT-2's ``ln_f``, OPT's
    ``final_layer_norm``, Phi's ``final_layernorm``), or None when the model has none: the last
    norm module outside the decoder layers."""
    prefix, _ = decoder_layers(model)
    norms = [module for name, module in model.named_modules()
             if "norm" in type(module).__name__.lower() and not name.startswith(prefix + ".")]
    return norms[-1] if norms else None


def load_model(name_or_path: str | os.PathLike, **kwargs) -> PreTrainedModel:
    """Load a causal LM from a local checkpoint folder, a ``.gguf`` file (e.g.
    ``llmup_lib.real.smollm2_gguf_path()``, dequantised to float) or, when online, a Hub name."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # a per-tensor "Loading weights" bar is noise in a notebook
    path = Path(name_or_path)
    if path.suffix.lower() == ".gguf":
        from ..real import load_gguf_model

        return load_gguf_model(path, **kwargs)
    if path.exists():
        if not (path / "config.json").exists():
            raise ValueError(f"{str(path)!r} has no config.json, so it is not a saved model; "
                             "pass a folder written by save_pretrained.")
        try:
            return AutoModelForCausalLM.from_pretrained(str(path), **kwargs)
        except Exception as err:  # a truncated or corrupt weights file
            raise ValueError(f"Could not load the checkpoint in {str(path)!r} ({type(err).__name__}"
                             "); it looks corrupt: re-save it or rebuild it.") from err
    if str(name_or_path) in FAMILY:
        raise ValueError(f"{str(name_or_path)!r} is a family size, not a checkpoint; use "
                         f"build_model({str(name_or_path)!r}, tokenizer, context) for a fresh one.")
    message = (f"Could not load model {str(name_or_path)!r}: it is not a local folder and the "
               "Hugging Face Hub is unreachable or has no such model; connect to the internet "
               "or pass the path of a folder saved with save_pretrained.")
    if hub_unreachable():
        raise ValueError(message)
    try:
        return AutoModelForCausalLM.from_pretrained(str(name_or_path), **kwargs)
    except OSError as err:
        raise ValueError(message) from err

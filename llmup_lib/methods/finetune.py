"""Full fine-tuning, the mechanism: which weights train (all of them, or chosen layers), the
trainable-parameter count, and the repair of token embeddings the base model never trained.

Every helper that changes which weights train works on a *copy* of the model it is given, so a
notebook can start ten runs from the same base model without reloading it. LoRA is in
``methods.lora``, the clinic-note task in ``tasks.domain``, chat rows in ``tasks.instructions``,
and optimizer-state estimates and measurements in ``core.memory``.
"""

from __future__ import annotations

import copy

import torch

from ..core.models import decoder_layers, final_norm


# ----------------------------------------------------------------------------- accounting


def trainable_parameters(model) -> dict:
    """Trainable and total parameters (a tied tensor counted once) and the trainable share."""
    params = list(model.parameters())
    trainable = sum(p.numel() for p in params if p.requires_grad)
    total = sum(p.numel() for p in params)
    return {"trainable": trainable, "total": total, "percent": 100 * trainable / max(total, 1)}


# ----------------------------------------------------------------------------- full and frozen


def full_finetune_model(model):
    """A trainable copy of ``model``: every weight updates (the baseline LoRA is measured against)."""
    model = copy.deepcopy(model)
    for p in model.parameters():
        p.requires_grad_(True)
    return model


def freeze_except(model, layers: list[int], train_norm: bool = True, train_embeddings: bool = False):
    """A copy of ``model`` where only the decoder ``layers`` (negative counts from the top) train,
    plus the final norm (``train_norm``) and the tied embedding/head (``train_embeddings``)."""
    model = copy.deepcopy(model)
    _, blocks = decoder_layers(model)  # model.layers, transformer.h, gpt_neox.layers, ...
    n = len(blocks)
    chosen = set()
    for i in layers:
        if not -n <= i < n:
            raise ValueError(f"Layer {i} does not exist: the model has {n} layers; pick indices "
                             f"in [-{n}, {n - 1}].")
        chosen.add(i % n)
    for p in model.parameters():
        p.requires_grad_(False)
    for i in chosen:
        blocks[i].requires_grad_(True)
    norm = final_norm(model)
    if train_norm and norm is not None:  # some models (OPT-350m) have no final norm
        norm.requires_grad_(True)
    if train_embeddings:
        model.get_input_embeddings().requires_grad_(True)
    return model


# ----------------------------------------------------------------------------- vocabulary


def untrained_token_ids(blocks, vocab_size: int) -> torch.Tensor:
    """Ids that never occur in ``blocks`` (the pretraining data): their embeddings were only
    ever pushed *down*, as wrong answers, and never learned as inputs."""
    seen = torch.zeros(vocab_size, dtype=torch.bool)
    seen[torch.unique(blocks)] = True
    return torch.nonzero(~seen)[:, 0]


def reinit_untrained_tokens(model, token_ids, seed: int = 0):
    """A copy of ``model`` whose ``token_ids`` embeddings are redrawn from the distribution of the
    trained ones (per-dimension mean and spread; Hewitt, 2021). With tied input/output
    embeddings this also makes their logits ordinary instead of hugely negative."""
    model = copy.deepcopy(model)
    weight = model.get_input_embeddings().weight
    token_ids = torch.as_tensor(token_ids, dtype=torch.long)
    trained = torch.ones(weight.shape[0], dtype=torch.bool)
    trained[token_ids] = False
    with torch.no_grad():
        rows = weight[trained]
        mean, std = rows.mean(0), rows.std(0)
        noise = torch.randn(len(token_ids), weight.shape[1],
                            generator=torch.Generator().manual_seed(seed))
        weight[token_ids] = mean + std * noise
    return model

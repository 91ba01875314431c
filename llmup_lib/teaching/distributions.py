"""Looking at a model's next-token distributions: the soft targets distillation trains on.

The probabilities after a context (softened by a temperature), their top tokens, their entropy
in bits (one distribution, or the average over every position of some blocks), and an explorer
that shows how the temperature spreads the teacher's mass over the wrong-but-plausible tokens.
"""

from __future__ import annotations

import math

import torch

from ..core.train import split_blocks
from ..methods.distill import soften


@torch.no_grad()
def next_token_probs(model, tokenizer, context: str, temperature: float = 1.0) -> torch.Tensor:
    """The model's next-token distribution after ``EOS + context``, softened by ``temperature``."""
    ids = [tokenizer.eos_token_id, *tokenizer.encode(context, add_special_tokens=False)]
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    logits = model(input_ids=torch.tensor([ids], device=device)).logits[0, -1]
    model.train(was_training)
    return soften(logits, temperature).cpu()


def top_tokens(probs: torch.Tensor, tokenizer, k: int = 10) -> list[tuple[str, float]]:
    """The ``k`` most likely tokens of a distribution, as ``(text, probability)``."""
    values, ids = probs.topk(k)
    return [(tokenizer.decode([int(i)]), float(v)) for v, i in zip(values, ids)]


def entropy_bits(probs: torch.Tensor) -> float:
    """Entropy of a distribution in bits."""
    p = probs.float().clamp(min=1e-30)
    return float(-(p * p.log2()).sum())


@torch.no_grad()
def mean_entropy_bits(model, blocks, batch_size: int = 16) -> float:
    """Average entropy (bits) of the model's next-token distribution over all positions of
    ``blocks``: how spread out its predictions are (the teacher's is the reference)."""
    inputs, _ = split_blocks(blocks)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for i in range(0, len(inputs), batch_size):
        logp = torch.log_softmax(model(input_ids=inputs[i:i + batch_size].to(device)).logits
                                 .float(), -1)
        total += float(-(logp.exp() * logp).sum())
        count += logp.shape[0] * logp.shape[1]
    model.train(was_training)
    return total / count / math.log(2)


def softened_distribution(model, tokenizer, context: str, temperature: float, k: int = 10) -> dict:
    """The plain-function path of ``temperature_explorer``: the top ``k`` next tokens after
    ``context`` at ``temperature``, the mass they hold, and the entropy of the whole
    distribution (it grows with ``T``: that is what "soft targets" means)."""
    probs = next_token_probs(model, tokenizer, context, temperature)
    top = top_tokens(probs, tokenizer, k)
    return {"temperature": temperature, "top": top, "top_mass": sum(p for _, p in top),
            "entropy_bits": entropy_bits(probs)}


def temperature_explorer(model, tokenizer, context: str = "Once upon a time, two friends named",
                         k: int = 10):
    """Type a context and drag the temperature: the teacher's softened next-token distribution."""
    import ipywidgets as w
    import matplotlib.pyplot as plt

    def show(context, temperature):
        d = softened_distribution(model, tokenizer, context, temperature, k)
        fig, ax = plt.subplots(figsize=(7, 3))
        labels = [repr(t) for t, _ in d["top"]]
        ax.bar(range(k), [p for _, p in d["top"]])
        ax.set_xticks(range(k), labels, rotation=45, ha="right")
        ax.set_ylim(0, 1)
        ax.set_ylabel("probability")
        ax.set_title(f"T = {temperature:.1f}: entropy {d['entropy_bits']:.2f} bits, top {k} hold "
                     f"{d['top_mass']:.0%}")
        plt.show()

    from .widgets import explorer

    return explorer(show, context=w.Text(value=context),
                    temperature=w.FloatSlider(value=1.0, min=0.25, max=8.0, step=0.25))

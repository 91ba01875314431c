"""The scaling family: model shapes by name, the models they build, and what they cost.

* **shapes** -- ``(layers, width, heads)`` of a ``models.FAMILY`` name, a grid name or an
  ``"LxW"`` shape (``parse_shape``), the grid a sweep trains (``size_grid``, ``SCALING_GRID``),
  and a fresh Llama-style model of any of them (``build_grid_model``);
* **parameters** -- the non-embedding count from the shape alone (``non_embedding_params``);
* **compute** -- ``C ≈ 6·N·D`` and the full count with the LM head and attention
  (``training_flops``), and the forward cost of a generated token (``inference_flops_per_token``).

Fitting laws to the runs is ``llmup_lib.methods.scaling``; making the runs is
``llmup_lib.experiments.sweep``.
"""

from __future__ import annotations

from .models import FAMILY, _swiglu_hidden

# --------------------------------------------------------------------------- shapes

# The scaling family: (layers, width, heads), named "LxW". Six sizes spanning 32x in
# non-embedding parameters, all with two or more layers: copying a name from earlier in the
# story takes two attention layers (an induction head), and a model that has not learned it
# sits on a plateau near 0.85 nats/token whatever its size. 2x16 is left out for that reason:
# at FAMILY_TOKENS it is still leaving the plateau (measured 0.675 against 0.551 for 2x24).
SCALING_GRID = ("2x24", "2x32", "2x40", "2x48", "3x64", "4x96")
# Tokens per family member on the cpu profile: 2000 steps x 16 x 128. At 400 steps (the base
# model's recipe) most sizes were still on the plateau above, so loss against size was a step,
# not a power law (R² 0.87); at 2000 steps every size in the grid has left it (measured).
FAMILY_TOKENS = 2000 * 16 * 128


def size_grid(names=None) -> dict:
    """``{name: (layers, width, heads)}`` of the scaling family (or the given names, which may
    be any ``SCALING_GRID`` or ``models.FAMILY`` size, or a ``"LxW"`` shape like ``"3x80"``)."""
    if names is None:
        names = SCALING_GRID
    if isinstance(names, str):
        names = [n for n in names.split(",") if n]
    out = {}
    for name in names:
        out[name] = parse_shape(name)
    return out



def parse_shape(name: str) -> tuple[int, int, int]:
    """``(layers, width, heads)`` of a grid name, a family name, or ``"LxW"`` (head dim 16-32)."""
    if name in FAMILY:
        return FAMILY[name]
    try:
        layers, width = (int(x) for x in name.lower().split("x"))
    except ValueError:
        raise ValueError(f"Unknown size {name!r}; use one of {', '.join(FAMILY)} or a shape "
                         "like '3x80' (layers x width).") from None
    if layers <= 0 or width <= 0 or width % 8:
        raise ValueError(f"Shape {name!r} needs positive layers and a width divisible by 8.")
    heads = max(1, width // 32) if width >= 64 else max(1, width // 16)
    return layers, width, heads



def shape_overrides(shape) -> dict:
    """``LlamaConfig`` overrides that turn any family config into ``(layers, width, heads)``."""
    layers, width, heads = shape
    return dict(num_hidden_layers=layers, hidden_size=width, num_attention_heads=heads,
                num_key_value_heads=heads, intermediate_size=_swiglu_hidden(width))



def build_grid_model(name: str, tokenizer, context: int, seed: int = 0):
    """A fresh Llama-style model of grid size ``name`` (see ``size_grid``)."""
    from .models import build_model

    return build_model("pico", tokenizer, context, seed=seed, **shape_overrides(parse_shape(name)))



def non_embedding_params(shape, vocab_size: int | None = None) -> int:
    """Non-embedding parameters of ``(layers, width, heads)`` from the shape alone: per layer
    4·d² attention + 3·d·f SwiGLU + 2·d norm gains, plus the final norm (``models.count_params``
    gives the same number from a built model)."""
    layers, d, _ = shape
    f = _swiglu_hidden(d)
    return layers * (4 * d * d + 3 * d * f + 2 * d) + d



# --------------------------------------------------------------------------- compute


def training_flops(config, n_tokens: float, context: int | None = None) -> dict:
    """Training FLOPs for ``n_tokens`` tokens, two ways.

    ``six_nd``: the famous ``6·N·D`` with ``N`` the non-embedding parameters (Kaplan et al.);
    ``weights``: ``6·N_matmul·D`` with every matmul weight, the (tied) LM head included;
    ``attention``: ``12·L·T·d·D``, the score and weighted-sum matmuls, forward and backward;
    ``total``: weights + attention. At our sizes the LM head and attention are a large share,
    so ``6·N·D`` undercounts; in big models both shrink to a few percent.
    """
    from .models import flops_per_token

    if n_tokens <= 0:
        raise ValueError(f"n_tokens={n_tokens} must be positive.")
    per_token = flops_per_token(config, context)
    d, L = config.hidden_size, config.num_hidden_layers
    n = non_embedding_params((L, d, config.num_attention_heads))
    return {"six_nd": 6 * n * n_tokens, "weights": per_token["weights"] * n_tokens,
            "attention": per_token["attention"] * n_tokens,
            "total": per_token["total"] * n_tokens, "n_params": n}



def inference_flops_per_token(config, context: int | None = None) -> float:
    """Forward FLOPs per generated token: ``2·N_matmul`` plus attention over the context."""
    from .models import flops_per_token

    per_token = flops_per_token(config, context)
    return per_token["weights"] / 3 + per_token["attention"] / 3

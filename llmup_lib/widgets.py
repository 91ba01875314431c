"""ipywidgets explorers. Each wraps a plain function that tests (and readers) can call directly."""

from __future__ import annotations

from .evaluate import generate


def sample_text(model, tokenizer, prompt: str, temperature: float, seed: int = 0,
                max_new_tokens: int = 40) -> str:
    """The plain-function path of ``sampling_explorer``: one sample at ``temperature``."""
    return prompt + generate(model, tokenizer, prompt, max_new_tokens, temperature=temperature,
                             top_k=None, seed=seed)


def sampling_explorer(model, tokenizer, prompt: str = "Once upon a time"):
    """Type a prompt, drag the temperature, and watch the continuation change."""
    import ipywidgets as w

    def show(prompt, temperature, seed):
        print(sample_text(model, tokenizer, prompt, temperature, seed))

    return w.interactive(show, prompt=w.Text(value=prompt),
                         temperature=w.FloatSlider(value=0.8, min=0.1, max=2.0, step=0.1),
                         seed=w.IntSlider(value=0, min=0, max=9))

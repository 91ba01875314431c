"""Eager vs ``torch.compile`` (and fused AdamW): steady-state training tokens/s, side by side.

    python benchmarks/bench_compile.py                  # char model and base, about 10 minutes
    python benchmarks/bench_compile.py --models char --steps 40 --repeats 2

Two models: the spec's char-level model (4 layers x 128 wide, context 64, batch 12, as in
``bench_train.py``) and the ``base`` size on the suite's BPE (context 128, batch 16). Arms:

* ``eager``: ``train()`` as the notebooks run it;
* ``compiled``: ``TrainConfig(compile=True)``; its tokens/s leave out the first (compiling)
  step, which ``compile_seconds`` reports;
* ``eager+fused``: eager with ``torch.optim.AdamW(fused=True)`` (``TrainConfig(fused_adamw=True)``);
* ``compiled+fused``: both (what ``compile=True`` does by default: the fused optimizer was
  measured faster here, so it comes with compile).

The arms alternate inside one process (A B C D, then D C B A, ...), every repeat is printed,
and the ratio is taken per repeat against the eager run next to it, so load from other
processes shows up as spread instead of bias.
"""

from __future__ import annotations

import argparse
import statistics

import torch

from llmup_lib.core.corpora import load_corpus
from llmup_lib.core.models import build_model
from llmup_lib.core.tokenizer import char_tokenizer, load_tokenizer, pack_blocks
from llmup_lib.core.train import TrainConfig, train

def models(which):
    out = {}
    if "char" in which:
        texts = list(load_corpus("general", n_train=2800, n_val=1, seed=1)["train"]["text"])
        ctok = char_tokenizer(texts)
        out["char 4x128 ctx64 b12"] = (lambda: build_model("small", ctok, 64, seed=0),
                                       pack_blocks(texts, ctok, 64), 12)
    if "base" in which:
        tok = load_tokenizer()
        texts = list(load_corpus("general", n_train=1500, n_val=1, seed=1)["train"]["text"])
        out["base ctx128 b16"] = (lambda: build_model("base", tok, 128, seed=0),
                                  pack_blocks(texts, tok, 128), 16)
    return out


def run(arm, make, blocks, batch, steps) -> tuple[float, float]:
    cfg = TrainConfig(steps=steps, batch_size=batch, lr=1e-3, progress=False, log_every=steps,
                      memory_check=False, compile=arm.startswith("compiled"),
                      fused_adamw=arm.endswith("fused"))
    result = train(make(), blocks, None, cfg)
    return result.tokens_per_second, result.compile_seconds


def measure(make, blocks, batch, arms, steps, repeats, warmup_steps=3, log=print):
    """Every arm's tokens/s, ``repeats`` runs each, and each arm's first-step compile seconds.

    The arms alternate (A B, then B A, ...) so that load from other processes shows up as
    spread instead of biasing one arm. The compile seconds come from the first run of the arm:
    the warm-up, or with ``warmup_steps=0`` (a smoke test) the first timed run.
    """
    log = log or (lambda *a, **k: None)
    compile_s, got = {}, {arm: [] for arm in arms}
    for arm in arms if warmup_steps else []:  # warm-up: first compiles, allocator growth
        _, compile_s[arm] = run(arm, make, blocks, batch, warmup_steps)
        if compile_s[arm]:
            log(f"  {arm}: first step with compilation {compile_s[arm]:.1f} s (later runs "
                "reuse the compiled graphs)")
    for rep in range(repeats):
        for arm in (arms if rep % 2 == 0 else arms[::-1]):
            tps, seconds = run(arm, make, blocks, batch, steps)
            got[arm].append(tps)
            compile_s.setdefault(arm, seconds)
            log(f"  repeat {rep + 1} {arm:<15} {tps:>9,.0f} tokens/s", flush=True)
    return got, compile_s


def ratios(got, arm) -> list[float]:
    """``arm`` over eager per repeat: each against the eager run beside it, not a median of
    medians, so a slow spell hits both sides of a ratio."""
    return [a / e for a, e in zip(got[arm], got["eager"])]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="char,base")
    parser.add_argument("--steps", type=int, default=60, help="timed steps per run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--arms", default="eager,compiled,eager+fused,compiled+fused")
    args = parser.parse_args(argv)
    arms = args.arms.split(",")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    for name, (make, blocks, batch) in models(args.models).items():
        print(f"\n{name}: {args.steps} steps per run")
        got, _ = measure(make, blocks, batch, arms, args.steps, args.repeats)
        print(f"\n| {name} | tokens/s (median) | min - max | ratio vs eager per repeat |")
        print("|---|---|---|---|")
        for arm in arms:
            per_repeat = ratios(got, arm)
            print(f"| {arm} | {statistics.median(got[arm]):,.0f} | {min(got[arm]):,.0f} - "
                  f"{max(got[arm]):,.0f} | " + ", ".join(f"{r:.2f}" for r in per_repeat)
                  + f" (median {statistics.median(per_repeat):.2f}) |")


if __name__ == "__main__":
    main()

"""Training speed: our loop vs the machine's matmul peak and vs HF ``Trainer``.

    python benchmarks/bench_train.py            # cpu profile, about 3 minutes on 2 cores

Prints three tables:
1. the machine's measured fp32 matmul peak (the denominator of MFU);
2. the base model (``cpu`` profile recipe): our ``train()`` and ``transformers.Trainer`` on the
   same model, batch and steps, in this run: tokens/s, MFU, and the ratio;
3. the spec's char-level model (4 layers x 128 wide, context 64, batch 12, ~1 MB of English
   text): tokens/s, median of 3 runs.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch

from llmup_lib.core.corpora import load_corpus
from llmup_lib.core.models import build_model, flops_per_token
from llmup_lib.core.profiles import get_profile
from llmup_lib.core.tokenizer import char_tokenizer, load_tokenizer, pack_blocks
from llmup_lib.core.train import TrainConfig, train


def matmul_peak_gflops(n: int = 2048, repeats: int = 5) -> float:
    """Median fp32 GFLOP/s of an n x n matmul: the practical peak of this machine."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b)
        times.append(time.perf_counter() - t0)
    return 2 * n**3 / statistics.median(times) / 1e9


def ours(model_fn, blocks, batch, steps) -> float:
    """Tokens/s of ``llmup_lib.core.train`` over ``steps`` (after a 5-step warm-up run)."""
    cfg = dict(batch_size=batch, lr=1e-3, progress=False, log_every=steps, seed=0)
    train(model_fn(), blocks, None, TrainConfig(steps=5, **cfg))
    result = train(model_fn(), blocks, None, TrainConfig(steps=steps, **cfg))
    return result.tokens_per_second


def hf_trainer(model_fn, blocks, batch, steps) -> float:
    """Tokens/s of ``transformers.Trainer`` with the same model, batch, steps and optimizer."""
    from transformers import Trainer, TrainingArguments

    data = [{"input_ids": b[:-1], "labels": b[:-1]} for b in blocks]  # the model shifts labels
    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(
            output_dir=out, per_device_train_batch_size=batch, max_steps=steps,
            learning_rate=1e-3, warmup_steps=max(1, steps // 20), lr_scheduler_type="cosine",
            weight_decay=0.1, adam_beta2=0.95, max_grad_norm=1.0, logging_steps=steps,
            save_strategy="no", report_to="none", use_cpu=True, disable_tqdm=True,
            dataloader_num_workers=0, seed=0,
        )
        Trainer(model=model_fn(), args=args, train_dataset=data[:5 * batch]).train()  # warm-up
        trainer = Trainer(model=model_fn(), args=args, train_dataset=data)
        t0 = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - t0
    return steps * batch * (blocks.shape[1] - 1) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    profile = get_profile()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads\n")

    peak = max(matmul_peak_gflops(1024), matmul_peak_gflops(2048))
    print(f"1. fp32 matmul peak (best of 1024^2, 2048^2): {peak:,.1f} GFLOP/s\n")

    tok = load_tokenizer()
    corpus = load_corpus("general", n_train=profile.n_general, n_val=10, seed=profile.seed)
    blocks = pack_blocks(corpus["train"]["text"], tok, profile.context)
    base = lambda: build_model(profile.base_size, tok, profile.context, seed=0)  # noqa: E731
    fpt = flops_per_token(base().config, profile.context)["total"]
    ours_tps = ours(base, blocks, profile.batch_size, args.steps)
    hf_tps = hf_trainer(base, blocks, profile.batch_size, args.steps)
    print(f"2. base model {profile.base_size!r}, batch {profile.batch_size} x "
          f"{profile.context} tokens, {args.steps} steps, {fpt / 1e6:.2f} MFLOP/token")
    print(f"   {'loop':<14}{'tokens/s':>10}{'GFLOP/s':>10}{'MFU':>8}")
    for name, tps in (("llmup train()", ours_tps), ("HF Trainer", hf_tps)):
        print(f"   {name:<14}{tps:>10,.0f}{tps * fpt / 1e9:>10.1f}{tps * fpt / 1e9 / peak:>8.1%}")
    print(f"   ratio llmup / Trainer: {ours_tps / hf_tps:.2f}x\n")

    # The spec's char-level model: 4 x 128, context 64, batch 12, on ~1 MB of English text.
    texts = list(load_corpus("general", n_train=2800, n_val=1, seed=1)["train"]["text"])
    ctok = char_tokenizer(texts)
    cblocks = pack_blocks(texts, ctok, 64)
    char_model = lambda: build_model("small", ctok, 64, seed=0)  # noqa: E731
    rates = [ours(char_model, cblocks, 12, args.steps * 2) for _ in range(args.runs)]
    print(f"3. char model 4x128, context 64, batch 12, {sum(map(len, texts)) / 1e6:.2f} MB of "
          f"text, vocab {len(ctok)}: median {statistics.median(rates):,.0f} tokens/s "
          f"(runs: {', '.join(f'{r:,.0f}' for r in rates)})")


if __name__ == "__main__":
    main()

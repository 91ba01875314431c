"""Every benchmark of the suite from one command, printed as markdown tables.

    python benchmarks/run_benchmarks.py                    # full: ~15-25 min on 2 cores
    python benchmarks/run_benchmarks.py --skip-notebooks   # speed tables only (~5 min)
    python benchmarks/run_benchmarks.py --quick            # smoke test: seconds, no notebooks

1. notebook budgets: every notebook run cold (``notebook_budgets.py``): wall time, peak RSS;
2. training speed of each family size, pico to base: tokens/s, GFLOP/s and MFU against the
   machine's measured fp32 matmul peak (``bench_train.matmul_peak_gflops``);
3. our ``train()`` against ``transformers.Trainer`` on the profile's base model
   (``bench_train.ours`` / ``bench_train.hf_trainer``): tokens/s and the ratio;
4. generation speed of each size: greedy, KV cache, batch 1 (``evaluate.generation_speed``).

Set ``OMP_NUM_THREADS`` to the cores you mean to measure; the header prints what torch uses.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_train, notebook_budgets

from bench_train import hf_trainer, matmul_peak_gflops, ours  # noqa: E402

from llmup_lib.corpora import load_corpus  # noqa: E402
from llmup_lib.evaluate import generation_speed  # noqa: E402
from llmup_lib.models import FAMILY, build_model, count_params, flops_per_token  # noqa: E402
from llmup_lib.profiles import get_profile  # noqa: E402
from llmup_lib.tokenizer import load_tokenizer, pack_blocks  # noqa: E402

SIZES = [s for s in FAMILY if list(FAMILY).index(s) <= list(FAMILY).index("base")]


def table(headers: list[str], rows: list[list]) -> str:
    """A markdown table; numbers right-aligned by the renderer's default."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def notebook_table(names: list[str]) -> str:
    from notebook_budgets import BUDGET_MB, BUDGET_S, NOTEBOOKS, run

    books = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    if names:
        books = [b for b in books if b.stem in names]
    rows = []
    for book in books:
        seconds, mb = run(book, save=False)
        ok = seconds <= BUDGET_S and mb <= BUDGET_MB
        rows.append([book.stem, f"{seconds:.1f}", f"{mb:.0f}", "yes" if ok else "**NO**"])
    return table(["notebook", "wall (s)", "peak RSS (MB)", f"within {BUDGET_S} s, "
                  f"{BUDGET_MB} MB"], rows)


def training_table(sizes, tok, blocks, context, batch, steps, peak) -> str:
    rows = []
    for size in sizes:
        make = lambda: build_model(size, tok, context, seed=0)  # noqa: E731
        model = make()
        fpt = flops_per_token(model.config, context)["total"]
        tps = ours(make, blocks, batch, steps)
        gflops = tps * fpt / 1e9
        rows.append([size, f"{count_params(model)['total'] / 1e6:.2f}", f"{fpt / 1e6:.2f}",
                     f"{tps:,.0f}", f"{gflops:.1f}", f"{gflops / peak:.1%}"])
    return table(["size", "params (M)", "MFLOP/token", "tokens/s", "GFLOP/s", "MFU"], rows)


def trainer_table(size, tok, blocks, context, batch, steps, peak) -> str:
    make = lambda: build_model(size, tok, context, seed=0)  # noqa: E731
    fpt = flops_per_token(make().config, context)["total"]
    mine = ours(make, blocks, batch, steps)
    with contextlib.redirect_stdout(io.StringIO()):  # Trainer prints its log dicts
        theirs = hf_trainer(make, blocks, batch, steps)
    rows = [[name, f"{tps:,.0f}", f"{tps * fpt / 1e9 / peak:.1%}"]
            for name, tps in (("llmup train()", mine), ("HF Trainer", theirs))]
    return (table(["loop", "tokens/s", "MFU"], rows)
            + f"\n\nratio llmup / Trainer: **{mine / theirs:.2f}x** ({size!r}, batch {batch} x "
            f"{context} tokens, {steps} steps)")


def generation_table(sizes, tok, context, new_tokens, repeats) -> str:
    rows = []
    for size in sizes:
        model = build_model(size, tok, max(context, new_tokens + 1), seed=0)
        speed = generation_speed(model, tok, new_tokens=new_tokens, repeats=repeats)
        rows.append([size, f"{speed['tokens_per_second']:,.0f}", f"{speed['ms_per_token']:.2f}"])
    return table(["size", "tokens/s", "ms/token"], rows)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="tiny settings (pico and nano, 3 steps, no notebooks): checks that "
                        "everything runs, measures nothing useful")
    parser.add_argument("--skip-notebooks", action="store_true")
    parser.add_argument("--notebooks", nargs="*", default=[], help="notebook stems (default all)")
    parser.add_argument("--sizes", default=",".join(SIZES), help="comma-separated family sizes")
    parser.add_argument("--steps", type=int, default=30, help="timed training steps per size")
    parser.add_argument("--trainer-steps", type=int, default=60)
    parser.add_argument("--new-tokens", type=int, default=64)
    args = parser.parse_args(argv)
    profile = get_profile()
    sizes = [s for s in args.sizes.split(",") if s]
    context, batch, n_docs, repeats = profile.context, profile.batch_size, 1000, 3
    trainer_size = profile.base_size
    if args.quick:
        args.skip_notebooks = True
        sizes, args.steps, args.trainer_steps, args.new_tokens = ["pico", "nano"], 3, 3, 8
        context, batch, n_docs, repeats, trainer_size = 32, 4, 60, 1, "pico"

    print(f"# llmup benchmarks\n\n{platform.processor() or platform.machine()}, torch "
          f"{torch.__version__}, {torch.get_num_threads()} threads, profile {profile.name!r}"
          f"{' (--quick)' if args.quick else ''}\n")
    t0 = time.perf_counter()
    if not args.skip_notebooks:
        print("## 1. Notebook budgets (cold, one kernel each)\n")
        print(notebook_table(args.notebooks), "\n", flush=True)

    peak = max(matmul_peak_gflops(256 if args.quick else 1024),
               matmul_peak_gflops(512 if args.quick else 2048))
    tok = load_tokenizer()
    texts = load_corpus("general", n_train=n_docs, n_val=1, seed=profile.seed)["train"]["text"]
    blocks = pack_blocks(texts, tok, context)
    print(f"## 2. Training speed by size\n\nbatch {batch} x {context} tokens, {args.steps} timed "
          f"steps after a 5-step warm-up; fp32 matmul peak {peak:,.1f} GFLOP/s\n")
    print(training_table(sizes, tok, blocks, context, batch, args.steps, peak), "\n", flush=True)
    print("## 3. llmup train() vs transformers.Trainer\n")
    print(trainer_table(trainer_size, tok, blocks, context, batch, args.trainer_steps, peak),
          "\n", flush=True)
    print(f"## 4. Generation speed by size\n\ngreedy, KV cache, batch 1, {args.new_tokens} new "
          f"tokens, median of {repeats}\n")
    print(generation_table(sizes, tok, context, args.new_tokens, repeats), "\n")
    print(f"_total {time.perf_counter() - t0:.0f} s_")


if __name__ == "__main__":
    main()

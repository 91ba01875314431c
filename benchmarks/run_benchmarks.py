"""Every benchmark of the suite from one command, printed as markdown tables.

    python benchmarks/run_benchmarks.py                    # full: ~25-35 min on 2 cores
    python benchmarks/run_benchmarks.py --skip-notebooks   # speed tables only (~15 min)
    python benchmarks/run_benchmarks.py --quick            # smoke test: about a minute
    python benchmarks/run_benchmarks.py --tests            # and the test run (+~17 min)

1. notebook budgets: every notebook run cold (``notebook_budgets.py``): wall time, peak RSS;
2. training speed of each family size, pico to base: tokens/s, GFLOP/s and MFU against the
   machine's measured fp32 matmul peak (``bench_train.matmul_peak_gflops``);
3. eager against ``torch.compile`` on the char model and ``base`` (``bench_compile.measure``):
   steady-state tokens/s, the first compile's seconds and the ratio;
4. our ``train()`` against ``transformers.Trainer`` on the profile's base model
   (``bench_train.ours`` / ``bench_train.hf_trainer``): tokens/s and the ratio;
5. generation speed of each size: greedy, KV cache, batch 1 (``evaluate.generation_speed``);
6. sweep throughput, 2 worker processes x 1 thread against 1 x 2, on the small sizes
   (``bench_sweep.measure``);
7. with ``--tests``, the README's test command (``pytest``): its wall time and summary line;
8. the timing budgets of ``bench_timings.py`` (world generation, the Colab cell, offline Hub
   errors, widget cells): each measured time against its budget (``--quick``: the cheap ones).

Every section names the machine (CPU model, usable cores, torch and its threads) and the date,
so a table copied into the README or an issue keeps where and when it was measured.
Set ``OMP_NUM_THREADS`` to the cores you mean to measure; the header prints what torch uses.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import io
import platform
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))  # bench_*, notebook_budgets

import bench_compile  # noqa: E402
import bench_timings  # noqa: E402
import bench_sweep  # noqa: E402
from bench_train import hf_trainer, matmul_peak_gflops, ours  # noqa: E402

from llmup_lib.core.corpora import load_corpus  # noqa: E402
from llmup_lib.core.evaluate import generation_speed  # noqa: E402
from llmup_lib.core.models import FAMILY, build_model, count_params, flops_per_token  # noqa: E402
from llmup_lib.core.profiles import get_profile  # noqa: E402
from llmup_lib.experiments.sweep import SweepRecipe
from llmup_lib.experiments.runner import usable_cores  # noqa: E402
from llmup_lib.core.tokenizer import load_tokenizer, pack_blocks  # noqa: E402
from llmup_lib.core.train import compile_unavailable  # noqa: E402

SIZES = [s for s in FAMILY if list(FAMILY).index(s) <= list(FAMILY).index("base")]
SWEEP_SIZES = ["pico", "2x16", "2x24", "nano"]  # small: where one thread per run should win
SWEEP_ARMS = [(2, 1), (1, 2)]  # (workers, threads): the same two cores, split two ways


def machine() -> str:
    """Where and when: CPU model, usable cores, torch and its threads, today's date."""
    cpu = platform.processor() or platform.machine()  # "x86_64" on Linux: /proc says more
    with contextlib.suppress(OSError):
        names = [line.split(":", 1)[1].strip() for line in
                 Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")]
        cpu = names[0] if names else cpu
    return (f"{cpu}, {usable_cores()} cores, torch {torch.__version__}, "
            f"{torch.get_num_threads()} threads, {datetime.date.today().isoformat()}")


def heading(title: str, note: str = "") -> None:
    """A section's heading and machine line, printed before the work so a long run shows where
    it is, and so each table, copied out alone, still says where and when it was measured."""
    print(f"## {title}\n\n_{machine()}_" + (f"; {note}" if note else "") + "\n", flush=True)


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


def compile_table(which, steps, repeats, warmup_steps) -> str:
    """Eager and compiled side by side per model; the ratio is the median of per-repeat ratios
    (each against the eager run beside it), as in ``bench_compile.py``."""
    rows = []
    for name, (make, blocks, batch) in bench_compile.models(which).items():
        got, compile_s = bench_compile.measure(make, blocks, batch, ["eager", "compiled"],
                                               steps, repeats, warmup_steps, log=None)
        ratio = statistics.median(bench_compile.ratios(got, "compiled"))
        rows.append([name, f"{statistics.median(got['eager']):,.0f}",
                     f"{statistics.median(got['compiled']):,.0f}", f"{compile_s['compiled']:.1f}",
                     f"{ratio:.2f}x"])
    return table(["model", "eager tokens/s", "compiled tokens/s", "compile (s)",
                  "compiled / eager"], rows)


def sweep_table(sizes, steps, repeats, recipe, n_val) -> str:
    results = bench_sweep.measure(sizes, steps, SWEEP_ARMS, repeats, recipe, n_val, log=None)
    ratio = statistics.median(bench_sweep.ratios(results, *SWEEP_ARMS))
    (w1, t1), (w2, t2) = SWEEP_ARMS
    return (table(bench_sweep.HEADERS, bench_sweep.rows(results))
            + f"\n\nratio {w1} x {t1} / {w2} x {t2}: **{ratio:.2f}x** (median over {repeats} "
            f"repeat{'s' * (repeats > 1)}, each against the other arm's run beside it)")


def tests_table(pytest_args) -> str:
    """The README's test command in a fresh interpreter, as a user runs it, from the repository
    root: its wall time, exit status and pytest's summary line."""
    # this interpreter's pytest, not whichever is first on PATH; `python -m` also puts the
    # root on sys.path, as the root conftest.py does for plain `pytest`
    command = [sys.executable, "-m", "pytest", *pytest_args]
    t0 = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    lines = [line.strip("= ") for line in done.stdout.splitlines() if line.strip("= ")]
    summary = lines[-1] if lines else f"no output; stderr: {done.stderr.strip()[-300:]}"
    return table(["command", "wall (s)", "exit status", "pytest's summary"],
                 [[f"`{shlex.join(['pytest', *pytest_args])}`", f"{seconds:.0f}",
                   done.returncode, summary]])


def compile_section(which, steps, repeats, warmup_steps) -> None:
    why = compile_unavailable()  # e.g. a Python that torch.compile does not support yet
    warm = f"after a {warmup_steps}-step warm-up run per arm" if warmup_steps else "no warm-up"
    heading("3. Eager vs torch.compile", f"skipped: {why}" if why else
            f"{steps} timed steps per run, {warm}, median of {repeats}; compile (s): the first "
            "compiled step, which the steady-state tokens/s leave out")
    if not why:
        print(compile_table(which, steps, repeats, warmup_steps), "\n", flush=True)


def sweep_section(sizes, steps, repeats, recipe, n_val) -> None:
    need, have = max(w * t for w, t in SWEEP_ARMS), usable_cores()
    heading("6. Sweep throughput by worker count",
            f"skipped: the arms need {need} usable cores, this process has {have}"
            if have < need else
            f"points {', '.join(sizes)} at {steps} steps x {recipe.batch_size} x "
            f"{recipe.context} tokens, a spawned process per point in both arms, arms "
            "alternating; tokens/s = all points' tokens / the sweep's wall time, start-up included")
    if have >= need:
        print(sweep_table(sizes, steps, repeats, recipe, n_val), "\n", flush=True)


QUICK_TIMINGS = "colab-setup,hub-offline-model,hub-offline-dataset"  # a second or two


def timings_section(only) -> None:
    """``bench_timings``' budgets: what the tests no longer time, measured here."""
    heading("8. Timing budgets", "each time against its budget; `python benchmarks/"
            "bench_timings.py` exits 1 when one is over")
    rows = bench_timings.measure(bench_timings.select(only), log=None)
    print(bench_timings.table(rows), "\n", flush=True)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="tiny settings (pico and nano, 3 steps, no notebooks, the char "
                        "model alone compiled): checks that everything runs, measures nothing "
                        "useful")
    parser.add_argument("--skip-notebooks", action="store_true")
    parser.add_argument("--skip-compile", action="store_true", help="no eager vs compiled table")
    parser.add_argument("--skip-sweep", action="store_true", help="no sweep-workers table")
    parser.add_argument("--skip-timings", action="store_true", help="no timing-budgets table")
    parser.add_argument("--tests", action="store_true",
                        help="also time the README's test command, `pytest` (~17 min)")
    parser.add_argument("--pytest-args", default="",
                        help="with --tests, arguments for pytest, e.g. \"-m 'not slow'\"")
    parser.add_argument("--notebooks", nargs="*", default=[], help="notebook stems (default all)")
    parser.add_argument("--sizes", default=",".join(SIZES), help="comma-separated family sizes")
    parser.add_argument("--steps", type=int, default=30, help="timed training steps per size")
    parser.add_argument("--trainer-steps", type=int, default=60)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--compile-steps", type=int, default=60, help="timed steps per run")
    parser.add_argument("--sweep-steps", type=int, default=150, help="training steps per point")
    parser.add_argument("--repeats", type=int, default=3,
                        help="runs per arm of the compile and sweep tables (arms alternating)")
    args = parser.parse_args(argv)
    profile = get_profile()
    sizes = [s for s in args.sizes.split(",") if s]
    context, batch, n_docs, repeats = profile.context, profile.batch_size, 1000, 3
    trainer_size = profile.base_size
    compile_models, compile_warmup = "char,base", 3
    sweep_sizes, recipe, n_val = SWEEP_SIZES, SweepRecipe(), 200
    if args.quick:
        args.skip_notebooks = True
        sizes, args.steps, args.trainer_steps, args.new_tokens = ["pico", "nano"], 3, 3, 8
        context, batch, n_docs, repeats, trainer_size = 32, 4, 60, 1, "pico"
        # a cold torch.compile costs ~30 s per model here whatever its size: one model, and
        # its first timed run is the compiling one
        compile_models, compile_warmup, args.compile_steps, args.repeats = "char", 0, 3, 1
        sweep_sizes, args.sweep_steps, n_val = ["pico", "nano"], 5, 8
        recipe = SweepRecipe(context=32, batch_size=4, eval_blocks=4)

    print(f"# llmup benchmarks\n\n_{machine()}_, profile {profile.name!r}"
          f"{' (--quick)' if args.quick else ''}\n")
    t0 = time.perf_counter()
    if not args.skip_notebooks:
        heading("1. Notebook budgets (cold, one kernel each)")
        print(notebook_table(args.notebooks), "\n", flush=True)

    peak = max(matmul_peak_gflops(256 if args.quick else 1024),
               matmul_peak_gflops(512 if args.quick else 2048))
    tok = load_tokenizer()
    texts = load_corpus("general", n_train=n_docs, n_val=1, seed=profile.seed)["train"]["text"]
    blocks = pack_blocks(texts, tok, context)
    heading("2. Training speed by size", f"batch {batch} x {context} tokens, {args.steps} timed "
            f"steps after a 5-step warm-up; fp32 matmul peak {peak:,.1f} GFLOP/s")
    print(training_table(sizes, tok, blocks, context, batch, args.steps, peak), "\n", flush=True)
    if not args.skip_compile:
        compile_section(compile_models, args.compile_steps, args.repeats, compile_warmup)
    heading("4. llmup train() vs transformers.Trainer")
    print(trainer_table(trainer_size, tok, blocks, context, batch, args.trainer_steps, peak),
          "\n", flush=True)
    heading("5. Generation speed by size", f"greedy, KV cache, batch 1, {args.new_tokens} new "
            f"tokens, median of {repeats}")
    print(generation_table(sizes, tok, context, args.new_tokens, repeats), "\n", flush=True)
    if not args.skip_sweep:
        sweep_section(sweep_sizes, args.sweep_steps, args.repeats, recipe, n_val)
    if args.tests:
        heading("7. Test run", "the README's test command, from the repository root")
        print(tests_table(shlex.split(args.pytest_args)), "\n", flush=True)
    else:
        print("_7. Test run: skipped; add `--tests` to time the README's `pytest` (~17 min)_\n")
    if not args.skip_timings:
        timings_section(QUICK_TIMINGS if args.quick else None)
    print(f"_total {time.perf_counter() - t0:.0f} s_")


if __name__ == "__main__":
    main()

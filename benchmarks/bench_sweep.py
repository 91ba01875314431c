"""Sweep throughput: N worker processes x T torch threads, on the same points, interleaved.

    python benchmarks/bench_sweep.py                       # 2 x 1 vs 1 x 2, about 5 minutes
    python benchmarks/bench_sweep.py --sizes pico,2x16 --steps 100 --repeats 3

Small models use two threads badly (the matmuls are too small to split well, and the
element-wise ops and the Python loop do not split at all), so on a 2-core machine two points at
once on one thread each should train more tokens per second than one point at a time on two.
Each arm runs the same points through ``run_sweep(..., workers=N, threads=T)`` (a spawned
process per point in both arms, so both pay the same start-up), arms alternate within one run
(A B A B ...), and the table gives every repeat, so a busy neighbour shows up as spread
rather than as a false ratio.

Throughput = all points' training tokens / the sweep's wall time (process start-up included).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from llmup_lib.experiments.sweep import SweepRecipe, run_sweep, sweep_data
from llmup_lib.experiments.runner import usable_cores


def one_sweep(points, recipe, data, workers, threads) -> dict:
    t0 = time.perf_counter()
    rows = run_sweep(points, recipe, data=data, cache=False, log=None, workers=workers,
                     threads=threads)
    wall = time.perf_counter() - t0
    tokens = sum(r["tokens"] for r in rows)
    return {"wall": wall, "tok_s": tokens / wall, "peak_mb": max(r["peak_rss_mb"] for r in rows)}


HEADERS = ["workers x threads", "sweep tokens/s (median)", "min - max", "wall s (median)"]


def measure(sizes, steps, arms, repeats, recipe=None, n_val=200, log=print) -> dict:
    """Each arm's sweeps (``{(workers, threads): [one_sweep result, ...]}``) of the same
    points, one per size at ``steps`` steps, arms alternating (A B, B A, A B: no arm always
    first, so a busy neighbour shows up as spread rather than as a false ratio)."""
    log = log or (lambda *a, **k: None)
    recipe = recipe or SweepRecipe()  # the cpu profile's context 128 x batch 16
    tokens = steps * recipe.context * recipe.batch_size
    points = [{"size": s, "tokens": tokens} for s in sizes]
    data = sweep_data(recipe, tokens, n_val)
    results = {arm: [] for arm in arms}
    for rep in range(repeats):
        for arm in (arms if rep % 2 == 0 else arms[::-1]):
            results[arm].append(one_sweep(points, recipe, data, *arm))
            r = results[arm][-1]
            log(f"  repeat {rep + 1}, {arm[0]} workers x {arm[1]} threads: {r['tok_s']:,.0f} "
                f"tokens/s ({r['wall']:.1f} s), peak {r['peak_mb']:.0f} MB per run", flush=True)
    return results


def rows(results) -> list[list[str]]:
    """One row per arm under ``HEADERS``: every repeat's range, not only the median."""
    out = []
    for arm, rs in results.items():
        tok = [r["tok_s"] for r in rs]
        out.append([f"{arm[0]} x {arm[1]}", f"{statistics.median(tok):,.0f}",
                    f"{min(tok):,.0f} - {max(tok):,.0f}",
                    f"{statistics.median(r['wall'] for r in rs):.1f}"])
    return out


def ratios(results, a, b) -> list[float]:
    """Arm ``a`` over arm ``b`` per repeat: sweeps run side by side share the same load."""
    return [x["tok_s"] / y["tok_s"] for x, y in zip(results[a], results[b])]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="pico,2x16,2x24,nano")
    parser.add_argument("--steps", type=int, default=150, help="training steps per point")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--arms", default="2x1,1x2", help="WORKERSxTHREADS, comma-separated")
    args = parser.parse_args(argv)

    recipe = SweepRecipe()
    arms = [tuple(int(x) for x in a.split("x")) for a in args.arms.split(",")]
    print(f"torch {torch.__version__}, {usable_cores()} usable cores; points: {args.sizes}, "
          f"{args.steps} steps x {recipe.batch_size} x {recipe.context} tokens each")
    results = measure(args.sizes.split(","), args.steps, arms, args.repeats, recipe)
    print()
    for row in [HEADERS, ["---"] * len(HEADERS), *rows(results)]:
        print("| " + " | ".join(row) + " |")
    if len(arms) == 2:
        per_repeat = ratios(results, *arms)
        print(f"\nratio {arms[0][0]}x{arms[0][1]} / {arms[1][0]}x{arms[1][1]} per repeat: "
              + ", ".join(f"{x:.2f}" for x in per_repeat)
              + f" (median {statistics.median(per_repeat):.2f})")


if __name__ == "__main__":
    main()

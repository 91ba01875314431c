"""Command line: ``python -m llmup_lib COMMAND``: info, build-tokenizer, build-base, sweep, tune,
extraction, capacity, run-all."""

from __future__ import annotations

import argparse

from . import __version__


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m llmup_lib", description=__doc__)
    parser.add_argument("--version", action="version", version=f"llmup {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="print the environment check of notebook 00")
    sub.add_parser("build-tokenizer", help="retrain the shipped BPE tokenizer in data/tokenizer")
    base = sub.add_parser("build-base", help="retrain the base model of a profile (data/base/)")
    base.add_argument("--profile", default=None, help="cpu (default) or gpu")
    base.add_argument("--larger", action="store_true",
                      help="build notebook 07's larger pretrained model instead (base.LARGER: "
                      "the next size up, three times the data and steps)")
    base.add_argument("--half", action="store_true",
                      help="store the weights in float16 (half the file; loaded as float32)")
    sweep = sub.add_parser("sweep", help="train a grid of model sizes (and IsoFLOP budgets) and "
                           "save the results as a CSV/JSON table (notebook 05)")
    sweep.add_argument("--profile", default=None, help="recipe defaults: cpu (default) or gpu")
    sweep.add_argument("--sizes", default=None,
                       help="comma-separated sizes, e.g. pico,nano or 3x80 (default: the grid)")
    sweep.add_argument("--tokens", type=float, default=None,
                       help="training tokens per size (default: the notebook's family sweep)")
    sweep.add_argument("--flops", default=None,
                       help="comma-separated IsoFLOP budgets (6·N·D); each size gets D = C/(6N)")
    sweep.add_argument("--min-steps", type=int, default=20,
                       help="with --flops: skip sizes a budget gives fewer steps (default 20)")
    sweep.add_argument("--max-steps", type=int, default=None,
                       help="with --flops: skip sizes a budget gives more steps")
    sweep.add_argument("--context", type=int, default=None)
    sweep.add_argument("--batch-size", type=int, default=None)
    sweep.add_argument("--no-cache", action="store_true", help="retrain cached points")
    sweep.add_argument("--out", default="sweep.csv", help="table to write (.csv or .json)")
    sweep.add_argument("--workers", type=int, default=None,
                       help="train N points at once, each in a process of its own with the "
                       "cores split between them (default: one point at a time, in-process)")
    sweep.add_argument("--shard", default=None,
                       help="K/N: train only shard K of N of the points (every N-th from the "
                       "K-th), e.g. one per machine or Slurm array task; then `sweep merge`")
    sweep.add_argument("merge", nargs="*", metavar="merge TABLE",
                       help="`sweep merge A B ... --out T` joins the shards' tables into one")
    tune = sub.add_parser("tune", help="learning-rate sweep of the fine-tuning methods over "
                          "seeds on notebook 02's task (the table notebooks 02 and 03 read), or "
                          "of notebook 06's students (--task distill)")
    tune.add_argument("--profile", default=None, help="cpu (default) or gpu")
    tune.add_argument("--grid", action="append", default=None, metavar="METHOD=LR,LR,...",
                      help="a method and its rates, repeatable; methods: full, scratch, larger, "
                      "lora-rK (domain); scratch, kd, kd-half, kd-half-init, t4-with-t2, "
                      "t4-without-t2 (distill) (default: the shipped table's grid)")
    tune.add_argument("--task", default="domain", choices=("domain", "distill"),
                      help="domain: notebooks 02-03's fine-tuning methods (default); distill: "
                      "notebook 06's students")
    tune.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    tune.add_argument("--out", default=None,
                      help="table to write (default: data/tuning/<profile>_<task>.json)")
    tune.add_argument("--extend", action="store_true",
                      help="add the grid's runs to the existing --out table (runs it already "
                      "holds are skipped) instead of replacing it")
    extraction = sub.add_parser("extraction", help="pretrain small models on biographies written "
                                "one way or several, instruction-tune them and score held-out "
                                "questions (notebook 04's extraction table)")
    extraction.add_argument("--arms", default="single,fullname,augmented",
                            help="comma-separated arms: single, fullname, augmented (default all)")
    extraction.add_argument("--seeds", default="0,1,2",
                            help="comma-separated seeds (default 0,1,2)")
    extraction.add_argument("--save-bases", action="store_true",
                            help="also save the first seed's single and augmented bases "
                            "(float16) in data/extraction/, the ones notebook 04 tunes live")
    extraction.add_argument("--out", default=None,
                            help="table to write (default: data/extraction/cpu.json)")
    capacity = sub.add_parser("capacity", help="pretrain a size grid on biographies and probe the "
                              "bits of facts each size stores (notebook 05's capacity table)")
    capacity.add_argument("--sizes", default=None,
                          help="comma-separated sizes (default: capacity.SIZES, 2x8 to 2x48)")
    capacity.add_argument("--lrs", default="6e-3,1.2e-2,2.4e-2",
                          help="comma-separated peak learning rates (default 6e-3,1.2e-2,2.4e-2)")
    capacity.add_argument("--at-best", action="store_true",
                          help="instead of --lrs, each size at its best rate in the --out table")
    capacity.add_argument("--seeds", default="0", help="comma-separated seeds (default 0)")
    capacity.add_argument("--workers", type=int, default=1,
                          help="runs trained at once, each in a process of its own (default 1)")
    capacity.add_argument("--extend", action="store_true",
                          help="add the runs to the existing --out table instead of replacing it")
    capacity.add_argument("--out", default=None,
                          help="table to write (default: data/capacity/cpu.json)")
    runall = sub.add_parser("run-all", help="execute every notebook headless, one fresh kernel "
                            "each, and print a table of status, time, peak memory and key result")
    runall.add_argument("--out", default="executed", help="folder for the executed copies")
    runall.add_argument("--only", default=None,
                        help="comma-separated notebook numbers or names, e.g. 02,03")
    runall.add_argument("--profile", default=None,
                        help="LLMUP_PROFILE for the kernels: cpu (default) or gpu")
    runall.add_argument("--timeout", type=float, default=1800,
                        help="wall-clock limit per notebook in seconds (default 1800)")
    runall.add_argument("--notebooks", default=None,
                        help="notebook folder (default: the suite's notebooks/)")
    runall.add_argument("--solutions", action="store_true",
                        help="teacher mode: fill every unanswered exercise with its reference "
                        "solution before running, so every check must pass")
    args = parser.parse_args(argv)

    if args.command == "info":
        from .env import environment_report

        for key, value in environment_report().items():
            print(f"{key:>16}: {value}")
    elif args.command == "build-tokenizer":
        from .core.tokenizer import TOKENIZER_DIR, build_suite_tokenizer

        tok = build_suite_tokenizer()
        print(f"saved a {len(tok)}-token BPE to {TOKENIZER_DIR}")
    elif args.command == "build-base":
        from .core.base import larger_base_profile, save_base_model, train_base_model
        from .core.profiles import get_profile

        profile = get_profile(args.profile)
        if args.larger:
            profile = larger_base_profile(profile)
        result = train_base_model(profile)
        path = save_base_model(result, profile, half=args.half)
        print(f"saved the {profile.name} {profile.base_size} base model to {path} "
              f"({result.tokens_per_second:,.0f} tokens/s, val loss {result.final_val_loss:.4f})")
    elif args.command == "sweep":
        _sweep(args)
    elif args.command == "tune":
        _tune(args)
    elif args.command == "extraction":
        _extraction(args)
    elif args.command == "capacity":
        _capacity(args)
    elif args.command == "run-all":
        from . import runall

        try:
            if args.profile is not None:
                from .core.profiles import get_profile

                get_profile(args.profile)  # an unknown name fails here, with the valid ones
            code = runall.main(args)
        except (FileNotFoundError, ValueError) as err:
            raise SystemExit(f"error: {err}") from None
        raise SystemExit(code)


DEFAULT_TUNING_GRID = {
    "domain": ["full=3e-4,1e-3,3e-3,1e-2,3e-2", "lora-r2=3e-3,1e-2,3e-2,1e-1",
               "scratch=1e-3,3e-3,1e-2,3e-2", "lora-r1=1e-2,3e-2,1e-1",
               "lora-r4=3e-3,1e-2,3e-2,1e-1", "lora-r8=3e-3,1e-2,3e-2",
               "lora-r16=1e-3,3e-3,1e-2,3e-2", "larger=1e-3,3e-3,1e-2"],
    "distill": ["scratch=3e-3,1e-2,3e-2", "kd=3e-3,1e-2,3e-2", "kd-half=1e-3,3e-3,1e-2",
                "kd-half-init=3e-4,1e-3,3e-3,1e-2", "t4-with-t2=1e-2", "t4-without-t2=1e-2"],
}


def _tune(args) -> None:
    """``python -m llmup_lib tune``: every (method, rate, seed), written atomically."""
    import time

    from .core.profiles import get_profile
    from .core.tokenizer import load_tokenizer
    from .experiments.tuning import (extend_table, load_tuning_table, parse_grid, save_tuning_table, tune,
                         tuning_table_path)

    profile = get_profile(args.profile)
    specs = args.grid or DEFAULT_TUNING_GRID[args.task]
    grid = parse_grid(specs, args.task)
    try:
        seeds = [int(s) for s in args.seeds.split(",")]
    except ValueError:
        raise SystemExit(f"--seeds {args.seeds!r} must be whole numbers, e.g. 0,1,2.") from None
    tokenizer = load_tokenizer()
    path = args.out or tuning_table_path(profile.name, args.task)
    previous = None
    if args.extend:
        try:
            previous = load_tuning_table(profile, tokenizer, path, task=args.task)
        except (FileNotFoundError, ValueError) as err:
            raise SystemExit(f"error: --extend: {err}") from None
    skip = {(r["method"], r["lr"], r["seed"]) for r in previous["rows"]} if previous else ()
    start = time.perf_counter()
    table = tune(grid, seeds, profile, tokenizer, task=args.task, skip=skip)
    command = f"python -m llmup_lib tune --task {args.task} " + " ".join(
        [f"--grid {g}" for g in specs] + [f"--seeds {args.seeds}"])
    wall_seconds = round(time.perf_counter() - start)
    if previous is not None:
        table = extend_table(previous, table, command + " --extend", wall_seconds)
    else:
        table["command"], table["wall_seconds"] = command, wall_seconds
    path = save_tuning_table(table, path)
    print(f"wrote {len(table['rows'])} runs to {path} in {wall_seconds} s")


def _extraction(args) -> None:
    """``python -m llmup_lib extraction``: every (seed, arm), the table written atomically."""
    import time

    from .experiments.extraction import DATA_DIR, check_arm, run_table, save_table, table_path
    from .core.tokenizer import load_tokenizer

    try:
        arms = [check_arm(a.strip()) for a in args.arms.split(",")]
    except ValueError as err:
        raise SystemExit(f"error: {err}") from None
    try:
        seeds = [int(s) for s in args.seeds.split(",")]
    except ValueError:
        raise SystemExit(f"error: --seeds {args.seeds!r} must be whole numbers, e.g. 0,1,2.") \
            from None
    start = time.perf_counter()
    table = run_table(arms, seeds, load_tokenizer(), save_bases=DATA_DIR if args.save_bases
                      else None)
    table["command"] = (f"python -m llmup_lib extraction --arms {','.join(arms)} --seeds "
                        f"{args.seeds}" + (" --save-bases" if args.save_bases else ""))
    table["wall_seconds"] = round(time.perf_counter() - start)
    path = save_table(table, args.out or table_path())
    print(f"wrote {len(table['rows'])} runs to {path} in {table['wall_seconds']} s")


def _numbers(text: str, kind, flag: str, example: str) -> list:
    try:
        return [kind(x) for x in text.split(",")]
    except ValueError:
        raise ValueError(f"{flag} {text!r} must be comma-separated numbers, e.g. {example}.") \
            from None


def _capacity(args) -> None:
    """``python -m llmup_lib capacity``: every (size, rate, seed), the table written atomically."""
    import shlex
    import sys
    import time

    from .experiments.capacity import (SIZES, best_rates, check_size, extend_table, load_table, run_table, save_table, table_path)
    from .methods.scaling import non_embedding_params, parse_shape
    from .core.tokenizer import load_tokenizer

    out = args.out or table_path()
    try:
        sizes = [check_size(s.strip()) for s in (args.sizes or ",".join(SIZES)).split(",")]
        seeds = _numbers(args.seeds, int, "--seeds", "0,1,2")
        lrs = _numbers(args.lrs, float, "--lrs", "6e-3,1.2e-2")
        if not all(lr > 0 for lr in lrs):
            raise ValueError(f"--lrs {args.lrs!r} must be positive rates, e.g. 6e-3,1.2e-2.")
        table = load_table(out) if (args.extend or args.at_best) else None
        if args.at_best:
            best = best_rates(table)
            missing = [s for s in sizes if s not in best]
            if missing:
                raise ValueError(f"The table {str(out)!r} has no runs of {', '.join(missing)}; "
                                 "sweep their rates first (without --at-best).")
            points = [(s, best[s], seed) for s in sizes for seed in seeds]
        else:
            points = [(s, lr, seed) for s in sizes for lr in lrs for seed in seeds]
    except (ValueError, FileNotFoundError) as err:
        raise SystemExit(f"error: {err}") from None
    if table is not None:
        have = {(r["size"], r["lr"], r["seed"]) for r in table["rows"]}
        points = [p for p in points if p not in have]
    points.sort(key=lambda p: -non_embedding_params(parse_shape(p[0])))  # longest runs first
    start = time.perf_counter()
    try:
        more = run_table(points, load_tokenizer(), workers=args.workers)
    except ValueError as err:
        raise SystemExit(f"error: {err}") from None
    wall = round(time.perf_counter() - start)
    command = "python -m llmup_lib " + shlex.join(sys.argv[1:])
    more["made_by"] = [{"command": command, "runs": len(more["rows"]), "wall_seconds": wall}]
    if table is not None:
        more = {**extend_table(table, more),
                "made_by": table.get("made_by", []) + more["made_by"]}
    path = save_table(more, out)
    print(f"wrote {len(more['rows'])} runs to {path} ({len(points)} new, {wall} s)")


def _sweep(args) -> None:
    """``python -m llmup_lib sweep``; also runs under ``accelerate launch`` (data-parallel)."""
    from .core.profiles import get_profile
    from .methods.scaling import FAMILY_TOKENS, size_grid
    from .experiments.sweep import (SweepRecipe, check_workers, merge_tables, parse_shard, plan_isoflop,
                        run_sweep, save_table, shard_points)

    if args.merge:
        if args.merge[0] != "merge":
            raise SystemExit(f"error: unexpected argument {args.merge[0]!r}; to join tables use "
                             "`python -m llmup_lib sweep merge A B ... --out T`.")
        try:
            rows = merge_tables(args.merge[1:], args.out)
        except (ValueError, FileNotFoundError) as err:
            raise SystemExit(f"error: {err}") from None
        print(f"merged {len(args.merge) - 1} tables, {len(rows)} runs, into {args.out}")
        return
    try:
        if args.workers is not None:
            check_workers(args.workers)
        if args.shard is not None:
            parse_shard(args.shard)
    except ValueError as err:
        raise SystemExit(f"error: {err}") from None
    profile = get_profile(args.profile)
    overrides = {k: v for k, v in (("context", args.context), ("batch_size", args.batch_size))
                 if v is not None}
    recipe = SweepRecipe.from_profile(profile, **overrides)
    names = list(size_grid(args.sizes))
    if args.flops:
        budgets = [float(c) for c in args.flops.split(",")]
        points = plan_isoflop(budgets, names, recipe, args.min_steps, args.max_steps)
    else:
        tokens = int(args.tokens or FAMILY_TOKENS)
        points = [{"size": n, "tokens": tokens} for n in names]
    if not points:
        raise SystemExit("No sweep points: every size got too few steps; raise --flops.")
    if args.shard is not None:
        points = [{**p, "shard": args.shard} for p in shard_points(points, args.shard)]
        if not points:
            raise SystemExit(f"Shard {args.shard} has no points (there are fewer points than "
                             "shards); use fewer shards.")
    rows = run_sweep(points, recipe, cache=not args.no_cache, workers=args.workers)
    from accelerate import PartialState

    if PartialState().is_main_process:
        print(f"saved {len(rows)} runs to {save_table(rows, args.out)}")


if __name__ == "__main__":
    main()

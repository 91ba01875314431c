"""``python -m llmup_lib experiment NAME [options]``: make (or extend) an experiment's table.

NAME is ``tune`` (learning-rate sweeps, notebooks 02, 03, 06, 07), ``sweep`` (model sizes and
IsoFLOP budgets, notebook 05), ``capacity`` (knowledge capacity, notebook 05), ``extraction``
(knowledge extraction, notebook 04b) or ``zipf`` (a Zipf associative memory's scaling
exponents against theory, ``methods.zipf_memory``). Every experiment runs the same way: its
options are checked first (a bad profile, value or table is one sentence on stderr and exit
status 2, before any training), then its points run, and the table is saved atomically with the
runner's provenance: this command line, the runs, the wall time, the machine, its cores and the
date.
"""

from __future__ import annotations

import shlex
import sys
import time

NAMES = ("tune", "sweep", "capacity", "extraction", "zipf")


def _one_line_errors(parser):
    """A usage error is one sentence on stderr and exit status 2 (no usage block)."""
    def error(message):
        print(f"error: {message}.", file=sys.stderr)
        raise SystemExit(2)

    parser.error = error
    return parser


def add_experiment_parser(sub) -> None:
    """The ``experiment`` command and its five experiments, on the CLI's subparsers ``sub``."""
    exp = _one_line_errors(sub.add_parser(
        "experiment", help="make an experiment's table: tune, sweep, capacity, extraction or "
        "zipf (python -m llmup_lib experiment NAME --help)", description=__doc__))
    names = exp.add_subparsers(dest="experiment", required=True, metavar="{" + ",".join(NAMES)
                               + "}")
    tune = _one_line_errors(names.add_parser(
        "tune", help="learning-rate sweep of the fine-tuning methods over seeds on notebook "
        "02's task (the table notebooks 02 and 03 read), or of notebook 06's students "
        "(--task distill)"))
    tune.add_argument("--profile", default=None, help="cpu (default) or gpu")
    tune.add_argument("--grid", action="append", default=None, metavar="METHOD=LR,LR,...",
                      help="a method and its rates, repeatable; methods: full, full-replay, "
                      "scratch, larger, lora-rK (domain); scratch, kd, kd-half, kd-half-init, "
                      "t4-with-t2, t4-without-t2 (distill); full, lora-r8, lora-r8-unmasked "
                      "(instructions) (default: the shipped table's grid)")
    tune.add_argument("--task", default="domain", choices=("domain", "distill", "instructions"),
                      help="domain: notebooks 02-03's fine-tuning methods (default); distill: "
                      "notebook 06's students; instructions: notebook 04's arms")
    tune.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    tune.add_argument("--out", default=None,
                      help="table to write (default: llmup_lib/data/tuning/<profile>_<task>.json)")
    tune.add_argument("--extend", action="store_true",
                      help="add the grid's runs to the existing --out table (runs it already "
                      "holds are skipped) instead of replacing it")
    tune.add_argument("--steps", type=int, default=None,
                      help="domain task: fine-tune for N steps instead of the recipe's 100; "
                      "writes its own table, llmup_lib/data/tuning/<profile>_domain_steps<N>.json")
    tune.add_argument("--workers", type=int, default=None,
                      help="train N runs at once, each in a process of its own with the cores "
                      "split between them (default: one run at a time, in-process)")
    sweep = _one_line_errors(names.add_parser(
        "sweep", help="train a grid of model sizes (and IsoFLOP budgets) and save the results "
        "as a CSV/JSON table (notebook 05)"))
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
    sweep.add_argument("--lr-factors", default=None,
                       help="comma-separated multiples of each size's width-rule rate, e.g. "
                       "0.5,1,2: every size at each (a tuned sweep; default: the rule's rate)")
    sweep.add_argument("--seeds", default=None,
                       help="comma-separated seeds (initialisation and batch order; the data "
                       "stay the same), e.g. 0,1,2 (default: the profile's seed)")
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
    capacity = _one_line_errors(names.add_parser(
        "capacity", help="pretrain a size grid on biographies and probe the bits of facts each "
        "size stores (notebook 05's capacity table)"))
    capacity.add_argument("--sizes", default=None,
                          help="comma-separated sizes (default: capacity.SIZES, 2x8 to 2x48; "
                          "with --zipf, capacity.ZIPF_SIZES, 2x16 to 2x48)")
    capacity.add_argument("--lrs", default="6e-3,1.2e-2,2.4e-2",
                          help="comma-separated peak learning rates (default 6e-3,1.2e-2,2.4e-2)")
    capacity.add_argument("--at-best", action="store_true",
                          help="instead of --lrs, each size at its best rate in the --out table")
    capacity.add_argument("--seeds", default="0", help="comma-separated seeds (default 0)")
    capacity.add_argument("--workers", type=int, default=1,
                          help="runs trained at once, each in a process of its own (default 1)")
    capacity.add_argument("--extend", action="store_true",
                          help="add the runs to the existing --out table instead of replacing it")
    capacity.add_argument("--exposures", type=int, default=None,
                          help="biographies per person, one pass (default 200); another count "
                          "writes its own table, llmup_lib/data/capacity/cpu_e<N>.json")
    capacity.add_argument("--zipf", action="store_true",
                          help="a Zipf world instead (capacity.ZIPF_RECIPE: 2,000 people, "
                          "p_k ∝ k^-1.5, 64,000 biographies): llmup_lib/data/capacity/cpu_zipf.json")
    capacity.add_argument("--out", default=None,
                          help="table to write (default: llmup_lib/data/capacity/cpu.json)")
    extraction = _one_line_errors(names.add_parser(
        "extraction", help="pretrain small models on biographies written one way or several, "
        "instruction-tune them and score held-out questions (notebook 04b's extraction table)"))
    extraction.add_argument("--arms", default="single,fullname,augmented",
                            help="comma-separated arms: single, fullname, augmented (default all)")
    extraction.add_argument("--seeds", default="0,1,2",
                            help="comma-separated seeds (default 0,1,2)")
    extraction.add_argument("--save-bases", action="store_true",
                            help="also save the first seed's single and augmented bases "
                            "(float16) in llmup_lib/data/extraction/, the ones notebook 04b tunes live")
    extraction.add_argument("--out", default=None,
                            help="table to write (default: llmup_lib/data/extraction/cpu.json)")
    zipf = _one_line_errors(names.add_parser(
        "zipf", help="a Zipf associative memory trained over widths, token budgets and IsoFLOP "
        "budgets for Zipf exponents 1.2, 1.5 and 1.8, a rate tuned per cell, and its scaling "
        "exponents set beside the ones theory predicts (methods.zipf_memory)"))
    zipf.add_argument("--seeds", default="0,1,2",
                      help="comma-separated seeds, each cell's rate tuned on their mean "
                      "(default 0,1,2)")
    zipf.add_argument("--workers", type=int, default=1,
                      help="seeds of cells run at once, each in a process of its own (default 1)")
    zipf.add_argument("--quick", action="store_true",
                      help="the tiny recipe (zipf_memory.QUICK, seconds): a smoke test of every "
                      "path, written to zipf_quick.json unless --out")
    zipf.add_argument("--out", default=None,
                      help="table to write (default: llmup_lib/data/zipf/cpu.json)")


def run_experiment(args, argv) -> None:
    """Check ``args`` (one sentence on stderr and exit 2 if anything is wrong), then run the
    experiment and save its table; ``argv`` is the command line, kept in the provenance."""
    command = "python -m llmup_lib " + shlex.join(argv)
    plan = {"tune": _tune, "sweep": _sweep, "capacity": _capacity,
            "extraction": _extraction, "zipf": _zipf}[args.experiment]
    try:
        run = plan(args, command)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    run()


def _tuned_points(points, recipe, lr_factors, seeds) -> list[dict]:
    """``--lr-factors`` and ``--seeds`` parsed and checked (errors name the flag and the text
    as typed), then ``sweep.tuned_points``."""
    from .sweep import check_lr_factors, check_seeds, tuned_points

    factors = None if lr_factors is None else _numbers(lr_factors, float, "--lr-factors", "0.5,1,2")
    if factors is not None:
        check_lr_factors(factors, f"--lr-factors {lr_factors!r}")
    seed_list = None if seeds is None else _numbers(seeds, int, "--seeds", "0,1,2")
    if seed_list is not None:
        check_seeds(seed_list, f"--seeds {seeds!r}")
    return tuned_points(points, recipe, factors, seed_list)


def _numbers(text: str, kind, flag: str, example: str) -> list:
    try:
        return [kind(x) for x in text.split(",")]
    except ValueError:
        noun = "whole numbers" if kind is int else "numbers"
        raise ValueError(f"{flag} {text!r} must be comma-separated {noun}, e.g. {example}.") \
            from None


def _save(kind, table, previous, command: str, start: float, path) -> None:
    """Stamp (or extend ``previous`` by) ``table``, save it atomically and say so."""
    from . import runner

    wall = time.perf_counter() - start
    new = len(table["rows"])
    if previous is not None:
        table = runner.extend(kind, previous, table, command, wall)
        new = table["extended_by"][-1]["runs"]
    else:
        table = runner.stamp(table, command, wall)
    path = runner.save(table, path)
    print(f"wrote {len(table['rows'])} runs to {path} ({new} new, {round(wall)} s)")


def _tune(args, command):
    from ..core.profiles import get_profile
    from ..core.tokenizer import load_tokenizer
    from .runner import row_keys, validate_workers
    from .tuning import (DEFAULT_GRID, TUNING, load_tuning_table, parse_grid, tune,
                         tuning_table_path, validate_steps)

    profile = get_profile(args.profile)
    grid = parse_grid(args.grid or DEFAULT_GRID[args.task], args.task)
    seeds = _numbers(args.seeds, int, "--seeds", "0,1,2")
    tokenizer = load_tokenizer()
    steps = validate_steps(args.steps, args.task)
    if args.workers is not None:
        validate_workers(args.workers)
    path = args.out or tuning_table_path(profile.name, args.task, steps)
    previous = (load_tuning_table(profile, tokenizer, path, args.task, steps) if args.extend
                else None)
    skip = row_keys(TUNING, previous) if previous is not None else ()

    def run():
        start = time.perf_counter()
        table = tune(grid, seeds, profile, tokenizer, task=args.task, skip=skip, steps=steps,
                     workers=args.workers)
        _save(TUNING, table, previous, command, start, path)
    return run


def _extraction(args, command):
    from ..core.tokenizer import load_tokenizer
    from .extraction import DATA_DIR, EXTRACTION, run_table, table_path, validate_arm

    arms = [validate_arm(a.strip()) for a in args.arms.split(",")]
    seeds = _numbers(args.seeds, int, "--seeds", "0,1,2")

    def run():
        start = time.perf_counter()
        table = run_table(arms, seeds, load_tokenizer(),
                          save_bases=DATA_DIR if args.save_bases else None)
        _save(EXTRACTION, table, None, command, start, args.out or table_path())
    return run


def _capacity(args, command):
    from ..core.family import non_embedding_params, parse_shape
    from ..core.tokenizer import load_tokenizer
    from .capacity import (CAPACITY, SIZES, ZIPF_RECIPE, ZIPF_SIZES, best_rates, exposure_recipe,
                           load_table, run_table, table_path, validate_size)
    from .runner import row_keys, validate_workers

    if args.zipf and args.exposures is not None:
        raise ValueError(f"--exposures {args.exposures} and --zipf are two different tables; "
                         "pass one of them.")
    recipe = ZIPF_RECIPE if args.zipf else exposure_recipe(args.exposures)
    out = args.out or table_path(exposures=recipe.exposures, zipf=args.zipf)
    default = ZIPF_SIZES if args.zipf else SIZES
    sizes = [validate_size(s.strip()) for s in (args.sizes or ",".join(default)).split(",")]
    seeds = _numbers(args.seeds, int, "--seeds", "0,1,2")
    lrs = _numbers(args.lrs, float, "--lrs", "6e-3,1.2e-2")
    if not all(lr > 0 for lr in lrs):
        raise ValueError(f"--lrs {args.lrs!r} must be positive rates, e.g. 6e-3,1.2e-2.")
    validate_workers(args.workers)
    previous = load_table(out, recipe) if (args.extend or args.at_best) else None
    if args.at_best:
        best = best_rates(previous)
        missing = [s for s in sizes if s not in best]
        if missing:
            raise ValueError(f"The table {str(out)!r} has no runs of {', '.join(missing)}; "
                             "sweep their rates first (without --at-best).")
        points = [(s, best[s], seed) for s in sizes for seed in seeds]
    else:
        points = [(s, lr, seed) for s in sizes for lr in lrs for seed in seeds]
    if previous is not None:
        have = row_keys(CAPACITY, previous)
        points = [p for p in points if p not in have]
    points.sort(key=lambda p: -non_embedding_params(parse_shape(p[0])))  # longest runs first

    def run():
        start = time.perf_counter()
        table = run_table(points, load_tokenizer(), recipe, workers=args.workers)
        _save(CAPACITY, table, previous, command, start, out)
    return run


def _zipf(args, command):
    from ..methods import zipf_memory as zipf
    from .runner import validate_workers

    seeds = zipf.validate_seeds(_numbers(args.seeds, int, "--seeds", "0,1,2"))
    validate_workers(args.workers)
    recipe = zipf.QUICK if args.quick else zipf.RECIPE
    out = args.out or ("zipf_quick.json" if args.quick else zipf.table_path())

    def run():
        start = time.perf_counter()
        table = zipf.run_table(recipe, seeds, workers=args.workers,
                               log=None if args.quick else print)
        _save(zipf.ZIPF, table, None, command, start, out)
        for m in zipf.measured_exponents(table):
            print(f"a={m['a']:g}: " + ", ".join(f"{k} {m[k]:.3f} (predicted {v:.3f})"
                                               for k, v in m["predicted"].items()))
    return run


def _sweep(args, command):
    """Also runs under ``accelerate launch`` (data-parallel); only the main process saves."""
    from ..core.family import FAMILY_TOKENS, size_grid
    from ..core.profiles import get_profile
    from .runner import made_by, validate_workers
    from .sweep import (SweepRecipe, merge_tables, parse_shard, plan_isoflop, run_sweep,
                        save_table, shard_points)

    if args.merge:
        if args.merge[0] != "merge":
            raise ValueError(f"unexpected argument {args.merge[0]!r}; to join tables use "
                             "`python -m llmup_lib experiment sweep merge A B ... --out T`.")
        start = time.perf_counter()  # refused (exit 2, nothing written) or written here
        rows = merge_tables(args.merge[1:], args.out, command, time.perf_counter() - start)
        return lambda: print(f"merged {len(args.merge) - 1} tables, {len(rows)} runs, into "
                             f"{args.out}")
    if args.workers is not None:
        validate_workers(args.workers)
    if args.shard is not None:
        parse_shard(args.shard)
    profile = get_profile(args.profile)
    overrides = {k: v for k, v in (("context", args.context), ("batch_size", args.batch_size))
                 if v is not None}
    recipe = SweepRecipe.from_profile(profile, **overrides)
    names = list(size_grid(args.sizes))
    if args.flops:
        budgets = _numbers(args.flops, float, "--flops", "1e11,3e11,1e12")
        points = plan_isoflop(budgets, names, recipe, args.min_steps, args.max_steps)
    else:
        points = [{"size": n, "tokens": int(args.tokens or FAMILY_TOKENS)} for n in names]
    if not points:
        raise ValueError("No sweep points: every size got too few steps; raise --flops.")
    points = _tuned_points(points, recipe, args.lr_factors, args.seeds)
    if args.shard is not None:
        points = [{**p, "shard": args.shard} for p in shard_points(points, args.shard)]
        if not points:
            raise ValueError(f"Shard {args.shard} has no points (there are fewer points than "
                             "shards); use fewer shards.")

    def run():
        from accelerate import PartialState

        start = time.perf_counter()
        rows = run_sweep(points, recipe, cache=not args.no_cache, workers=args.workers)
        if PartialState().is_main_process:
            made = [made_by(command, len(rows), time.perf_counter() - start)]
            print(f"saved {len(rows)} runs to {save_table(rows, args.out, recipe, made)}")
    return run

"""Command line: ``python -m llmup_lib COMMAND``: info, build-tokenizer, build-base,
experiment {tune,sweep,capacity,extraction,zipf}, run-all."""

from __future__ import annotations

import argparse
import sys

from . import __version__
from .experiments.cli import add_experiment_parser, run_experiment


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(prog="python -m llmup_lib", description=__doc__)
    parser.add_argument("--version", action="version", version=f"llmup {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="print the environment check of notebook 00")
    sub.add_parser("build-tokenizer", help="retrain the shipped BPE tokenizer in llmup_lib/data/tokenizer")
    base = sub.add_parser("build-base", help="retrain the base model of a profile (llmup_lib/data/base/)")
    base.add_argument("--profile", default=None, help="cpu (default) or gpu")
    base.add_argument("--larger", action="store_true",
                      help="build notebook 07's larger pretrained model instead (base.LARGER: "
                      "the next size up, three times the data and steps)")
    base.add_argument("--half", action="store_true",
                      help="store the weights in float16 (half the file; loaded as float32)")
    add_experiment_parser(sub)
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

    try:
        _run(args, argv)
    except (FileNotFoundError, ValueError) as err:  # bad input: one sentence, no traceback
        raise SystemExit(f"error: {err}") from None


def _run(args, argv) -> None:
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
    elif args.command == "experiment":
        run_experiment(args, argv)
    elif args.command == "run-all":
        from . import runall

        if args.profile is not None:
            from .core.profiles import get_profile

            get_profile(args.profile)  # an unknown name fails here, with the valid ones
        raise SystemExit(runall.main(args))

if __name__ == "__main__":
    main()

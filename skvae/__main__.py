"""Command line: ``python -m skvae demo [--output-dir DIR]``."""

import argparse
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(prog="skvae", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo", help="fit VAEs on scikit-learn's digits, report and plot"
    )
    demo.add_argument("--output-dir", default="skvae-demo", help="where PNGs go")
    demo.add_argument("--max-iter", type=int, default=200, help="epochs per model")
    args = parser.parse_args(argv)
    if args.command == "demo":
        from ._demo import run_demo

        run_demo(args.output_dir, max_iter=args.max_iter)
    return 0


if __name__ == "__main__":
    sys.exit(main())

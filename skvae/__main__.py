"""Command line: ``skvae demo`` (or ``python -m skvae demo``)."""

import argparse
import sys

_DESCRIPTION = (
    "skvae: variational autoencoders that behave like scikit-learn estimators. "
    "Commands: 'demo' fits VAEs on scikit-learn's digits, prints held-out figures "
    "and writes two PNG files."
)


def _positive_int(text):
    """argparse type: an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _parser():
    from . import __version__

    parser = argparse.ArgumentParser(prog="skvae", description=_DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"skvae {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="fit VAEs on scikit-learn's digits, report and plot",
        description="Fit VAEs with 2 and 8 latent dimensions on scikit-learn's "
        "digits; print held-out log-likelihood, reconstruction error and the "
        "accuracy of a classifier on the latent codes; write latent_space.png and "
        "generated_digits.png.",
    )
    demo.add_argument("--output-dir", default="skvae-demo",
                      help="folder for the PNG files (default: skvae-demo)")
    demo.add_argument("--max-iter", type=_positive_int, default=200,
                      help="epochs per model, at least 1 (default: 200)")
    demo.add_argument("--threads", type=_positive_int, default=1,
                      help="torch threads while the demo runs (default: 1, which on "
                      "small networks and busy machines is the fastest)")
    return parser


def main(argv=None):
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if args.command == "demo":
        import torch

        from ._demo import run_demo

        threads = torch.get_num_threads()
        torch.set_num_threads(args.threads)
        try:
            run_demo(args.output_dir, max_iter=args.max_iter)
        except OSError as error:  # an output folder that cannot be made or written
            parser.error(f"cannot write the demo's files: {error}")
        finally:
            torch.set_num_threads(threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())

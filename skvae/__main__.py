"""Command line: ``skvae demo`` (or ``python -m skvae demo``)."""

import argparse
import os
import sys

_DESCRIPTION = (
    "skvae: variational autoencoders that behave like scikit-learn estimators. "
    "Commands: 'demo' fits VAEs on scikit-learn's digits, prints held-out figures "
    "and writes two PNG files."
)

# The exit status of a program stopped by Ctrl-C: 128 + SIGINT, as shells report it.
EXIT_INTERRUPTED = 130
# More epochs than any fit of the demo's models needs (they converge in a few
# hundred): beyond it a number is a typo, not a request.
MAX_EPOCHS = 100_000


def _cpu_count():
    """The CPUs this process may run on (its affinity where the system says)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _bounded_int(low, high, what):
    """An argparse type: an integer from ``low`` to ``high()`` (a callable, read when used)."""

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if not low <= value <= high():
            raise argparse.ArgumentTypeError(
                f"must be from {low} to {high():,} ({what}), not {value}"
            )
        return value

    return parse


def _auto_or(parse):
    """An argparse type: the word "auto", or what ``parse`` accepts."""

    def parse_or_auto(text):
        return "auto" if text == "auto" else parse(text)

    return parse_or_auto


def _parsers():
    """The top-level parser and the ``demo`` subcommand's, so errors use the right usage."""
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
                      help="folder for the PNG files, created if needed "
                      "(default: skvae-demo)")
    demo.add_argument("--max-iter", type=_auto_or(_bounded_int(1, lambda: MAX_EPOCHS, "the most epochs the demo runs")),
                      default="auto",
                      help=f"epochs per model, 1 to {MAX_EPOCHS:,} (default: auto, the "
                      "estimator's budget sized by the data)")
    demo.add_argument("--threads", type=_auto_or(_bounded_int(1, _cpu_count, "the number of CPUs here")),
                      default="auto",
                      help="torch threads while the demo runs, at most the number of "
                      "CPUs (default: auto, whichever of one thread and torch's "
                      "setting trains faster here, timed as it trains)")
    return parser, {"demo": demo}


def main(argv=None):
    """Run the command line on ``argv`` (default: ``sys.argv[1:]``); return the exit status.

    Bad arguments exit with status 2 and the usage of the command they were
    given to; Ctrl-C stops with status 130 and a note on stderr.
    """
    parser, commands = _parsers()
    # Unknown arguments are reported by the parser of the command they follow:
    # argparse would report them with the top-level usage.
    args, unknown = parser.parse_known_args(argv)
    command_parser = commands.get(args.command, parser)
    if unknown:
        command_parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return _run_demo(args, command_parser)
    except KeyboardInterrupt:
        print(
            f"skvae {args.command}: interrupted (Ctrl-C); stopped before the end. "
            "Files written before the interrupt are complete; the rest were not written.",
            file=sys.stderr,
        )
        _forget_unhandled_interrupt()
        return EXIT_INTERRUPTED


def _forget_unhandled_interrupt():
    """Clear CPython's record that a KeyboardInterrupt left string-evaluated code.

    CPython records it when code run by ``exec`` or ``eval`` of a string (as
    libraries do) ends in KeyboardInterrupt, even though a caller handles it,
    and at the exit of ``python -m skvae`` then kills the process with SIGINT
    instead of exiting with the status returned here. The record is reset
    when the next string is evaluated.
    """
    eval("None")


def _run_demo(args, demo_parser):
    import torch

    from ._demo import prepare_output_dir, run_demo

    try:
        # Checked before any training: a bad folder costs no minutes of fitting.
        output_dir = prepare_output_dir(args.output_dir)
    except ValueError as error:
        demo_parser.error(f"argument --output-dir: {error}")
    threads, setting = torch.get_num_threads(), os.environ.get("SKVAE_THREADS")
    if args.threads != "auto":
        # skvae's own setting: a count equal to torch's default is a choice too.
        os.environ["SKVAE_THREADS"] = str(args.threads)
        torch.set_num_threads(args.threads)
    try:
        run_demo(output_dir, max_iter=args.max_iter)
    except OSError as error:  # the folder became unwritable during the run
        demo_parser.error(
            f"cannot write the demo's files in {str(output_dir)!r}: "
            f"{error.strerror or error}"
        )
    finally:
        torch.set_num_threads(threads)
        if setting is None:
            os.environ.pop("SKVAE_THREADS", None)
        else:
            os.environ["SKVAE_THREADS"] = setting
    return 0


if __name__ == "__main__":
    sys.exit(main())

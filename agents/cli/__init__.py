"""The ``proteus`` console script: ``proteus demo | train | sweep | route | eval | data | serve``.

Each subcommand lives in its own module of this package and only parses and prints; the work is
done by the library (:mod:`agents.proteus`, :mod:`agents.evaluation`, :mod:`proteus_env`).

One error convention for every subcommand (:func:`main`):

- a user error (:data:`USER_ERRORS`: a bad value, a missing or malformed file) prints
  ``proteus <cmd>: error: <what, which value>`` on stderr and exits 2, like argparse's own errors;
- Ctrl-C exits 130 without a traceback;
- anything else is a bug: its traceback is shown, with a line asking to report it.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback
from collections.abc import Sequence

#: Exit status of a user error (argparse uses the same).
EXIT_USAGE = 2
#: Exit status after Ctrl-C (128 + SIGINT).
EXIT_INTERRUPTED = 130
#: Exceptions that mean "the input was wrong", not "the program is wrong".
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError, NotADirectoryError, IsADirectoryError,
                                                PermissionError, ImportError)

#: The subcommands, in help order: (name, module defining ``add_subparser(subparsers)``).
SUBCOMMANDS: tuple[tuple[str, str], ...] = (
    ("demo", "agents.cli.demo"),
    ("train", "agents.cli.train"),
    ("sweep", "agents.cli.sweep"),
    ("route", "agents.cli.route"),
    ("eval", "agents.cli.eval"),
    ("data", "agents.cli.data"),
    ("serve", "agents.cli.serve"),
)


class CommandError(Exception):
    """A user error detected by a subcommand itself (a contradictory pair of options, say)."""


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The argument parser with every subcommand.

    Given the command line ``argv`` whose first word names a subcommand, only that subcommand's
    module is imported (the others are registered by name): a command pays for its own imports
    only (``proteus data`` never imports torch), and its errors come as fast.
    """
    parser = argparse.ArgumentParser(prog="proteus", description="SLA-aware LLM routing: the PROTEUS routing gym.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    names = [name for name, _ in SUBCOMMANDS]
    chosen = argv[0] if argv and argv[0] in names else None
    for name, module_name in SUBCOMMANDS:
        if chosen is None or name == chosen:
            importlib.import_module(module_name).add_subparser(subparsers)
        else:
            subparsers.add_parser(name, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(argv).parse_args(argv)
    command = f"proteus {args.command}"
    try:
        return int(args.handler(args) or 0)
    except BrokenPipeError:  # output piped into `head` and the like: not an error
        sys.stderr.close()
        return 0
    except KeyboardInterrupt as exc:  # proteus train's TrainingInterrupted says where its checkpoint is
        print(f"\n{command}: {exc or 'interrupted'}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (CommandError, *USER_ERRORS) as exc:
        message = str(exc.args[0]) if len(exc.args) == 1 else str(exc)
        print(f"{command}: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except Exception:
        traceback.print_exc()
        print(f"{command}: internal error (a bug in proteus): please report it with the traceback above.", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

"""The ``gankern`` command line. Each subcommand lives in its own module of this package.

A subcommand module defines ``add_parser(subparsers)``, which adds its parser and sets
``func`` (called with the parsed arguments, returning an exit code) as a default. Every
command ends through :func:`gankern.cli.errors.run_command`: an expected failure is one line
on stderr and a non-zero exit status, a bug its traceback (see :mod:`gankern.cli.errors`).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from gankern.cli.errors import CommandParser, run_command

# Subcommand modules, in the order `gankern --help` lists them.
SUBCOMMANDS = ("info", "dataset", "metrics", "train", "generate", "translate", "project",
               "edit")


def build_parser() -> argparse.ArgumentParser:
    parser = CommandParser(
        prog="gankern",
        description="Fused GAN kernels, architectures, training and metrics.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND",
                                       parser_class=CommandParser)
    for name in SUBCOMMANDS:
        importlib.import_module(f"gankern.cli.{name}").add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return run_command(args.command, args.func, args)

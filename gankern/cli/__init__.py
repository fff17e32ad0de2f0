"""The ``gankern`` command line. Each subcommand lives in its own module of this package.

A subcommand module defines ``add_parser(subparsers)``, which adds its parser and sets
``func`` (called with the parsed arguments, returning an exit code) as a default.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# Subcommand modules, in the order `gankern --help` lists them.
SUBCOMMANDS = ("info", "dataset", "metrics", "train", "generate", "project", "edit")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gankern",
        description="Fused GAN kernels, architectures, training and metrics.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
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
    return int(args.func(args) or 0)

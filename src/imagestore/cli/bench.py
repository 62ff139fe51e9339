"""``imagestore bench``: hand the rest of the command line to the benchmark harness.

The global ``--config``/``--store`` are passed on; the harness's own arguments are not parsed here.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from ..errors import ImageStoreError
from .common import Context, Handler, UsageError

__all__ = ["COMMANDS", "bench_argv", "register", "split_argv"]


def register(sub: Any) -> None:
    """Add the ``bench`` command (whose arguments the harness parses) to the CLI's subparsers."""
    sub.add_parser("bench", help="the benchmark harness (imagestore bench --help)", add_help=False)


def split_argv(argv: list[str]) -> tuple[list[str], list[str]]:
    """Cut ``imagestore [global options] bench ARGS``: ARGS belong to the harness, untouched."""
    i = 0
    while i < len(argv):
        word = argv[i]
        if word in ("--config", "--store"):
            i += 2
            continue
        if not word.startswith("-"):
            return (argv[: i + 1], argv[i + 1:]) if word == "bench" else (argv, [])
        i += 1
    return argv, []


def _option_values(argv: list[str], option: str) -> list[str]:
    """Every value given to ``option`` (``--opt V`` or ``--opt=V``) in ``argv``."""
    found = []
    for i, word in enumerate(argv):
        if word == option and i + 1 < len(argv):
            found.append(argv[i + 1])
        elif word.startswith(option + "="):
            found.append(word[len(option) + 1:])
    return found


def bench_argv(args: argparse.Namespace) -> list[str]:
    """The harness's arguments: the global ``--config`` and ``--store`` mean what they mean for every
    other command (the harness's own ``--config``/``--store`` are aliases; two different files are a
    usage error)."""
    own = list(args.args)
    if own[:1] == ["--"]:
        own = own[1:]
    extra: list[str] = []
    if args.config is not None:
        theirs = _option_values(own, "--config")
        if any(os.path.abspath(v) != os.path.abspath(args.config) for v in theirs):
            raise UsageError(f"--config {args.config} and bench --config {theirs[0]} differ: give one")
        if not theirs:
            extra += ["--config", args.config]
    if args.store is not None and not _option_values(own, "--store"):
        extra += ["--store", args.store]
    return [*extra, *own]


def cmd_bench(ctx: Context) -> None:
    """Run the harness; its exit status is the command's."""
    try:
        from imagestore_bench.harness import main as bench_main
    except ImportError as exc:
        raise ImageStoreError(f"the benchmark harness cannot be imported ({exc}): "
                              "pip install 'imagestore[bench]'") from exc
    raise SystemExit(bench_main(bench_argv(ctx.args)))


COMMANDS: dict[str, Handler] = {"bench": cmd_bench}

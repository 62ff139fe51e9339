"""``imagestore inspect``: a file's disk format and safety verdict, without storing anything."""

from __future__ import annotations

import os
import sys
from typing import Any

from .common import Context, Handler, UsageError, emit

__all__ = ["COMMANDS", "register"]


def register(sub: Any) -> None:
    """Add the ``inspect`` command to the CLI's subparsers."""
    i = sub.add_parser("inspect", help="format and safety verdict of a file; stores nothing")
    i.add_argument("file", help="image file, or - for stdin")


def cmd_inspect(ctx: Context) -> None:
    """Print the verdict; an unsafe image exits 1."""
    from ..formats import inspect

    path = ctx.args.file
    if path != "-" and not os.path.isfile(path):
        raise UsageError(f"no such file: {path}")
    verdict = inspect(sys.stdin.buffer if path == "-" else path)
    d = verdict.to_dict()
    out = {"format": d["format"], "safe": d["safe"], "reasons": d["reasons"], "virtual_size": d["virtual_size"]}
    text = f"format: {d['format']}\nsafe: {d['safe']}\nvirtual_size: {d['virtual_size']}"
    text += "".join(f"\nreason: {r}" for r in d["reasons"])
    emit(ctx, out, text)
    if not verdict.safe:
        raise SystemExit(1)


COMMANDS: dict[str, Handler] = {"inspect": cmd_inspect}

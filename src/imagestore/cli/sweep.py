"""``imagestore sweep``: remove the temporaries dead writers left in one or every store."""

from __future__ import annotations

from typing import Any

from .common import Context, Handler, emit

__all__ = ["COMMANDS", "register"]


def register(sub: Any) -> None:
    """Add the ``sweep`` command to the CLI's subparsers."""
    w = sub.add_parser("sweep", help="remove temporaries left by dead writers (never a live one)")
    w.add_argument("--older-than", default=None, metavar="DURATION",
                   help="only temporaries older than this (30s, 10m, 1h; default: the store's sweep_older_than)")
    w.add_argument("--all", action="store_true", help="sweep every configured store, not only --store/default")


def cmd_sweep(ctx: Context) -> None:
    """Sweep the chosen store (or every writable one with ``--all``) and total what was freed."""
    from ..config import parse_duration

    a = ctx.args
    age = None if a.older_than is None else parse_duration(a.older_than, "--older-than")
    names = list(ctx.stores) if a.all else [a.store or ctx.stores.default_name]
    out: dict[str, Any] = {"stores": {}, "removed": 0, "bytes_freed": 0}
    lines = []
    for name in names:
        store = ctx.store(name)
        if not store.capabilities.write:
            continue
        report = store.sweep(age, sources=ctx.stores)
        out["stores"][name] = report.to_dict()
        out["removed"] += report.removed
        out["bytes_freed"] += report.bytes_freed
        lines.append(f"{name}: removed {report.removed} temporaries, {report.bytes_freed} bytes")
    emit(ctx, out, "\n".join(lines))


COMMANDS: dict[str, Handler] = {"sweep": cmd_sweep}

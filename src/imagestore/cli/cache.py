"""``imagestore cache ls|fetch|evict|verify``: the compute-node image cache from a shell."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..cache import ImageCache
from .common import Context, Handler, UsageError, emit

__all__ = ["COMMANDS", "cmd_cache", "default_dir", "register"]


def default_dir() -> str:
    """``$IMAGESTORE_CACHE_DIR``, else ``$XDG_CACHE_HOME/imagestore`` (normally ``~/.cache/imagestore``)."""
    if os.environ.get("IMAGESTORE_CACHE_DIR"):
        return os.environ["IMAGESTORE_CACHE_DIR"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "imagestore")


def register(sub: Any) -> None:
    """Add the ``cache`` command and its subcommands to the CLI's subparsers."""
    c = sub.add_parser("cache", help="the compute-node image cache (ls, fetch, evict, verify)")
    c.add_argument("--dir", default=None,
                   help="cache directory (default: $IMAGESTORE_CACHE_DIR, else ~/.cache/imagestore)")
    c.add_argument("--max-bytes", default=None, help="size bound kept by fetch and evict (10G, 500M, bytes)")
    ops = c.add_subparsers(dest="cache_command", required=True, parser_class=type(c))
    ops.add_parser("ls", help="cached images, least recently used first")
    f = ops.add_parser("fetch", help="fetch an image into the cache (verified); prints its path")
    f.add_argument("location", help="location string or image id (in --store or the default store)")
    f.add_argument("--expected", action="append", default=[], metavar="ALGO:HEX",
                   help="digest the image must have (repeatable; default: the store's checksum)")
    f.add_argument("--verify", action="store_true", help="re-hash a cached entry before trusting it")
    e = ops.add_parser("evict", help="remove entries (never one that is open or leased)")
    e.add_argument("--all", action="store_true", help="every entry that is not in use")
    e.add_argument("--key", action="append", default=[], help="this entry (repeatable)")
    e.add_argument("--max-age", default=None, metavar="DURATION", help="entries unused for longer (1h, 2d)")
    ops.add_parser("verify", help="re-hash every entry and re-inspect it against the format policy")


def _cache(ctx: Context) -> ImageCache:
    from ..config import parse_size

    a = ctx.args
    max_bytes = None if a.max_bytes is None else parse_size(a.max_bytes, "--max-bytes")
    return ImageCache(Path(a.dir or default_dir()), max_bytes, store=ctx.stores)


def cmd_cache(ctx: Context) -> None:
    """Run one ``cache`` subcommand."""
    from ..config import parse_duration

    a = ctx.args
    cache = _cache(ctx)
    if a.cache_command == "ls":
        entries = [e.to_dict() for e in cache.entries()]
        lines = [f"{e['key'][:24]}  {e['size']:>14}  {e['allocated']:>14}  {e['format'] or '-':6}  {e['source']}"
                 for e in entries]
        emit(ctx, {"entries": entries, "total_bytes": sum(e["allocated"] for e in entries)}, "\n".join(lines))
    elif a.cache_command == "fetch":
        expected = {}
        for item in a.expected:
            algo, sep, digest = item.partition(":")
            if not sep or not digest:
                raise UsageError(f"--expected wants ALGO:HEX, got {item!r}")
            expected[algo.strip().lower()] = digest.strip()
        store = ctx.store() if "://" not in a.location or a.store else None
        bar, done = ctx.progress(f"fetch {a.location}")
        try:
            path = cache.fetch(a.location, expected or None, store=store, progress=bar, verify=a.verify)
        finally:
            done()
        entry = next(e for e in cache.entries() if e.key == path.name)
        emit(ctx, {"key": entry.key, "path": str(path), "size": entry.size, "format": entry.format,
                   "source": entry.source}, str(path))
    elif a.cache_command == "evict":
        if a.all:
            report = cache.evict(keys=[e.key for e in cache.entries()])
        elif a.key or a.max_age is not None:
            age = None if a.max_age is None else parse_duration(a.max_age, "--max-age")
            report = cache.evict(keys=a.key or None, max_age=age)
        else:
            report = cache.evict()
        d = report.to_dict()
        emit(ctx, d, f"removed {len(d['removed'])} entries, {d['bytes_freed']} bytes; kept {len(d['kept'])} "
                     "in use")
    else:
        verified = cache.verify()
        revalidated = cache.revalidate()
        out = {**verified.to_dict(), "refused": {k: list(v) for k, v in revalidated.refused.items()},
               "in_use": list(revalidated.in_use)}
        emit(ctx, out, f"ok {len(verified.ok)}, corrupt {len(verified.corrupt)}, refused by the policy "
                       f"{len(revalidated.refused)}")
        if verified.corrupt or revalidated.refused:
            raise SystemExit(1)


COMMANDS: dict[str, Handler] = {"cache": cmd_cache}

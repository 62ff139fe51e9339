"""``imagestore scrub``: read a store's images back and check each against its digest."""

from __future__ import annotations

from typing import Any

from .common import Context, Handler, UsageError, emit

__all__ = ["COMMANDS", "register"]


def register(sub: Any) -> None:
    """Add the ``scrub`` command to the CLI's subparsers."""
    s = sub.add_parser("scrub", help="read every image back and check it against its digest (exit 1 if corrupt)")
    s.add_argument("--rate", type=float, default=None, metavar="MB/S",
                   help="read at most this many MB (10^6 bytes) a second, so that production reads are not starved")
    s.add_argument("--prefix", default="", metavar="TEXT", help="only images whose id starts with TEXT")
    s.add_argument("--start-after", default=None, metavar="ID",
                   help="only images whose id sorts after this one (go on where a scrub stopped: its 'last')")
    s.add_argument("--older-than", default=None, metavar="AGE",
                   help="only images written longer ago than AGE (30m, 12h, 7d): newer ones were hashed as they "
                        "were written")
    s.add_argument("--no-backfill", dest="backfill", action="store_false",
                   help="only read: do not record the digest and block table of images stored without them")


def cmd_scrub(ctx: Context) -> None:
    """Scrub the chosen store; with ``--json`` one object with a record per image. Exit 1 when an
    image is corrupt (reported, never deleted)."""
    a = ctx.args
    if a.rate is not None and not a.rate > 0:
        raise UsageError(f"--rate must be a positive number of MB/s, not {a.rate:g}")
    from ..config import parse_duration

    age = None if a.older_than is None else parse_duration(a.older_than, "--older-than")
    store = ctx.store(a.store or ctx.stores.default_name)
    records: list[dict[str, Any]] = []
    lines: list[str] = []

    def seen(item: Any) -> None:
        records.append(item.to_dict())
        if item.status not in ("ok", "skipped") or (item.status == "ok" and item.detail):
            lines.append(f"{item.image}: {item.status}" + (f" ({item.detail})" if item.detail else ""))
        if item.backfilled:
            lines.append(f"{item.image}: recorded its {' and '.join(item.backfilled)}")

    report = store.scrub(prefix=a.prefix, start_after=a.start_after, rate=None if a.rate is None else a.rate * 1e6,
                         older_than=age, backfill=a.backfill, on_image=seen)
    out = {"store": store.name, **report.to_dict(), "images": records}
    lines.append(f"{store.name}: checked {report.checked} images ({report.bytes_read} bytes): "
                 f"{len(report.corrupt)} corrupt, {len(report.unverifiable)} unverifiable, {len(report.failed)} failed, "
                 f"{len(report.backfilled)} backfilled, {report.skipped} skipped"
                 + (f"; last {report.last}" if report.last else ""))
    emit(ctx, out, "\n".join(lines))
    if report.corrupt:
        raise SystemExit(1)


COMMANDS: dict[str, Handler] = {"scrub": cmd_scrub}

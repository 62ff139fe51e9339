"""``imagestore add|get|stat|rm|locate|clone``: one image's life in a store, from a shell."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from .common import Context, Handler, UsageError, emit

__all__ = ["COMMANDS", "register"]


def register(sub: Any) -> None:
    """Add the image commands to the CLI's subparsers."""
    a = sub.add_parser("add", help="store an image")
    a.add_argument("id")
    a.add_argument("file", nargs="?", default="-", help="image file, or - for stdin (default)")
    a.add_argument("--size", type=int, help="declared size in bytes (checked)")
    a.add_argument("--format", help="declared disk format (checked against the detected one)")
    g = sub.add_parser("get", help="read an image (verified by default)")
    g.add_argument("location")
    g.add_argument("-o", "--output", default="-", help="output file (written atomically), or - for stdout")
    g.add_argument("--offset", type=int, default=0)
    g.add_argument("--length", type=int)
    g.add_argument("--no-verify", action="store_true", help="do not check the checksum")
    for cmd, text in (("stat", "size, checksums and format"), ("rm", "delete an image"),
                      ("locate", "direct access for another service")):
        sub.add_parser(cmd, help=text).add_argument("location")
    c = sub.add_parser("clone", help="clone an image, copy-on-write where possible")
    c.add_argument("location")
    c.add_argument("--to", help="target store (default: the source's store)")
    c.add_argument("--name", help="name of the clone (default: the source's id)")
    c.add_argument("--mode", default="auto", choices=["auto", "cow", "server_copy", "stream"])
    c.add_argument("--size", type=int, help="grow the clone to this size (cow only)")
    c.add_argument("--format", choices=["raw"], default=None,
                   help="a raw clone: convert a qcow2/vmdk/vhdx/vdi/vhd image once into a raw base in the "
                        "target store, then clone that base copy-on-write")


def _human_info(d: dict[str, Any]) -> str:
    lines = [f"location:     {d['location']}", f"store:        {d['store']}", f"size:         {d['size']}",
             f"format:       {d['format']}", f"virtual_size: {d['virtual_size']}"]
    lines += [f"{algo + ':':13} {digest}" for algo, digest in d["checksums"].items()]
    if d.get("integrity"):
        lines.append(f"{'blake3:':13} {d['integrity']} (integrity)")
    return "\n".join(lines)


def cmd_add(ctx: Context) -> None:
    """Store a file (or stdin) under an id in the chosen store."""
    a = ctx.args
    store = ctx.store()
    bar, done = ctx.progress(f"add {a.id}")
    try:
        if a.file == "-":
            info = store.add(a.id, sys.stdin.buffer, a.size, format=a.format, progress=bar)
        else:
            if not os.path.isfile(a.file):
                raise UsageError(f"no such file: {a.file}")
            size = a.size if a.size is not None else os.path.getsize(a.file)
            info = store.add(a.id, a.file, size, format=a.format, progress=bar)
    finally:
        done()
    d = info.to_dict()
    emit(ctx, d, _human_info(d))


def cmd_get(ctx: Context) -> None:
    """Read an image (or a range of it) to stdout or a file written atomically."""
    a = ctx.args
    store, loc = ctx.resolve(a.location)
    bar, done = ctx.progress(f"get {loc.image}")
    verify = False if a.no_verify else None
    try:
        if a.output == "-":
            with store.open(loc, a.offset, a.length, verify=verify, progress=bar) as reader:
                out = sys.stdout.buffer
                for chunk in reader:
                    out.write(chunk)
                out.flush()
            return
        if a.offset or a.length is not None:
            from ..engine.reader import write_atomically

            with store.open(loc, a.offset, a.length, verify=verify, progress=bar) as reader:
                write_atomically(reader, a.output)
        else:
            store.download_to(loc, a.output, verify=not a.no_verify, progress=bar)
    finally:
        done()
    if a.json:
        print(json.dumps({"location": str(loc), "output": a.output}))


def cmd_stat(ctx: Context) -> None:
    """Print an image's size, checksums and format."""
    store, loc = ctx.resolve(ctx.args.location)
    d = store.stat(loc).to_dict()
    emit(ctx, d, _human_info(d))


def cmd_rm(ctx: Context) -> None:
    """Delete an image and print the outcome."""
    store, loc = ctx.resolve(ctx.args.location)
    outcome = store.delete(loc)
    emit(ctx, {"outcome": outcome.value}, outcome.value)


def cmd_locate(ctx: Context) -> None:
    """Print the direct access another service needs to reach an image's bits."""
    store, loc = ctx.resolve(ctx.args.location)
    d = store.locate(loc).to_dict()
    emit(ctx, d, "\n".join(f"{k}: {v}" for k, v in d.items()))


def cmd_clone(ctx: Context) -> None:
    """Clone an image (into another store with ``--to``), copy-on-write where possible."""
    a = ctx.args
    store, loc = ctx.resolve(a.location)
    target = ctx.store(a.to) if a.to else store
    bar, done = ctx.progress(f"clone {loc.image}")
    try:
        result = store.clone(loc, target, name=a.name, mode=a.mode, size=a.size, progress=bar, format=a.format)
    finally:
        done()
    d = result.to_dict()
    how = d["mode"] + (", converted" if d["converted"] else "") + (f", from base {d['base']}" if d["base"] else "")
    emit(ctx, d, f"{d['location']} ({how})")


COMMANDS: dict[str, Handler] = {
    "add": cmd_add, "get": cmd_get, "stat": cmd_stat, "rm": cmd_rm, "locate": cmd_locate, "clone": cmd_clone,
}

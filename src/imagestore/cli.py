"""The ``imagestore`` command: the library's operations from a shell.

Every command accepts any location string it printed, with the same
configuration and without ``--store``. With ``--json`` a command prints one
JSON object on stdout; errors print one line on stderr (JSON with ``--json``)
and exit 2 for usage and configuration errors, 1 for everything else.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from . import cli_cache
from .errors import ConfigError, ImageStoreError, InvalidLocation
from .location import Location
from .progress import Progress, ProgressBar
from .store import Store
from .stores import Stores

__all__ = ["main"]


class _UsageError(Exception):
    """A command-line mistake: exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _UsageError(message)


def _build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="imagestore", description="Store, read, clone and locate virtual-machine images.")
    p.add_argument("--config", help="TOML configuration (default: $IMAGESTORE_CONFIG, else the embedded local store)")
    p.add_argument("--store", help="store to use (default: the configured default, or the location's store)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    sub.add_parser("stores", help="configured stores and their capabilities")
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
    w = sub.add_parser("sweep", help="remove temporaries left by dead writers (never a live one)")
    w.add_argument("--older-than", default=None, metavar="DURATION",
                   help="only temporaries older than this (30s, 10m, 1h; default: the store's sweep_older_than)")
    w.add_argument("--all", action="store_true", help="sweep every configured store, not only --store/default")
    i = sub.add_parser("inspect", help="format and safety verdict of a file; stores nothing")
    i.add_argument("file", help="image file, or - for stdin")
    sub.add_parser("bench", help="the benchmark harness (imagestore bench --help)", add_help=False)
    cli_cache.register(sub)
    return p


class _Context:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self._stores: Stores | None = None

    @property
    def stores(self) -> Stores:
        if self._stores is None:
            self._stores = Stores.from_env(self.args.config)
        return self._stores

    def store(self, name: str | None = None) -> Store:
        chosen = name or self.args.store
        return self.stores.get_store(chosen) if chosen else self.stores.default

    def resolve(self, text: str) -> tuple[Store, Location]:
        """The store and location for a location string (or a bare id in the chosen store)."""
        if "://" not in text:
            store = self.store()
            return store, store.location(text)
        if self.args.store:
            store = self.store()
            return store, store.location(text)
        return self.stores.resolve(text)

    def progress(self, label: str) -> tuple[Progress | None, Callable[[], None]]:
        if self.args.quiet or not sys.stderr.isatty():
            return None, lambda: None
        bar = ProgressBar(label)
        return bar, bar.close

    def close(self) -> None:
        if self._stores is not None:
            self._stores.close()


def _emit(ctx: _Context, payload: dict[str, Any], text: str) -> None:
    if ctx.args.json:
        print(json.dumps(payload, sort_keys=False))
    else:
        print(text)


def _human_info(d: dict[str, Any]) -> str:
    lines = [f"location:     {d['location']}", f"store:        {d['store']}", f"size:         {d['size']}",
             f"format:       {d['format']}", f"virtual_size: {d['virtual_size']}"]
    lines += [f"{algo + ':':13} {digest}" for algo, digest in d["checksums"].items()]
    return "\n".join(lines)


def _cmd_stores(ctx: _Context) -> None:
    out: dict[str, Any] = {"default": ctx.stores.default_name, "stores": {}}
    lines = []
    for name in ctx.stores:
        mark = "*" if name == ctx.stores.default_name else " "
        try:
            store = ctx.stores[name]
        except ImageStoreError as exc:  # one unreachable backend does not hide the others
            out["stores"][name] = {"driver": ctx.stores.driver_name(name), "error": type(exc).__name__,
                                   "message": str(exc)}
            lines.append(f"{mark} {name:12} {ctx.stores.driver_name(name):7} unavailable: {exc}")
            continue
        caps = store.capabilities.to_dict()
        out["stores"][name] = {"driver": store.driver.scheme, **store.driver.describe(), "capabilities": caps}
        flags = ",".join(k for k, v in caps.items() if v is True)
        lines.append(f"{mark} {name:12} {store.driver.scheme:7} {flags}")
    _emit(ctx, out, "\n".join(lines))


def _cmd_sweep(ctx: _Context) -> None:
    from .config import parse_duration

    a = ctx.args
    age = None if a.older_than is None else parse_duration(a.older_than, "--older-than")
    names = list(ctx.stores) if a.all else [a.store or ctx.stores.default_name]
    out: dict[str, Any] = {"stores": {}, "removed": 0, "bytes_freed": 0}
    lines = []
    for name in names:
        store = ctx.store(name)
        if not store.capabilities.write:
            continue
        report = store.sweep(age)
        out["stores"][name] = report.to_dict()
        out["removed"] += report.removed
        out["bytes_freed"] += report.bytes_freed
        lines.append(f"{name}: removed {report.removed} temporaries, {report.bytes_freed} bytes")
    _emit(ctx, out, "\n".join(lines))


def _cmd_add(ctx: _Context) -> None:
    a = ctx.args
    store = ctx.store()
    bar, done = ctx.progress(f"add {a.id}")
    try:
        if a.file == "-":
            info = store.add(a.id, sys.stdin.buffer, a.size, format=a.format, progress=bar)
        else:
            if not os.path.isfile(a.file):
                raise _UsageError(f"no such file: {a.file}")
            size = a.size if a.size is not None else os.path.getsize(a.file)
            info = store.add(a.id, a.file, size, format=a.format, progress=bar)
    finally:
        done()
    d = info.to_dict()
    _emit(ctx, d, _human_info(d))


def _cmd_get(ctx: _Context) -> None:
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
            from .reader import write_atomically

            with store.open(loc, a.offset, a.length, verify=verify, progress=bar) as reader:
                write_atomically(reader, a.output)
        else:
            store.download_to(loc, a.output, verify=not a.no_verify, progress=bar)
    finally:
        done()
    if a.json:
        print(json.dumps({"location": str(loc), "output": a.output}))


def _cmd_stat(ctx: _Context) -> None:
    store, loc = ctx.resolve(ctx.args.location)
    d = store.stat(loc).to_dict()
    _emit(ctx, d, _human_info(d))


def _cmd_rm(ctx: _Context) -> None:
    store, loc = ctx.resolve(ctx.args.location)
    outcome = store.delete(loc)
    _emit(ctx, {"outcome": outcome.value}, outcome.value)


def _cmd_locate(ctx: _Context) -> None:
    store, loc = ctx.resolve(ctx.args.location)
    d = store.locate(loc).to_dict()
    _emit(ctx, d, "\n".join(f"{k}: {v}" for k, v in d.items()))


def _cmd_clone(ctx: _Context) -> None:
    a = ctx.args
    store, loc = ctx.resolve(a.location)
    target = ctx.store(a.to) if a.to else store
    bar, done = ctx.progress(f"clone {loc.image}")
    try:
        result = store.clone(loc, target, name=a.name, mode=a.mode, size=a.size, progress=bar)
    finally:
        done()
    d = result.to_dict()
    _emit(ctx, d, f"{d['location']} ({d['mode']})")


def _cmd_inspect(ctx: _Context) -> None:
    from .formats import inspect

    path = ctx.args.file
    if path != "-" and not os.path.isfile(path):
        raise _UsageError(f"no such file: {path}")
    verdict = inspect(sys.stdin.buffer if path == "-" else path)
    d = verdict.to_dict()
    out = {"format": d["format"], "safe": d["safe"], "reasons": d["reasons"], "virtual_size": d["virtual_size"]}
    text = f"format: {d['format']}\nsafe: {d['safe']}\nvirtual_size: {d['virtual_size']}"
    text += "".join(f"\nreason: {r}" for r in d["reasons"])
    _emit(ctx, out, text)
    if not verdict.safe:
        raise SystemExit(1)


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
            raise _UsageError(f"--config {args.config} and bench --config {theirs[0]} differ: give one")
        if not theirs:
            extra += ["--config", args.config]
    if args.store is not None and not _option_values(own, "--store"):
        extra += ["--store", args.store]
    return [*extra, *own]


def _cmd_bench(ctx: _Context) -> None:
    try:
        from imagestore_bench.harness import main as bench_main
    except ImportError as exc:
        raise ImageStoreError(f"the benchmark harness is not installed ({exc}); install imagestore from a "
                              "source checkout: pip install -e '.[bench]'") from exc
    raise SystemExit(bench_main(bench_argv(ctx.args)))


_COMMANDS: dict[str, Callable[[_Context], None]] = {
    "stores": _cmd_stores, "add": _cmd_add, "get": _cmd_get, "stat": _cmd_stat, "rm": _cmd_rm,
    "locate": _cmd_locate, "clone": _cmd_clone, "inspect": _cmd_inspect, "bench": _cmd_bench,
    "sweep": _cmd_sweep, "cache": cli_cache.cmd_cache,
}


def _fail(json_mode: bool, exc: BaseException, status: int) -> int:
    name = type(exc).__name__ if not isinstance(exc, _UsageError) else "UsageError"
    message = str(exc).splitlines()[0] if str(exc) else name
    if json_mode:
        print(json.dumps({"error": name, "message": message}), file=sys.stderr)
    else:
        print(f"imagestore: error: {message}", file=sys.stderr)
    return status


def _split_bench(argv: list[str]) -> tuple[list[str], list[str]]:
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


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    json_mode = "--json" in argv
    head, bench_args = _split_bench(argv)
    try:
        args = _build_parser().parse_args(head)
    except _UsageError as exc:
        return _fail(json_mode, exc, 2)
    if args.command == "bench":
        args.args = bench_args
    ctx = _Context(args)
    try:
        _COMMANDS[args.command](ctx)
        return 0
    except SystemExit as exc:  # a command's own status (inspect: unsafe; bench: the harness's)
        return exc.code if isinstance(exc.code, int) else 1
    except (_UsageError, ConfigError, InvalidLocation) as exc:
        return _fail(args.json, exc, 2)
    except ImageStoreError as exc:
        return _fail(args.json, exc, 1)
    except BrokenPipeError:
        return 1
    except KeyboardInterrupt:
        return _fail(args.json, ImageStoreError("interrupted; nothing was published"), 130)
    except OSError as exc:  # local files named on the command line
        return _fail(args.json, exc, 1)
    except Exception as exc:  # noqa: BLE001 - a command never ends in a traceback
        return _fail(args.json, ImageStoreError(f"internal error: {type(exc).__name__}: {exc}"), 1)
    finally:
        ctx.close()


if __name__ == "__main__":
    raise SystemExit(main())

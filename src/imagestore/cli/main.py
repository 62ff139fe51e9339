"""The ``imagestore`` command line: global options, the command table and the exit-status rules.

Each command family registers its own arguments and handlers; this module only parses and dispatches.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from ..errors import ConfigError, ImageStoreError, InvalidLocation
from . import bench, cache, images, inspect, scrub, stores, sweep
from .common import Context, Handler, Parser, UsageError

__all__ = ["main"]

_FAMILIES = (stores, images, sweep, scrub, inspect, bench, cache)
"""In the order ``imagestore --help`` lists their commands."""

_COMMANDS: dict[str, Handler] = {name: handler for family in _FAMILIES for name, handler in family.COMMANDS.items()}


def _build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="imagestore", description="Store, read, clone and locate virtual-machine images.")
    p.add_argument("--config", help="TOML configuration (default: $IMAGESTORE_CONFIG, else the embedded local store)")
    p.add_argument("--store", help="store to use (default: the configured default, or the location's store)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    for family in _FAMILIES:
        family.register(sub)
    return p


def _fail(json_mode: bool, exc: BaseException, status: int) -> int:
    name = type(exc).__name__ if not isinstance(exc, UsageError) else "UsageError"
    message = str(exc).splitlines()[0] if str(exc) else name
    if json_mode:
        print(json.dumps({"error": name, "message": message}), file=sys.stderr)
    else:
        print(f"imagestore: error: {message}", file=sys.stderr)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    json_mode = "--json" in argv
    head, bench_args = bench.split_argv(argv)
    try:
        args = _build_parser().parse_args(head)
    except UsageError as exc:
        return _fail(json_mode, exc, 2)
    if args.command == "bench":
        args.args = bench_args
    ctx = Context(args)
    try:
        _COMMANDS[args.command](ctx)
        return 0
    except SystemExit as exc:  # a command's own status (inspect: unsafe; bench: the harness's)
        return exc.code if isinstance(exc.code, int) else 1
    except (UsageError, ConfigError, InvalidLocation) as exc:
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

"""What every command shares: the per-run context (stores, chosen store, progress), output and usage errors.

Command modules import this and nothing of each other, so the dispatcher in ``main`` is the only hub.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from ..location import Location
from ..engine.progress import Progress, ProgressBar
from ..store import Store, Stores

__all__ = ["Context", "Handler", "Parser", "UsageError", "emit"]


class UsageError(Exception):
    """A command-line mistake: exit status 2."""


class Parser(argparse.ArgumentParser):
    """An argument parser whose mistakes raise :class:`UsageError` instead of exiting."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


class Context:
    """One run's parsed arguments and the stores it opens lazily (closed by ``main``)."""

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


Handler = Callable[[Context], None]
"""A command's body: reads ``ctx.args``, prints its result, raises on failure."""


def emit(ctx: Context, payload: dict[str, Any], text: str) -> None:
    """Print a command's result: ``payload`` as one JSON object with ``--json``, else ``text``."""
    if ctx.args.json:
        print(json.dumps(payload, sort_keys=False))
    else:
        print(text)

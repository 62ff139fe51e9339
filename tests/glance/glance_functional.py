"""Glance's own multi-store functional tests, run with imagestore backends instead of glance_store's.

Glance's ``TestImagesMultipleBackend`` (glance/tests/functional/v2/
test_multi_store_images.py, shipped in the glance wheel) configures three
glance_store ``file`` backends in ``setup_stores``; the subclass here configures
the same three ids as ``imagestore`` backends (file stores in the test's
directory) and changes nothing else. Run by the Glance virtualenv's python
(``python glance_functional.py RESULT.json ROUNDS [--file] TEST...``) from a
directory where ``glance/tests/etc`` resolves (Glance's tests copy data files
by that relative path); each round runs every named test once and the outcome of
each (test, round) goes to RESULT.json. ``--file`` runs Glance's class as it is
(glance_store's file driver), for comparison.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import traceback
import unittest
from pathlib import Path
from typing import Any

import glance.db.migration  # noqa: F401  # registers [database] as stestr's discovery would
import glance_store
from glance.common import wsgi_app
from glance.tests.functional.v2 import test_multi_store_images
from oslo_config import cfg

CONF = cfg.CONF
STORES = ("store1", "store2", "store3")

_getaddrinfo = socket.getaddrinfo


def _getaddrinfo_fqdn_localhost(host: Any, *args: Any, **kwargs: Any) -> Any:
    """``localhost.`` (Glance's URI filter resolves the FQDN) as ``localhost``: some resolvers lack it."""
    if host == "localhost.":
        host = "localhost"
    return _getaddrinfo(host, *args, **kwargs)


socket.getaddrinfo = _getaddrinfo_fqdn_localhost


class ImagestoreMultipleBackend(test_multi_store_images.TestImagesMultipleBackend):
    """Glance's multi-store tests with store1..store3 as imagestore backends (imagestore file stores)."""

    def setup_stores(self) -> None:
        config = Path(self.test_dir) / "imagestore.toml"
        config.write_text('default = "store1"\n' + "".join(
            f'[stores.{name}]\ndriver = "file"\nroot = "{self._store_dir(name)}"\n' for name in STORES))
        self.config(enabled_backends={name: "imagestore" for name in STORES})
        glance_store.register_store_opts(CONF, reserved_stores=wsgi_app.RESERVED_STORES)
        self.config(default_backend="store1", group="glance_store")
        for name in STORES:
            self.config(imagestore_config=str(config), imagestore_store=name, group=name)
        self.config(filesystem_store_datadir=self._store_dir("staging"), group="os_glance_staging_store")
        self.config(filesystem_store_datadir=self._store_dir("tasks"), group="os_glance_tasks_store")
        glance_store.create_multi_stores(CONF, reserved_stores=wsgi_app.RESERVED_STORES)
        glance_store.verify_store()


def main(argv: list[str]) -> int:
    """Run the named tests ``rounds`` times; write ``{"test#round": {"outcome", "detail"}}``."""
    out, rounds, names = argv[0], int(argv[1]), argv[2:]
    cls: type[unittest.TestCase] = ImagestoreMultipleBackend
    if names and names[0] == "--file":
        cls, names = test_multi_store_images.TestImagesMultipleBackend, names[1:]
    results: dict[str, dict[str, str]] = {}

    class Recorder(unittest.TestResult):
        """Files each outcome under ``test#round``."""

        def __init__(self, round_: int) -> None:
            super().__init__()
            self.round = round_

        def _set(self, test: unittest.TestCase, outcome: str, detail: str = "") -> None:
            results[f"{test.id().rsplit('.', 1)[1]}#{self.round}"] = {"outcome": outcome, "detail": detail}

        def addSuccess(self, test: unittest.TestCase) -> None:
            self._set(test, "passed")

        def addFailure(self, test: unittest.TestCase, err: Any) -> None:
            self._set(test, "failed", "".join(traceback.format_exception(*err)))

        def addError(self, test: unittest.TestCase, err: Any) -> None:
            self._set(test, "error", "".join(traceback.format_exception(*err)))

        def addSkip(self, test: unittest.TestCase, reason: str) -> None:
            self._set(test, "skipped", reason)

    for round_ in range(1, rounds + 1):
        unittest.TestSuite(cls(name) for name in names).run(Recorder(round_))
    Path(out).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OS_STDOUT_CAPTURE", "1")
    sys.exit(main(sys.argv[1:]))

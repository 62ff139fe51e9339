"""The fixtures every conformance test uses: ``backend`` (declared by the driver's test class),
``store``, ``image_id``, qemu-img images, and the helpers of more than one module."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import textwrap
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

import imagestore
from imagestore import Store

from ..backends.base import Backend
from ..processes import kill_when_started

__all__ = ["MiB", "SuiteBase", "assert_expires", "qemu_img"]

MiB = 1 << 20


def assert_expires(access: imagestore.DirectAccess, before: datetime, after: datetime, ttl: float,
                   slack: float = 2.0) -> None:
    """``access`` expires ``ttl`` seconds after some moment between ``before`` and ``after`` (taken
    around the locate call), give or take ``slack`` (whole-second rounding, the server's Date):
    bracketed, so however long the call took on a loaded machine it cannot fail by itself."""
    assert access.expires_at is not None
    assert (access.expires_at - before).total_seconds() >= ttl - slack, (access.expires_at, before, ttl)
    assert (access.expires_at - after).total_seconds() <= ttl + slack, (access.expires_at, after, ttl)


def qemu_img(tmp: Path, name: str, *args: str) -> bytes:
    """The bytes of a 64 MiB image made by ``qemu-img create ARGS`` (the test fails without qemu-img)."""
    if shutil.which("qemu-img") is None:
        pytest.fail("qemu-img is missing: apt install qemu-utils (.ci/run installs it)", pytrace=False)
    path = tmp / name
    subprocess.run(["qemu-img", "create", "-q", *args, str(path), "64M"], check=True)
    return path.read_bytes()


class SuiteBase:
    """Fixtures of the suite; a driver's test class overrides ``backend``."""

    @pytest.fixture
    def backend(self) -> Backend:  # pragma: no cover - overridden
        raise NotImplementedError("declare a `backend` fixture returning an imagestore.testing.backends.Backend")

    @pytest.fixture(autouse=True)
    def _close_stores(self, backend: Backend) -> Iterator[None]:
        yield
        backend.close()

    @pytest.fixture
    def store(self, backend: Backend) -> Store:
        return backend.make()

    @pytest.fixture
    def image_id(self, request: pytest.FixtureRequest) -> str:
        digest = hashlib.sha1(f"{request.node.nodeid}{time.time_ns()}".encode()).hexdigest()[:12]
        return f"img-{digest}"

    @pytest.fixture(scope="class")
    @classmethod
    def qcow2_plain(cls, tmp_path_factory: pytest.TempPathFactory) -> bytes:
        """A benign, empty 64 MiB qcow2 image."""
        return qemu_img(tmp_path_factory.mktemp("qcow2"), "plain.qcow2", "-f", "qcow2")

    @pytest.fixture(scope="class")
    @classmethod
    def qcow2_with_backing(cls, tmp_path_factory: pytest.TempPathFactory) -> bytes:
        """A qcow2 whose backing file is a host file: the classic OSSA-2015-014 attack."""
        return qemu_img(tmp_path_factory.mktemp("qcow2b"), "evil.qcow2", "-f", "qcow2", "-u",
                        "-b", "/etc/passwd", "-F", "raw")

    def _kill_writer_mid_upload(self, backend: Backend, image_id: str, tmp_path: Any) -> None:
        """Run an add in another process and SIGKILL it once it has written 1 MiB."""
        marker = tmp_path / f"started-{image_id}"
        code = backend.source("main") + textwrap.dedent(f"""
            import pathlib, time
            def slow():
                yield b"x" * (1 << 20)
                pathlib.Path({str(marker)!r}).write_text("1")
                while True:
                    time.sleep(0.05)
                    yield b"y" * 65536
            store.add({image_id!r}, slow())
        """)
        kill_when_started(code, marker)

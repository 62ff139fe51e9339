"""Images built with qemu-img for the format-policy tests outside the conformance classes
(which carry their own: imagestore.testing.conformance)."""

from __future__ import annotations

import pytest

from imagestore.testing.conformance import qemu_img


@pytest.fixture(scope="session")
def qcow2_plain(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A benign, empty 64 MiB qcow2 image."""
    return qemu_img(tmp_path_factory.mktemp("qcow2"), "plain.qcow2", "-f", "qcow2")


@pytest.fixture(scope="session")
def qcow2_with_backing(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A qcow2 whose backing file is a host file: the classic OSSA-2015-014 attack."""
    return qemu_img(tmp_path_factory.mktemp("qcow2b"), "evil.qcow2", "-f", "qcow2", "-u",
                    "-b", "/etc/passwd", "-F", "raw")

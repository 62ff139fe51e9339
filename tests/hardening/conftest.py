"""Backends for the hardening tests, one fixture per kind: file stores in a temporary
directory, rbd stores on the session's Ceph clusters (clone v1 and v2), s3 stores on moto
and radosgw, swift stores on the session's SAIO. Each hands out fresh buckets or
containers and removes them afterwards."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from imagestore.testing.backends import FileBackend, RbdBackend, S3Backend, SwiftBackend
from tests.services.ceph import CephCluster
from tests.services.s3 import S3Server
from tests.services.swift import SwiftSAIO


def rbd_backend(cluster: CephCluster) -> RbdBackend:
    """The least-privilege user's stores on pools images and vms of ``cluster``."""
    return RbdBackend(cluster.conf, keyring=cluster.keyring, clone_v2=cluster.clone_v2, fsid=cluster.fsid,
                      label=cluster.kind)


@pytest.fixture
def prefix() -> str:
    """A run prefix: ids of one test never meet those of another on a shared cluster."""
    return f"h{uuid.uuid4().hex[:8]}"


@pytest.fixture
def file_backend(tmp_path: Path) -> FileBackend:
    return FileBackend(tmp_path / "file")


def _s3(server: S3Server) -> Iterator[S3Backend]:
    backend = S3Backend(server.endpoint, server.access_key, server.secret_key, region=server.region,
                        base=f"hard-{uuid.uuid4().hex[:10]}", label=server.name)
    try:
        yield backend
    finally:
        backend.close()


@pytest.fixture
def moto_backend(moto_server: S3Server) -> Iterator[S3Backend]:
    yield from _s3(moto_server)


@pytest.fixture
def radosgw_backend(radosgw: S3Server) -> Iterator[S3Backend]:
    yield from _s3(radosgw)


@pytest.fixture
def swift_backend(swift_saio: SwiftSAIO) -> Iterator[SwiftBackend]:
    backend = SwiftBackend(swift_saio.auth_url, swift_saio.user2, swift_saio.key2,
                           base=f"hard-{uuid.uuid4().hex[:10]}")
    try:
        yield backend
    finally:
        backend.close()


KINDS = ("file", "rbd-v1", "rbd-v2", "s3-moto", "s3-radosgw", "swift")
_FIXTURES = {"file": "file_backend", "s3-moto": "moto_backend", "s3-radosgw": "radosgw_backend",
             "swift": "swift_backend"}


@pytest.fixture(params=KINDS)
def backend(request: pytest.FixtureRequest) -> object:
    """Each backend kind in turn (rbd on both clusters, s3 on both servers)."""
    kind: str = request.param
    if kind.startswith("rbd-"):
        return rbd_backend(request.getfixturevalue(f"ceph_{kind[4:]}"))
    return request.getfixturevalue(_FIXTURES[kind])

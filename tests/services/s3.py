"""Real S3 servers for the session: moto's standalone server and radosgw.

``moto_server`` starts ``python -m moto.server`` (from the interpreter that runs the
tests, so moto[server] must be installed there) on 127.0.0.1 and a free port.
``radosgw`` (tests/services/ceph.py) is Ceph's S3 gateway on the clone-v2 test
cluster. ``s3_server`` is parametrized over both, with one shape (``S3Server``), so an
S3 test runs on each; ``s3_bucket`` is a fresh bucket on it, emptied and deleted after
the test. Set ``IMAGESTORE_MOTO_ENDPOINT=http://127.0.0.1:PORT`` to use a moto server
that is already running (it is then not stopped).

The two differ; ``EXPECTED`` in tests/services/test_s3_services.py asserts each
difference per server. In short: moto checks no signature, no permission, no
Content-MD5 and no presigned-URL expiry, radosgw checks all of them; ``If-None-Match: *``
is honoured by both on PutObject, by moto only on CompleteMultipartUpload (radosgw
silently overwrites) and by neither on CopyObject; radosgw 16.2 answers
CompleteMultipartUpload with an empty ETag and copy results with unquoted ETags; moto
closes the connection after every response. Neither enforces S3's 2 KiB metadata limit.
A driver test that depends on one of these must say which server it expects it from.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest

from imagestore.testing.backends.s3 import empty_bucket
from imagestore.testing.moto import MotoProcess, http_answers

from .require import unavailable

if TYPE_CHECKING:
    from .ceph import CephCluster

__all__ = ["Radosgw", "S3Server", "empty_bucket", "http_answers", "moto_server", "s3_bucket", "s3_server"]

SERVERS = {"moto": "moto_server", "radosgw": "radosgw"}  # s3_server parameter -> fixture


@dataclass(frozen=True)
class S3Server:
    """An S3 endpoint for tests: where it is, who may use it, and a ready boto3 client."""

    name: str  #: "moto" or "radosgw"
    endpoint: str  #: ``http://127.0.0.1:PORT``
    region: str  #: the region to sign with (both servers: us-east-1, i.e. no LocationConstraint)
    access_key: str
    secret_key: str
    alt_access_key: str  #: a second user (radosgw: its own account; moto: accepted, not enforced)
    alt_secret_key: str

    @property
    def host(self) -> str:
        return urlsplit(self.endpoint).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        port = urlsplit(self.endpoint).port
        assert port is not None, self.endpoint
        return port

    def client(self, *, endpoint: str | None = None, alt: bool = False, access_key: str | None = None,
               secret_key: str | None = None, **config: Any) -> Any:
        """A boto3 S3 client: path-style, SigV4, checksums only when an operation requires them.

        ``endpoint`` overrides the server's (e.g. a FaultProxy's ``endpoint``); ``alt`` signs
        as the second user; other keywords go to ``botocore.config.Config`` and override the
        defaults (``read_timeout=2``, ``retries={"mode": "standard", "total_max_attempts": 3}``;
        no retry at all is ``total_max_attempts: 1``: botocore's ``max_attempts`` counts retries).
        """
        import boto3
        from botocore.config import Config

        options: dict[str, Any] = {
            "signature_version": "s3v4",
            "s3": {"addressing_style": "path"},
            "request_checksum_calculation": "when_required",
            "response_checksum_validation": "when_required",
        }
        options.update(config)
        return boto3.client(
            "s3",
            endpoint_url=endpoint or self.endpoint,
            region_name=self.region,
            aws_access_key_id=access_key or (self.alt_access_key if alt else self.access_key),
            aws_secret_access_key=secret_key or (self.alt_secret_key if alt else self.secret_key),
            config=Config(**options),
        )


@dataclass(frozen=True)
class Radosgw(S3Server):
    """radosgw on a test cluster (the ``radosgw`` fixture of tests/services/ceph.py)."""

    cluster: CephCluster
    user: str  #: radosgw uid of the main user ("imagestore")
    alt_user: str  #: uid of the second user ("imagestore-alt"), a separate account
    swift_auth_url: str  #: Swift v1 auth (``.../auth/1.0``) of the subuser below
    swift_user: str  #: "imagestore:swift"
    swift_key: str

    @property
    def log(self) -> Path:
        """radosgw's own log (debug level 1: one line per request)."""
        return self.cluster.dir / "log" / "client.rgw.a.log"

    def admin(self, *args: str) -> str:
        """Run ``radosgw-admin ARGS`` against the cluster as client.admin; its stdout."""
        return self.cluster.admin("radosgw-admin", *args)


# ---------------------------------------------------------------------- moto
@pytest.fixture(scope="session")
def moto_server() -> Iterator[S3Server]:
    """moto's standalone S3 server (any keys work: moto checks no signature)."""
    reuse = os.environ.get("IMAGESTORE_MOTO_ENDPOINT")
    server = None
    if reuse:
        endpoint = reuse.rstrip("/")
        if not http_answers(endpoint):
            unavailable("the moto S3 server", f"IMAGESTORE_MOTO_ENDPOINT={reuse} does not answer")
    else:
        server = MotoProcess()
        try:
            server.start()
        except BaseException as exc:
            server.cleanup()
            if not isinstance(exc, (OSError, RuntimeError)):
                raise
            unavailable("the moto S3 server", f"{sys.executable} -m moto.server did not start "
                        f"(pip install 'moto[server]'): {exc}")
        endpoint = server.endpoint
    try:
        yield S3Server("moto", endpoint, "us-east-1", "imagestore-access", "imagestore-secret",
                       "imagestore-alt-access", "imagestore-alt-secret")
    finally:
        if server is not None:
            server.cleanup()


@pytest.fixture(scope="session", params=sorted(SERVERS))
def s3_server(request: pytest.FixtureRequest) -> S3Server:
    """Each S3 server in turn: moto, then radosgw."""
    server: S3Server = request.getfixturevalue(SERVERS[request.param])
    return server


@contextmanager
def temporary_bucket(server: S3Server, prefix: str) -> Iterator[str]:
    """A new, empty bucket named ``prefix-RANDOM`` on ``server``; its uploads, objects and
    itself are removed when the block ends."""
    client = server.client()
    bucket = f"{prefix}-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    try:
        yield bucket
    finally:
        empty_bucket(client, bucket)
        client.delete_bucket(Bucket=bucket)


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> Iterator[str]:
    """A new, empty bucket on ``s3_server``, removed with all it holds after the test."""
    with temporary_bucket(s3_server, "imagestore-test") as bucket:
        yield bucket

"""The conformance suite on S3: moto's standalone server and Ceph radosgw 16.2."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from imagestore.testing.backends import Backend, S3Backend
from imagestore.testing.conformance import ConformanceSuite
from tests.services.s3 import S3Server


class TestS3(ConformanceSuite):
    """Both servers: moto (no signature checks, 412 on conditional completes) and radosgw
    (signatures checked, conditional completes ignored): the driver's commit is a
    conditional PutObject, which both honour."""

    @pytest.fixture
    def backend(self, s3_server: S3Server) -> Iterator[Backend]:
        backend = S3Backend(s3_server.endpoint, s3_server.access_key, s3_server.secret_key,
                            base=f"conf-{uuid.uuid4().hex[:10]}", region=s3_server.region, label=s3_server.name)
        try:
            yield backend
        finally:
            backend.close()

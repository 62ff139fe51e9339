"""The conformance suite on Ceph RBD: a clone-v1 cluster and a clone-v2 cluster."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from imagestore.testing.backends import Backend, RbdBackend
from imagestore.testing.conformance import ConformanceSuite
from tests.services.ceph import CephCluster


def rbd_backend(cluster: CephCluster) -> RbdBackend:
    """Stores on pool ``images`` (sibling: ``vms``) as the least-privilege client.imagestore."""
    return RbdBackend(cluster.conf, keyring=cluster.keyring, order=None, connect_timeout=10,
                      clone_v2=cluster.clone_v2, fsid=cluster.fsid, label=cluster.kind)


@pytest.mark.ceph
class TestRbdCloneV1(ConformanceSuite):
    """Pacific's default (luminous compat): clone v1, protected parents."""

    @pytest.fixture
    def backend(self, ceph_v1: CephCluster) -> Iterator[Backend]:
        assert not ceph_v1.clone_v2
        yield rbd_backend(ceph_v1)


@pytest.mark.ceph
class TestRbdCloneV2(ConformanceSuite):
    """require_min_compat_client mimic: clone v2, deferred (trash) deletes."""

    @pytest.fixture
    def backend(self, ceph_v2: CephCluster) -> Iterator[Backend]:
        assert ceph_v2.clone_v2
        yield rbd_backend(ceph_v2)

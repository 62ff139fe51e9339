"""The conformance suite on Ceph RBD: a clone-v1 cluster and a clone-v2 cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.services.ceph import CephCluster

from .suite import Backend, ConformanceSuite

TMP_PREFIX = ".tmp."  # the driver's temporary upload names


class RbdBackend(Backend):
    """Stores on pool ``images`` (sibling: ``vms``) as the least-privilege client.imagestore."""

    native_clone_mode = "cow"
    clones_depend_on_source = True

    def __init__(self, cluster: CephCluster) -> None:
        self.cluster = cluster
        self._before = set(self._temps())  # a killed writer's temporaries belong to its own test

    def _temps(self) -> list[str]:
        found = []
        for pool in ("images", "vms"):
            names = self.cluster.admin("rbd", "ls", pool).split()
            found += [f"{pool}/{n}" for n in names if n.startswith(TMP_PREFIX)]
        return found

    def spec(self) -> dict[str, Any]:
        return self.cluster.spec("images")

    def sibling_spec(self) -> dict[str, Any]:
        return self.cluster.spec("vms")

    def leftovers(self) -> list[str]:
        return [t for t in self._temps() if t not in self._before]

    def secrets(self) -> list[str]:
        """The cephx key of client.imagestore: it must never show up in any output."""
        text = Path(self.cluster.keyring).read_text()
        keys = [line.split("=", 1)[1].strip() for line in text.splitlines() if line.strip().startswith("key")]
        assert keys, "the keyring holds no key"
        return keys


@pytest.mark.ceph
class TestRbdCloneV1(ConformanceSuite):
    """Pacific's default (luminous compat): clone v1, protected parents."""

    @pytest.fixture
    def backend(self, ceph_v1: CephCluster) -> Backend:
        return RbdBackend(ceph_v1)


@pytest.mark.ceph
class TestRbdCloneV2(ConformanceSuite):
    """require_min_compat_client mimic: clone v2, deferred (trash) deletes."""

    @pytest.fixture
    def backend(self, ceph_v2: CephCluster) -> Backend:
        return RbdBackend(ceph_v2)

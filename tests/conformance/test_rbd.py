"""The conformance suite on Ceph RBD: a clone-v1 cluster and a clone-v2 cluster."""

from __future__ import annotations

import hashlib
import json
import tempfile
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

    def __init__(self, cluster: CephCluster, clone_v2: bool) -> None:
        self.cluster = cluster
        # clone v2 (require-min-compat-client mimic) moves a parent with clones to the trash
        self.capabilities = {"write": True, "range_read": True, "cow_clone": True, "server_copy": False,
                             "direct_access": True, "presign": False, "atomic_create": True, "unknown_size": True,
                             "deferred_delete": clone_v2, "persistent": True, "adopt": True,
                             "max_object_size": None}
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

    def place_native(self, name: str, data: bytes) -> str:
        """Nova's direct snapshot: an image written into the images pool with its own
        protected snapshot ``snap``, referenced as ``rbd://fsid/pool/image/snap``."""
        with tempfile.NamedTemporaryFile() as fh:
            fh.write(data)
            fh.flush()
            self.cluster.admin("rbd", "import", "--image-format", "2", fh.name, f"images/{name}")
        self.cluster.admin("rbd", "snap", "create", f"images/{name}@snap")
        self.cluster.admin("rbd", "snap", "protect", f"images/{name}@snap")
        return f"rbd://{self.cluster.fsid}/images/{name}/snap"

    def native_state(self, name: str) -> object:
        with tempfile.TemporaryDirectory() as d:
            out = Path(d) / "export"
            self.cluster.admin("rbd", "export", f"images/{name}", str(out))
            digest = hashlib.sha256(out.read_bytes()).hexdigest()
        snaps = json.loads(self.cluster.admin("rbd", "snap", "ls", "--format", "json", f"images/{name}"))
        protected = [(s["name"], self.cluster.admin("rbd", "info", f"images/{name}@{s['name']}").count(
            "protected: True")) for s in snaps]
        meta = self.cluster.admin("rbd", "image-meta", "list", f"images/{name}")
        return digest, [(s["id"], s["name"]) for s in snaps], protected, meta

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
        return RbdBackend(ceph_v1, clone_v2=False)


@pytest.mark.ceph
class TestRbdCloneV2(ConformanceSuite):
    """require_min_compat_client mimic: clone v2, deferred (trash) deletes."""

    @pytest.fixture
    def backend(self, ceph_v2: CephCluster) -> Backend:
        return RbdBackend(ceph_v2, clone_v2=True)

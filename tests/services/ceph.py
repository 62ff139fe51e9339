"""Two real single-node Ceph clusters for the session, made by scripts/ceph-start.sh.

``ceph_v1`` runs with the default ``require_min_compat_client`` (librbd makes
clone v1: protected parents, deletes refused while clones exist); ``ceph_v2``
with ``mimic`` (clone v2: deletes deferred to the trash). ``ceph_cluster`` is
parametrized over both. Set ``IMAGESTORE_CEPH_V1_DIR``/``IMAGESTORE_CEPH_V2_DIR``
to reuse clusters already started by ceph-start.sh (they are then not stopped).

``radosgw`` is Ceph's S3 gateway on the v2 cluster, started by
scripts/ceph-rgw-start.sh on the running cluster the first time a test asks for it
(under 1 s once the radosgw package is installed; the cluster is not restarted), and
stopped with it. A reused v2 cluster that already runs one (``CEPH_RGW_*`` in its
``env``) is used as it is; on one without, the session starts a radosgw and stops it
at the end (scripts/ceph-rgw-stop.sh), leaving the cluster running.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from imagestore.testing.backends.rbd import admin_tool

from .ports import free_port
from .require import unavailable

if TYPE_CHECKING:  # s3.py imports this module; it is imported here only when radosgw is asked for
    from .s3 import Radosgw

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
KINDS = {"v1": "", "v2": "mimic"}
RGW_KIND = "v2"  # the cluster that gets the radosgw


@dataclass(frozen=True)
class CephCluster:
    """A running test cluster: its directory, config, fsid and the least-privilege user's keyring."""

    kind: str
    dir: Path
    fsid: str

    @property
    def conf(self) -> str:
        return str(self.dir / "ceph.conf")

    @property
    def keyring(self) -> str:
        """Keyring of ``client.imagestore`` only (profile rbd on pools images and vms)."""
        return str(self.dir / "client.imagestore.keyring")

    @property
    def clone_v2(self) -> bool:
        return self.kind == "v2"

    def spec(self, pool: str = "images", **options: Any) -> dict[str, Any]:
        """A store table for ``imagestore.open_store`` on this cluster."""
        return {"driver": "rbd", "conf": self.conf, "pool": pool, "user": "imagestore",
                "keyring": self.keyring, "connect_timeout": 10, **options}

    def driver(self, pool: str = "images", name: str | None = None, **options: Any) -> Any:
        """An RbdDriver on ``pool`` as client.imagestore (closed by the caller)."""
        from imagestore.drivers.rbd import RbdDriver

        opts = {k: v for k, v in self.spec(pool, **options).items() if k != "driver"}
        return RbdDriver(name or pool, **opts)

    def admin(self, *args: str) -> str:
        """Run an admin CLI command (``rbd``/``ceph``/``rados``) against this cluster; its stdout."""
        return admin_tool(self.conf, *args, timeout=60)


def _read_env(directory: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    for line in (directory / "env").read_text().splitlines():
        if line.startswith("export ") and "=" in line:
            key, _, value = line[len("export "):].partition("=")
            env[key] = value
    return env


class _Clusters:
    """Starts both clusters at once (on first use) and stops the ones it started."""

    def __init__(self) -> None:
        self.started: dict[str, CephCluster] = {}
        self.failures: dict[str, str] = {}
        self.owned: list[Path] = []
        self._done = False
        self.gateways: dict[str, Radosgw] = {}
        self.rgw_failures: dict[str, str] = {}
        self.rgw_owned: list[Path] = []  # radosgw started by us on a reused cluster

    def ensure(self) -> None:
        if self._done:
            return
        self._done = True
        procs: dict[str, tuple[subprocess.Popen[str], Path]] = {}
        for kind, compat in KINDS.items():
            reuse = os.environ.get(f"IMAGESTORE_CEPH_{kind.upper()}_DIR")
            if reuse:
                d = Path(reuse)
                try:
                    self.started[kind] = CephCluster(kind, d, _read_env(d)["CEPH_FSID"])
                except (OSError, KeyError) as exc:
                    self.failures[kind] = f"{reuse} is not a running ceph-start.sh cluster: {exc}"
                continue
            d = Path(tempfile.mkdtemp(prefix=f"ceph-{kind}-", dir="/tmp"))
            env = {**os.environ, "CEPH_MON_PORT": str(free_port()), "CEPH_MIN_COMPAT_CLIENT": compat}
            procs[kind] = (subprocess.Popen(["bash", str(SCRIPTS / "ceph-start.sh"), str(d)], env=env,
                                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True), d)
            self.owned.append(d)
        for kind, (proc, d) in procs.items():
            try:
                out, _ = proc.communicate(timeout=900)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, _ = proc.communicate()
            if proc.returncode == 0:
                self.started[kind] = CephCluster(kind, d, _read_env(d)["CEPH_FSID"])
            else:
                logs = ""
                for log in sorted((d / "log").glob("*.log")) if (d / "log").is_dir() else []:
                    logs += f"\n--- {log.name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-15:])
                self.failures[kind] = f"ceph-start.sh exited {proc.returncode}:\n{out[-3000:]}{logs[-3000:]}"

    def get(self, kind: str) -> CephCluster:
        self.ensure()
        if kind not in self.started:
            unavailable(f"the Ceph {kind} test cluster", self.failures.get(kind, "not started"))
        return self.started[kind]

    def radosgw(self, kind: str = RGW_KIND) -> Radosgw:
        """The radosgw of cluster ``kind``, started on first use."""
        from .s3 import Radosgw, http_answers

        if kind in self.gateways:
            return self.gateways[kind]
        what = f"radosgw on the Ceph {kind} test cluster"
        if kind in self.rgw_failures:
            unavailable(what, self.rgw_failures[kind])
        cluster = self.get(kind)
        env = _read_env(cluster.dir)
        if "CEPH_RGW_ENDPOINT" not in env:
            failure = self._start_rgw(cluster.dir)
            if failure:
                self.rgw_failures[kind] = failure
                unavailable(what, failure)
            env = _read_env(cluster.dir)
        try:
            gw = Radosgw(
                "radosgw", env["CEPH_RGW_ENDPOINT"], env["CEPH_RGW_REGION"],
                env["CEPH_RGW_ACCESS_KEY"], env["CEPH_RGW_SECRET_KEY"],
                env["CEPH_RGW_ALT_ACCESS_KEY"], env["CEPH_RGW_ALT_SECRET_KEY"],
                cluster=cluster, user=env["CEPH_RGW_USER"], alt_user=env["CEPH_RGW_ALT_USER"],
                swift_auth_url=env["CEPH_RGW_SWIFT_AUTH_URL"], swift_user=env["CEPH_RGW_SWIFT_USER"],
                swift_key=env["CEPH_RGW_SWIFT_KEY"])
        except KeyError as exc:
            self.rgw_failures[kind] = f"{cluster.dir}/env lacks {exc}"
            unavailable(what, self.rgw_failures[kind])
        if not http_answers(gw.endpoint):
            self.rgw_failures[kind] = f"{gw.endpoint} (from {cluster.dir}/env) does not answer"
            unavailable(what, self.rgw_failures[kind])
        self.gateways[kind] = gw
        return gw

    def _start_rgw(self, directory: Path) -> str:
        """Run ceph-rgw-start.sh on a free port; the failure message, or "" once it runs."""
        out = ""
        for _ in range(3):  # another process may take the free port before radosgw binds it
            env = {**os.environ, "CEPH_RGW_PORT": str(free_port())}
            try:
                proc = subprocess.run(["bash", str(SCRIPTS / "ceph-rgw-start.sh"), str(directory)], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=900)
            except subprocess.TimeoutExpired as exc:
                return f"ceph-rgw-start.sh timed out: {exc.output or ''}"[-3000:]
            if proc.returncode == 0:
                if directory not in self.owned:
                    self.rgw_owned.append(directory)
                return ""
            out = proc.stdout
            if "is in use" not in out and "bind" not in out:
                break
        return f"ceph-rgw-start.sh exited {proc.returncode}:\n{out[-3000:]}"

    def stop(self) -> None:
        for d in self.rgw_owned:  # ceph-stop.sh stops the radosgw of the clusters we own
            subprocess.run(["bash", str(SCRIPTS / "ceph-rgw-stop.sh"), str(d)], capture_output=True, timeout=120)
        for d in self.owned:
            subprocess.run(["bash", str(SCRIPTS / "ceph-stop.sh"), str(d)], capture_output=True, timeout=120)


@pytest.fixture(scope="session")
def _ceph_clusters() -> Iterator[_Clusters]:
    clusters = _Clusters()
    try:
        yield clusters
    finally:
        clusters.stop()


@pytest.fixture(scope="session")
def ceph_v1(_ceph_clusters: _Clusters) -> CephCluster:
    """A cluster where librbd makes clone v1 (the Pacific default, luminous compat)."""
    return _ceph_clusters.get("v1")


@pytest.fixture(scope="session")
def ceph_v2(_ceph_clusters: _Clusters) -> CephCluster:
    """A cluster with require_min_compat_client mimic: librbd makes clone v2."""
    return _ceph_clusters.get("v2")


@pytest.fixture(scope="session", params=sorted(KINDS))
def ceph_cluster(request: pytest.FixtureRequest, _ceph_clusters: _Clusters) -> CephCluster:
    """Each of the two clusters in turn."""
    return _ceph_clusters.get(request.param)


@pytest.fixture(scope="session")
def radosgw(_ceph_clusters: _Clusters) -> Radosgw:
    """radosgw (S3 + Swift v1 auth) on the clone-v2 cluster: an ``S3Server`` named "radosgw"
    with the cluster and the Swift credentials (see tests/services/s3.py)."""
    return _ceph_clusters.radosgw(RGW_KIND)

"""A real Keystone (v3, sqlite, fernet tokens) and a second Swift proxy that trusts it, for the
Keystone v3 tests of the Swift driver.

Keystone comes from PyPI (``keystone``) in a virtualenv of its own, cached as
``$IMAGESTORE_CACHE/keystone-venv-VERSION`` (about 25 s to build, 10 s to set up a database
and start); it is served by wsgiref in one process. The second proxy runs from another
cached virtualenv (``swift`` + ``keystonemiddleware``) on the session SAIO's rings and
storage servers, with ``authtoken`` and ``keystoneauth`` instead of tempauth, so its
accounts are ``AUTH_<project id>``. The object-store endpoint is registered in
Keystone's catalog; the test user is a ``member`` of project ``imagestore``.
Validated tokens are not cached by the proxy, so a revoked token is refused at once.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.services.ports import free_port
from tests.services.require import unavailable
from tests.services.swift import SwiftSAIO

KEYSTONE_PIN = "keystone==30.0.0"
SWIFT_PINS = ("swift==2.38.3", "eventlet==0.41.3", "keystonemiddleware==13.0.1")
CACHE = Path(os.environ.get("IMAGESTORE_CACHE", Path.home() / ".cache" / "imagestore"))
ADMIN_PASSWORD = "keystone-admin-" + uuid.uuid4().hex[:12]
USER_PASSWORD = "keystone-user-" + uuid.uuid4().hex[:12]
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))
PIPELINE = ("catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk tempurl authtoken "
            "keystoneauth copy slo dlo proxy-logging proxy-server")


def _venv(name: str, pins: tuple[str, ...]) -> Path:
    """A cached virtualenv with ``pins``, built beside its final path and renamed into place."""
    final = CACHE / name
    if (final / ".complete").exists():
        return final
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.tmp.", dir=CACHE))
    try:
        subprocess.run([sys.executable, "-m", "venv", str(tmp)], check=True, capture_output=True, timeout=300)
        proc = subprocess.run([str(tmp / "bin" / "python"), "-m", "pip", "install", "-q",
                               "--disable-pip-version-check", *pins], capture_output=True, text=True, timeout=900)
        if proc.returncode != 0:
            unavailable("Keystone", f"pip install {' '.join(pins)} failed: {proc.stderr[-2000:]}")
        (tmp / ".complete").write_text(" ".join(pins))
        try:
            tmp.rename(final)
        except OSError:  # another run got there first: use its venv
            pass
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def _wait_http(url: str, proc: subprocess.Popen[bytes], what: str, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with _NO_PROXY.open(url, timeout=5):
                return
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            tail = log.read_text()[-3000:] if log.exists() else ""
            unavailable(what, f"it did not answer at {url}:\n{tail}")
        time.sleep(0.2)


_SERVE_KEYSTONE = textwrap.dedent("""
    import os, sys
    port, conf = int(sys.argv[1]), sys.argv[2]
    os.environ["OS_KEYSTONE_CONFIG_FILES"] = conf
    sys.argv = sys.argv[:1]  # oslo.config reads the command line
    from socketserver import ThreadingMixIn
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
    class Quiet(WSGIRequestHandler):
        def log_message(self, *args):
            pass
    class Threaded(ThreadingMixIn, WSGIServer):
        daemon_threads = True
    from keystone.server.wsgi import initialize_public_application
    make_server("127.0.0.1", port, initialize_public_application(), server_class=Threaded,
                handler_class=Quiet).serve_forever()
""")

_SERVE_PROXY = textwrap.dedent("""
    import os, sys
    import swift.common.utils as utils
    conf = os.path.abspath(sys.argv[1])
    utils.SWIFT_CONF_FILE = sys.argv[2]  # the SAIO's swift.conf: same hash prefix, same constraints
    import swift.proxy.server
    sys.argv = ["swift-proxy-server", conf, "-v"]
    sys.exit(swift.proxy.server.main())
""")


@dataclass
class KeystoneSwift:
    """A Keystone with a project ``imagestore`` and its user, and a proxy that trusts its tokens."""

    auth_url: str
    proxy_url: str
    user: str
    password: str
    project: str
    project_id: str
    admin_token: str
    procs: list[subprocess.Popen[bytes]]
    workdir: Path

    def revoke(self, token: str) -> None:
        """Revoke a token (DELETE /v3/auth/tokens): the proxy refuses it from then on."""
        req = urllib.request.Request(f"{self.auth_url}/auth/tokens", method="DELETE",
                                     headers={"X-Auth-Token": self.admin_token, "X-Subject-Token": token})
        with _NO_PROXY.open(req, timeout=30) as resp:
            assert resp.status == 204

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(15)
        shutil.rmtree(self.workdir, ignore_errors=True)


def _api(url: str, token: str | None, body: dict[str, object] | None = None, method: str = "POST",
         ) -> tuple[dict[str, object], dict[str, str]]:
    import json

    headers = {"Content-Type": "application/json"}
    if token:
        headers["X-Auth-Token"] = token
    req = urllib.request.Request(url, data=json.dumps(body).encode() if body is not None else None,
                                 method=method, headers=headers)
    with _NO_PROXY.open(req, timeout=60) as resp:
        text = resp.read()
        return (json.loads(text) if text else {}), dict(resp.headers)


def start(saio: SwiftSAIO) -> KeystoneSwift:
    """Build (once) the venvs, bootstrap Keystone, register Swift, start both servers."""
    ks_venv = _venv("keystone-venv-30.0.0", (KEYSTONE_PIN,))
    px_venv = _venv("swift-keystone-venv-2.38.3", SWIFT_PINS)
    work = Path(tempfile.mkdtemp(prefix="keystone-", dir="/tmp"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        ks_port, px_port = free_port(), free_port()
        auth_url, proxy_url = f"http://127.0.0.1:{ks_port}/v3", f"http://127.0.0.1:{px_port}"
        conf = work / "keystone.conf"
        conf.write_text(textwrap.dedent(f"""
            [DEFAULT]
            log_dir = {work}
            [database]
            connection = sqlite:///{work}/keystone.db
            [token]
            provider = fernet
            [fernet_tokens]
            key_repository = {work}/fernet-keys
            [fernet_receipts]
            key_repository = {work}/fernet-keys
            [credential]
            key_repository = {work}/credential-keys
        """))
        # console scripts name the temporary path the venv was built in: run modules instead
        manage = [str(ks_venv / "bin" / "python"), "-c", "import sys; from keystone.cmd.manage import main; "
                  "sys.argv[0] = 'keystone-manage'; sys.exit(main())", "--config-file", str(conf)]
        user = os.environ.get("USER") or "root"
        for args in (["db_sync"], ["fernet_setup", "--keystone-user", user, "--keystone-group", user],
                     ["credential_setup", "--keystone-user", user, "--keystone-group", user],
                     ["bootstrap", "--bootstrap-password", ADMIN_PASSWORD, "--bootstrap-public-url", auth_url,
                      "--bootstrap-region-id", "RegionOne"]):
            proc = subprocess.run([*manage, *args], capture_output=True, text=True, timeout=300)
            if proc.returncode != 0:
                unavailable("Keystone", f"keystone-manage {args[0]} failed: {proc.stderr[-2000:]}")
        ks_log = work / "keystone-serve.log"
        with open(ks_log, "wb") as out:
            procs.append(subprocess.Popen([str(ks_venv / "bin" / "python"), "-c", _SERVE_KEYSTONE, str(ks_port),
                                           str(conf)], stdout=out, stderr=subprocess.STDOUT))
        _wait_http(auth_url, procs[-1], "Keystone", ks_log)

        scope = {"project": {"name": "admin", "domain": {"id": "default"}}}
        ident = {"methods": ["password"], "password": {"user": {"name": "admin", "domain": {"id": "default"},
                                                                "password": ADMIN_PASSWORD}}}
        _, headers = _api(f"{auth_url}/auth/tokens", None, {"auth": {"identity": ident, "scope": scope}})
        admin = headers["X-Subject-Token"]
        project, _ = _api(f"{auth_url}/projects", admin, {"project": {"name": "imagestore", "domain_id": "default"}})
        project_id = str(project["project"]["id"])  # type: ignore[index]
        made, _ = _api(f"{auth_url}/users", admin, {"user": {"name": "imagestore", "domain_id": "default",
                                                             "password": USER_PASSWORD,
                                                             "default_project_id": project_id}})
        user_id = made["user"]["id"]  # type: ignore[index]
        roles, _ = _api(f"{auth_url}/roles?name=member", admin, None, method="GET")
        member = roles["roles"][0]["id"]  # type: ignore[index]
        _api(f"{auth_url}/projects/{project_id}/users/{user_id}/roles/{member}", admin, None, method="PUT")
        service, _ = _api(f"{auth_url}/services", admin, {"service": {"type": "object-store", "name": "swift"}})
        _api(f"{auth_url}/endpoints", admin, {"endpoint": {
            "service_id": service["service"]["id"], "interface": "public", "region_id": "RegionOne",  # type: ignore
            "url": f"{proxy_url}/v1/AUTH_$(project_id)s"}})

        etc = saio.workdir / "etc"
        px_conf = work / "proxy-server.conf"
        px_conf.write_text(textwrap.dedent(f"""
            [DEFAULT]
            bind_ip = 127.0.0.1
            bind_port = {px_port}
            workers = 0
            user = {user}
            swift_dir = {etc}
            log_name = keystone-proxy

            [pipeline:main]
            pipeline = {PIPELINE}

            [app:proxy-server]
            use = egg:swift#proxy
            account_autocreate = true
            node_timeout = 10

            [filter:catch_errors]
            use = egg:swift#catch_errors
            [filter:gatekeeper]
            use = egg:swift#gatekeeper
            [filter:healthcheck]
            use = egg:swift#healthcheck
            [filter:proxy-logging]
            use = egg:swift#proxy_logging
            [filter:cache]
            use = egg:swift#memcache
            memcache_servers = 127.0.0.1:{saio.memcached_port}
            [filter:listing_formats]
            use = egg:swift#listing_formats
            [filter:bulk]
            use = egg:swift#bulk
            [filter:tempurl]
            use = egg:swift#tempurl
            allowed_digests = sha256 sha512
            [filter:authtoken]
            paste.filter_factory = keystonemiddleware.auth_token:filter_factory
            www_authenticate_uri = {auth_url}
            auth_url = {auth_url}
            auth_type = password
            username = admin
            password = {ADMIN_PASSWORD}
            project_name = admin
            user_domain_id = default
            project_domain_id = default
            delay_auth_decision = True
            interface = public
            token_cache_time = -1
            [filter:keystoneauth]
            use = egg:swift#keystoneauth
            operator_roles = admin, member
            [filter:copy]
            use = egg:swift#copy
            [filter:slo]
            use = egg:swift#slo
            [filter:dlo]
            use = egg:swift#dlo
        """))
        px_log = work / "proxy.log"
        with open(px_log, "wb") as out:
            procs.append(subprocess.Popen([str(px_venv / "bin" / "python"), "-c", _SERVE_PROXY, str(px_conf),
                                           str(etc / "swift.conf")], stdout=out, stderr=subprocess.STDOUT))
        _wait_http(f"{proxy_url}/healthcheck", procs[-1], "the Keystone Swift proxy", px_log)
        return KeystoneSwift(auth_url=auth_url, proxy_url=proxy_url, user="imagestore", password=USER_PASSWORD,
                             project="imagestore", project_id=project_id, admin_token=admin, procs=procs,
                             workdir=work)
    except BaseException:
        for proc in procs:
            proc.kill()
            proc.wait(15)
        shutil.rmtree(work, ignore_errors=True)
        raise


@pytest.fixture(scope="session")
def keystone_swift(swift_saio: SwiftSAIO) -> Iterator[KeystoneSwift]:
    """A real Keystone v3 and a Swift proxy on the session SAIO that trusts it."""
    ks = start(swift_saio)
    try:
        yield ks
    finally:
        ks.stop()

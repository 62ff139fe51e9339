"""imagestore.compat.glance: glance_store's multi-store calls without glance_store or a global config."""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
from pathlib import Path

import pytest

from imagestore import ConfigError, InvalidLocation, NotFound, UnsafeImage
from imagestore.compat import glance
from imagestore.compat.glance import Backends

DATA = hashlib.sha512(b"seed").digest() * 40_000  # 2.5 MiB, not all alike
IMAGE = "5a1e7c3d-2b4f-4e6a-8c9d-0e1f2a3b4c5d"


class Verifier:
    def __init__(self) -> None:
        self.seen = bytearray()

    def update(self, data: bytes) -> None:
        self.seen += data


@pytest.fixture
def backends(tmp_path: Path) -> Backends:
    config = tmp_path / "imagestore.toml"
    config.write_text(f'default = "a"\n[stores.a]\ndriver = "file"\nroot = "{tmp_path / "a"}"\n'
                      f'[stores.b]\ndriver = "file"\nroot = "{tmp_path / "b"}"\n')
    return Backends("fast:imagestore, slow:imagestore, legacy:file",
                    {"fast": {"imagestore_config": config, "store_description": "default store of the file"},
                     "slow": {"imagestore_config": config, "imagestore_store": "b", "weight": 5},
                     "legacy": {"filesystem_store_datadir": tmp_path / "legacy"}},
                    default_backend="fast")


def test_add_get_size_delete_in_glance_stores_shapes(backends: Backends, tmp_path: Path) -> None:
    verifier = Verifier()
    uri, size, md5, multihash, meta = glance.add_with_multihash(
        backends, IMAGE, io.BytesIO(DATA), 0, None, "sha256", verifier=verifier)
    assert (uri, size, meta) == (f"file://{tmp_path}/a/{IMAGE}", len(DATA), {"store": "fast"})
    assert (md5, multihash) == (hashlib.md5(DATA).hexdigest(), hashlib.sha256(DATA).hexdigest())
    assert bytes(verifier.seen) == DATA
    chunks, length = glance.get(backends, uri, "fast")
    assert (b"".join(chunks), length) == (DATA, len(DATA))
    chunks, length = glance.get(backends, uri, "fast", offset=100, chunk_size=7)
    assert (b"".join(chunks), length) == (DATA[100:107], 7)
    assert glance.get_size_from_uri_and_backend(backends, uri, "fast") == len(DATA)
    assert glance.delete(backends, uri, "fast") == "deleted"
    with pytest.raises(NotFound):
        glance.get_size_from_uri_and_backend(backends, uri, "fast")


def test_a_uri_finds_its_backend_by_prefix_when_none_is_named(backends: Backends, tmp_path: Path) -> None:
    uri = glance.add_with_multihash(backends, IMAGE, io.BytesIO(b"x" * 10), 10, "slow", "sha512")[0]
    assert uri == f"file://{tmp_path}/b/{IMAGE}"
    assert backends.backend_for_uri(uri).id == "slow"
    chunks, _ = glance.get(backends, uri, None)
    assert b"".join(chunks) == b"x" * 10
    with pytest.raises(InvalidLocation):
        backends.backend_for_uri(f"file://{tmp_path}/b2/{IMAGE}")


def test_a_file_backend_serves_a_glance_store_filesystem_directory(backends: Backends, tmp_path: Path) -> None:
    (tmp_path / "legacy").mkdir()
    (tmp_path / "legacy" / IMAGE).write_bytes(b"written by glance_store")  # no checksums beside it
    uri = f"file://{tmp_path}/legacy/{IMAGE}"
    chunks, size = glance.get(backends, uri, "legacy")
    assert (b"".join(chunks), size) == (b"written by glance_store", 23)


def test_a_uri_of_another_backend_is_refused(backends: Backends, tmp_path: Path) -> None:
    uri = glance.add_with_multihash(backends, IMAGE, io.BytesIO(b"abc"), 3, "fast", "sha512")[0]
    with pytest.raises(InvalidLocation):
        glance.get(backends, uri, "slow")
    with pytest.raises(InvalidLocation):
        glance.get(backends, "rbd://a/b/c/d", "fast")


def test_format_policy_applies_and_leaves_nothing(backends: Backends, tmp_path: Path) -> None:
    qed = b"QFI\xfb" + b"\0" * 4092  # QED: refused unless a store allows it
    with pytest.raises(UnsafeImage):
        glance.add_with_multihash(backends, IMAGE, io.BytesIO(qed), len(qed), "fast", "sha512")
    assert [p.name for p in (tmp_path / "a").iterdir() if p.name != ".tmp"] == []


def test_from_config_reads_glance_api_conf_sections(tmp_path: Path) -> None:
    backends = Backends.from_config({
        "DEFAULT": {"enabled_backends": "legacy:file"},
        "glance_store": {"default_backend": "legacy"},
        "legacy": {"filesystem_store_datadir": str(tmp_path / "d")},
    })
    assert list(backends) == ["legacy"] and backends.default_backend == "legacy"
    uri = glance.add_with_multihash(backends, IMAGE, io.BytesIO(b"abc"), 3, None, "sha512")[0]
    assert uri == f"file://{tmp_path}/d/{IMAGE}"


@pytest.mark.parametrize(("args", "key"), [
    (("fast",), "enabled_backends"),
    (("fast:rbd",), "enabled_backends"),
    (({},), "enabled_backends"),
    (("fast:imagestore",), "fast.imagestore_config"),
    (("fast:imagestore", {"fast": {"imagestore_config": "x", "imagestore_stor": "a"}}), "fast.imagestore_stor"),
    (("legacy:file", {"legacy": {}}), "legacy.filesystem_store_datadir"),
])
def test_bad_configuration_names_the_option(args: tuple, key: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ConfigError) as caught:
        Backends(*args)
    assert caught.value.key == key


def test_default_backend_must_be_enabled(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="default_backend"):
        Backends("a:file", {"a": {"filesystem_store_datadir": str(tmp_path)}}, default_backend="b")


def test_bad_store_file_or_name_is_reported_on_first_use_naming_the_option(tmp_path: Path) -> None:
    backends = Backends("a:imagestore, b:imagestore",
                        {"a": {"imagestore_config": tmp_path / "none.toml"},
                         "b": {"imagestore_config": tmp_path / "is.toml", "imagestore_store": "zz"}})
    (tmp_path / "is.toml").write_text(f'[stores.s]\ndriver = "file"\nroot = "{tmp_path / "s"}"\n')
    with pytest.raises(ConfigError) as caught:
        backends.backend("a")
    assert caught.value.key == "a.imagestore_config"
    with pytest.raises(ConfigError, match="no store named 'zz'.*configured: s") as caught:
        backends.backend("b")
    assert caught.value.key == "b.imagestore_store"
    with pytest.raises(InvalidLocation, match="no backend named 'c'"):
        backends.backend("c")


def test_importing_imagestore_loads_neither_glance_store_nor_oslo_config() -> None:
    code = ("import sys, imagestore, imagestore.compat.glance, imagestore.compat.uris;"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('glance_store', 'oslo_config'));"
            "assert not bad, bad")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr

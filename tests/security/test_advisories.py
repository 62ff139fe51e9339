"""One test per image-service advisory that concerns storage, named after what it prevents.
The advisory each one answers is in its docstring and in SECURITY.md's table."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import imagestore
from imagestore import (
    AlreadyExists,
    Busy,
    ImageStoreError,
    ImageTooLarge,
    InvalidLocation,
    Location,
    NotFound,
    SizeMismatch,
    UnsafeImage,
    UploadTimeout,
)
from imagestore.cli import main
from imagestore.testing.payloads import payload
from tests.formats.builders import gpt_disk, iso_image, patch

from .conftest import Attack

SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCY/Secret9"


def _nothing_of(attack: Attack, image: str) -> None:
    """Neither the image nor a temporary of it is in the store."""
    with pytest.raises(NotFound):
        attack.store.stat(image)
    tmp = attack.root / ".tmp"
    assert not tmp.exists() or [p.name for p in tmp.iterdir()] == []


# ---------------------------------------------------------------------- credentials
GLANCE_URIS = [
    f"s3://AKIAEXAMPLE:{SECRET}@s3.example.com/images/img-1",
    f"s3+https://AKIAEXAMPLE:{SECRET}@s3.example.com:8443/images/img-1",
    f"swift+https://tenant:user:{SECRET}@keystone.example.com/v3/glance/img-1",
    f"swift://user:{SECRET}@auth.example.com/v1.0/glance/img-1",
    f"http://user:{SECRET}@web.example.com/images/img-1",
]


@pytest.mark.parametrize("uri", GLANCE_URIS)
def test_credentials_never_reach_a_location_an_error_or_a_log(uri: str, caplog: pytest.LogCaptureFixture,
                                                              tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """OSSA-2013-002, OSSA-2013-007, OSSA-2014-004 (and OSSN-0090): backend credentials in a
    location end up in error messages, headers and logs. imagestore drops them when it reads
    a glance_store URI, refuses them in its own form, and no message or log line has them."""
    caplog.set_level(logging.DEBUG)
    loc = Location.from_glance(uri)
    assert SECRET not in f"{loc} {loc!r}" and "AKIAEXAMPLE" not in str(loc)
    store = imagestore.open_store({"driver": "memory"}, "mem")
    with pytest.raises(ImageStoreError) as err2:
        store.stat(uri)  # not a location of this store: the error names what it parsed
    assert SECRET not in str(err2.value)
    config = tmp_path / "c.toml"
    config.write_text(f'[stores.local]\ndriver = "file"\nroot = "{tmp_path / "r"}"\n')
    for cmd in (["stat", uri], ["rm", uri], ["get", uri, "-o", str(tmp_path / "o")], ["--json", "locate", uri]):
        assert main(["--config", str(config), *cmd]) in (1, 2)
    out = capsys.readouterr()
    assert SECRET not in out.out + out.err
    assert SECRET not in caplog.text
    with pytest.raises(InvalidLocation) as err:  # the canonical parser refuses user information
        Location.parse(uri)
    assert SECRET not in str(err.value)


def test_store_secrets_never_printed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> None:
    """OSSA-2014-004: a store's own keys, from the environment, are in no repr, description,
    error or log line, even when the backend cannot be reached."""
    monkeypatch.setenv("HARD_S3_ACCESS", "AKIAEXAMPLE")
    monkeypatch.setenv("HARD_S3_SECRET", SECRET)
    caplog.set_level(logging.DEBUG)
    config = tmp_path / "c.toml"
    config.write_text('default = "s3"\n[stores.s3]\ndriver = "s3"\nendpoint = "http://127.0.0.1:9"\n'
                      'bucket = "images"\nretries = 0\nconnect_timeout = 0.5\nread_timeout = 0.5\n'
                      'access_key = { env = "HARD_S3_ACCESS" }\nsecret_key = { env = "HARD_S3_SECRET" }\n')
    stores = imagestore.Stores.from_file(config)
    assert SECRET not in repr(stores)
    for cmd in (["stores"], ["--json", "stores"], ["stat", "img"], ["sweep"], ["--json", "rm", "img"]):
        main(["--config", str(config), *cmd])
    try:
        store = stores["s3"]
    except ImageStoreError as exc:
        assert SECRET not in str(exc)
    else:
        assert SECRET not in f"{store!r} {store._driver!r} {store.describe()}"
        with pytest.raises(ImageStoreError) as err:
            store.add("img", b"x" * 100, 100)
        assert SECRET not in str(err.value)
        store.close()
    out = capsys.readouterr()
    assert SECRET not in out.out + out.err + caplog.text


# ---------------------------------------------------------------------- file locations
def test_file_locations_cannot_escape_the_root(attack: Attack, tmp_path: Path) -> None:
    """OSSA-2014-041 (file://) and OSSA-2015-002 (filesystem://): a crafted location made the
    image service serve or delete any file it could read. Only ROOT/<id> is an image."""
    c = attack.canary
    root = attack.root
    locations = [f"file://{c}", f"filesystem://{c}", f"file://{root}/../outside/{c.name}",
                 f"file://{root}/%2e%2e/outside/{c.name}", f"file://{root}/..%2foutside%2f{c.name}",
                 f"file://{root}/.tmp/{c.name}", f"file://{root}/sub/{c.name}", "file:///etc/passwd",
                 f"file://{root}/../../../../../etc/passwd", f"file://{root}%2f..%2f..%2fetc%2fpasswd",
                 f"file://localhost{c}", str(c), f"../outside/{c.name}", "/etc/shadow"]
    store = attack.store
    for text in locations:
        for op in (store.stat, store.get, store.delete, store.locate, store.adopt):
            with pytest.raises((InvalidLocation, NotFound)):
                op(text)  # type: ignore[operator]
    config = tmp_path / "c.toml"
    config.write_text(f'[stores.local]\ndriver = "file"\nroot = "{root}"\n')
    for text in locations:
        for cmd in (["rm", text], ["get", text, "-o", str(tmp_path / "out")], ["stat", text]):
            assert main(["--config", str(config), *cmd]) in (1, 2)
    assert attack.canary_intact() and not (tmp_path / "out").exists()


def test_locations_of_another_store_or_outside_a_root_are_refused(tmp_path: Path) -> None:
    """Glance's store-by-prefix lookup (``file:///var/lib/glance/images`` also matches
    ``.../images2/``): a location is in a store only if it names that store and lies in it."""
    a = imagestore.open_store({"driver": "file", "root": str(tmp_path / "images")}, "a")
    b = imagestore.open_store({"driver": "file", "root": str(tmp_path / "images2")}, "b")
    info = b.add("img", b"b's bytes" * 100, 900)
    for ref in (info.location, str(info.location), f"file://{tmp_path}/images2/img",
                Location("file", "", (*info.location.path,), "a")):
        with pytest.raises(InvalidLocation):
            a.stat(ref)
        with pytest.raises(InvalidLocation):
            a.delete(ref)
    assert b.get(info.location) == b"b's bytes" * 100
    mem = imagestore.open_store({"driver": "memory", "namespace": "other"}, "m")
    with pytest.raises(InvalidLocation):
        mem.get(info.location)


def test_symlinks_planted_in_the_root_are_never_followed(attack: Attack) -> None:
    """A symlink (or a non-file) planted in a file store's root is no image: not read, not
    deleted through, not swept through; a planted ``.tmp`` symlink gets no upload written
    outside the root."""
    root, c, store = attack.root, attack.canary, attack.store
    (root / "evil").symlink_to(c)
    (root / "evildir").symlink_to(c.parent, target_is_directory=True)
    os.mkfifo(root / "fifo")
    for name in ("evil", "evildir", "fifo"):
        for op in (store.stat, store.get, store.delete, store.locate):
            with pytest.raises(NotFound):
                op(name)  # type: ignore[operator]
    with pytest.raises(AlreadyExists):
        store.add("evil", b"x" * 10, 10)  # the name is taken; the link is not written through
    (root / ".tmp").symlink_to(c.parent, target_is_directory=True)
    with pytest.raises(ImageStoreError):
        store.add("new", b"y" * 1000, 1000)
    assert sorted(p.name for p in c.parent.iterdir()) == [c.name]
    with pytest.raises(ImageStoreError):  # a clear error, and nothing outside touched
        store.sweep(0)
    (root / ".tmp").unlink()
    (root / ".tmp").mkdir()
    (root / ".tmp" / "dead.1.abc").symlink_to(c)
    old = time.time() - 7200
    os.utime(root / ".tmp" / "dead.1.abc", (old, old), follow_symlinks=False)
    store.sweep(0)
    assert attack.canary_intact() and (root / "evil").is_symlink()


@pytest.mark.parametrize("bad", ["../etc/passwd", "/etc/passwd", "a/b", ".hidden", "..", ".", "", "x" * 256,
                                 "-rf", "img\x00", "img\n", "ïmg", "a\\b", "img?store=x", "%2e%2e", " img",
                                 "$(touch /tmp/imagestore-pwned)"])
def test_image_ids_that_are_not_safe_names_are_refused(attack: Attack, bad: str) -> None:
    """An id is a name in every backend (a file, an RBD image, an object key): nothing a
    backend or a shell could read as a path, option or command."""
    with pytest.raises(InvalidLocation):
        attack.store.add(bad, b"data", 4)
    good = attack.store.add("good", b"data", 4) if not (attack.root / "good").exists() else None
    if bad:  # name="" means "the source's id"
        with pytest.raises(InvalidLocation):
            attack.store.clone("good", name=bad)
    if good is not None:
        assert attack.store.get("good") == b"data"
    assert not Path("/tmp/imagestore-pwned").exists()
    assert sorted(p.name for p in attack.root.iterdir() if p.name != ".tmp") == ["good"]


def test_locations_are_parsed_never_executed(attack: Attack) -> None:
    """OSSA-2014-012 (Sheepdog): a crafted location reached a shell. Locations are data."""
    marker = Path("/tmp/imagestore-location-pwned")
    for uri in (f"rbd://$(touch {marker})/pool/img/snap", f"file://{attack.root}/`touch {marker}`",
                f"sheepdog://;touch {marker}", f"s3://h/b/$(touch {marker})"):
        with pytest.raises(ImageStoreError):
            attack.store.stat(uri)
    assert not marker.exists()


# ---------------------------------------------------------------------- hostile images
@pytest.mark.parametrize("name, advisory", [
    ("backing.qcow2", "OSSA-2015-014"), ("datafile.qcow2", "OSSA-2024-001"), ("datafile-raw.qcow2", "OSSA-2024-001"),
    ("backing.qed", "OSSA-2015-014"), ("flat-etc.vmdk", "OSSA-2023-002"), ("flat.vmdk", "OSSA-2023-002"),
    ("child.vmdk", "OSSA-2023-002"),
])
def test_images_that_reference_host_files_are_refused(attack: Attack, hostile: dict[str, bytes], name: str,
                                                      advisory: str) -> None:
    """OSSA-2015-014 (qcow2/QED backing file), OSSA-2024-001 (qcow2 external data file),
    OSSA-2023-002 (VMDK descriptor extents): the image makes qemu read a host file. Refused
    while it is written, with or without a declared format; nothing of it is kept."""
    data = hostile[name]
    for declared in (None, name.rsplit(".", 1)[1]):
        with pytest.raises(UnsafeImage):
            attack.store.add("evil", data, len(data), format=declared)
        _nothing_of(attack, "evil")


@pytest.mark.parametrize("name", ["backing.qcow2", "flat-etc.vmdk", "plain.qcow2", "sparse.vmdk"])
def test_images_declared_raw_that_are_not_raw_are_refused(attack: Attack, hostile: dict[str, bytes],
                                                         name: str) -> None:
    """OSSA-2024-002: a "raw" image that is really a qcow2 with a backing file or a VMDK flat
    descriptor. The declared format must be the detected one, whatever the image holds."""
    data = hostile[name]
    with pytest.raises(UnsafeImage):
        attack.store.add("liar", data, len(data), format="raw")
    _nothing_of(attack, "liar")


def test_polyglot_images_are_refused(attack: Attack, hostile: dict[str, bytes]) -> None:
    """Polyglots (OSSA-2024-001's follow-ups): a file two consumers read as two formats, e.g.
    an ISO whose system area is a qcow2 header, or a GPT disk whose partition starts with one."""
    iso = iso_image(256)
    qcow2 = hostile["plain.qcow2"]
    disk = gpt_disk(1 << 20)
    disk[64 * 512:64 * 512 + 4096] = hostile["backing.qcow2"][:4096]
    for data in (patch(iso, 0, qcow2[:4096]), bytes(disk), patch(iso, 0, hostile["sparse.vmdk"][:4096])):
        with pytest.raises(UnsafeImage):
            attack.store.add("poly", data, len(data))
        _nothing_of(attack, "poly")


# ---------------------------------------------------------------------- uploads
def test_unbounded_uploads_stop_at_the_cap(tmp_path: Path) -> None:
    """OSSA-2014-028 (image_size_cap not honoured) and the -014/-019 style quota bypasses: an
    endless upload stops at ``max_image_size``, a declared size over it is refused before a
    byte, and nothing remains."""
    root = tmp_path / "r"
    store = imagestore.open_store({"driver": "file", "root": str(root), "max_image_size": "4M"}, "capped")

    def endless() -> Iterator[bytes]:
        block = b"\xab" * (1 << 20)
        while True:
            yield block

    with pytest.raises(ImageTooLarge):
        store.add("huge", endless())
    with pytest.raises(ImageTooLarge):
        store.add("huge", endless(), size=5 << 20)
    with pytest.raises((ImageTooLarge, SizeMismatch)):
        store.add("huge", endless(), size=3 << 20)  # declared 3M, sends more: refused at 3M
    with pytest.raises(NotFound):
        store.stat("huge")
    assert [p.name for p in (root / ".tmp").iterdir()] == []


def test_slow_and_concurrent_uploads_are_bounded(tmp_path: Path) -> None:
    """Denial of service by upload: a source that stops sending is cut off by ``idle_timeout``
    with nothing kept, and ``max_concurrent_adds`` refuses one upload too many (Busy)."""
    root = tmp_path / "r"
    store = imagestore.open_store({"driver": "file", "root": str(root), "idle_timeout": "0.3s",
                                   "max_concurrent_adds": 1}, "dos")
    release = threading.Event()

    def slow() -> Iterator[bytes]:
        yield b"x" * 65536
        release.wait(10)
        yield b"y" * 65536

    outcome: list[BaseException] = []
    worker = threading.Thread(target=lambda: outcome.append(pytest.raises(UploadTimeout, store.add, "loris",
                                                                           slow()).value))
    worker.start()
    time.sleep(0.1)
    with pytest.raises(Busy):
        store.add("second", b"z" * 10, 10)
    time.sleep(0.6)  # past idle_timeout: the watch aborts the upload while the source hangs
    release.set()
    worker.join(10)
    assert outcome and isinstance(outcome[0], UploadTimeout)
    for name in ("loris", "second"):
        with pytest.raises(NotFound):
            store.stat(name)
    assert [p.name for p in (root / ".tmp").iterdir()] == []


def test_cancelled_upload_leaves_nothing(attack: Attack) -> None:
    """OSSA-2015-003 / OSSA-2015-020: deleting (cancelling) an image during its upload left
    its data behind. A source that fails mid-stream, or an interrupted add, keeps nothing."""

    def dies() -> Iterator[bytes]:
        yield payload(1 << 20, 1)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        attack.store.add("cancelled", dies())
    _nothing_of(attack, "cancelled")


def test_published_images_cannot_be_replaced(attack: Attack) -> None:
    """OSSA-2015-019 (status manipulation let a tenant re-upload an image's data) and
    OSSA-2016-006 (data replacement): a published id's bytes never change; a second add of it
    is AlreadyExists, in every order and concurrently."""
    data = payload(1 << 20, 2)
    info = attack.store.add("golden", data, len(data))
    with pytest.raises(AlreadyExists):
        attack.store.add("golden", b"evil" * 1000, 4000)
    errors: list[type[BaseException]] = []

    def replace() -> None:
        try:
            attack.store.add("golden", b"evil" * 1000, 4000)
        except ImageStoreError as exc:
            errors.append(type(exc))

    threads = [threading.Thread(target=replace) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == [AlreadyExists] * 8
    assert attack.store.get(info.location) == data

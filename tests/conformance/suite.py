"""The conformance suite every driver runs (fsspec ``tests/abstract`` style).

A backend passes by declaring one class::

    class TestMemory(ConformanceSuite):
        @pytest.fixture
        def backend(self): return MemoryBackend()

``backend`` is a :class:`Backend`. Tests read ``store.capabilities`` and check
the behaviour a capability promises, or the ``Unsupported`` error its absence
promises, so no test is skipped for lack of a feature.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import pytest

import imagestore
from imagestore import (
    AlreadyExists,
    BackendError,
    BackendUnavailable,
    ChecksumMismatch,
    DeleteOutcome,
    ImageStoreError,
    ImageTooLarge,
    InUse,
    InvalidLocation,
    NoSpace,
    NotFound,
    SizeMismatch,
    Store,
    UnsafeImage,
    Unsupported,
)
from tests.faults import FAULTS, POINTS, inject

MiB = 1 << 20
SERVER_LIMIT = "a limit set by the server's configuration"
"""A declared ``max_object_size`` whose value the server decides (Swift: its /info): some positive int."""


class Backend:
    """What a backend declares for the suite."""

    #: every field of :class:`imagestore.Capabilities` the backend's stores MUST probe as, on the
    #: servers CI runs; the suite fails when a probe differs, and tests of an absent capability
    #: check the refusal its absence promises
    capabilities: dict[str, object] = {}
    #: the mode ``clone(mode="auto")`` must pick between two stores of this backend
    native_clone_mode: str | None = None
    #: whether a native clone keeps needing its source (RBD layering), so deleting the
    #: source is refused (InUse) or deferred
    clones_depend_on_source: bool = False

    def spec(self) -> dict[str, Any]:
        """The store table (driver and options) for a fresh store over this backend."""
        raise NotImplementedError

    def has(self, capability: str) -> bool:
        """Whether the backend declares ``capability`` (never the probe: a store claiming less fails)."""
        return bool(self.capabilities[capability])

    def sibling_spec(self) -> dict[str, Any]:
        """A second store on the same backend, reachable by native clone."""
        return self.spec()

    def secrets(self) -> list[str]:
        """Secret values this backend authenticates with; none may appear in any output."""
        return []

    def leftovers(self) -> list[str]:
        """Temporaries or partial objects left in the backend (must be empty after a failed add)."""
        return []

    def place_native(self, name: str, data: bytes) -> str:
        """Write ``data`` into the backend the way a consumer does it itself (for ``adopt``);
        returns the consumer's reference. Only backends whose stores claim ``adopt``."""
        raise NotImplementedError

    def native_state(self, name: str) -> object:
        """Everything of a natively written image that adopting must not change if it refuses."""
        raise NotImplementedError

    def make(self, name: str = "main", sibling: bool = False, **settings: Any) -> Store:
        table = {**(self.sibling_spec() if sibling else self.spec()), **settings}
        store = imagestore.open_store(table, name)
        self.__dict__.setdefault("_made", []).append(store)
        return store

    def close_all(self) -> None:
        """Close every store :meth:`make` opened (their backend connections)."""
        for store in self.__dict__.pop("_made", []):
            store.close()


def payload(size: int, seed: int = 1) -> bytes:
    """Deterministic, incompressible-looking test data."""
    out = bytearray()
    block = hashlib.sha512(str(seed).encode()).digest()
    while len(out) < size:
        block = hashlib.sha512(block).digest()
        out += block * 64
    return bytes(out[:size])


def assert_expires(access: imagestore.DirectAccess, before: datetime, after: datetime, ttl: float,
                   slack: float = 2.0) -> None:
    """``access`` expires ``ttl`` seconds after some moment between ``before`` and ``after`` (taken
    around the locate call), give or take ``slack`` (whole-second rounding, the server's Date):
    bracketed, so however long the call took on a loaded machine it cannot fail by itself."""
    assert access.expires_at is not None
    assert (access.expires_at - before).total_seconds() >= ttl - slack, (access.expires_at, before, ttl)
    assert (access.expires_at - after).total_seconds() <= ttl + slack, (access.expires_at, after, ttl)


def chunks(data: bytes, size: int = 100_000) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i:i + size]


class ConsumerSuite:
    """What the compute and volume services rely on: adopt (where claimed), verified clone
    sources, clone depth and flatten. Mixed into :class:`ConformanceSuite`."""

    def test_adopt_registers_native_bits(self, backend: Backend, store: Store, image_id: str) -> None:
        data = payload(3 * MiB + 5, seed=40)
        if not backend.has("adopt"):
            with pytest.raises(Unsupported):
                store.adopt(store.location(image_id))
        else:
            self._adopt_registers(backend, store, image_id, data)

    def _adopt_registers(self, backend: Backend, store: Store, image_id: str, data: bytes) -> None:
        ref = backend.place_native(image_id, data)
        calls: list[int] = []
        info = store.adopt(ref, progress=lambda done, total: calls.append(done))
        assert info.size == len(data) and info.format == "raw" and info.location.store == store.name
        assert info.checksums == {"md5": hashlib.md5(data).hexdigest(), "sha512": hashlib.sha512(data).hexdigest()}
        assert calls and calls[-1] == len(data)
        assert store.stat(info.location) == info
        assert store.get(info.location) == data  # verified against the checksum adopt computed
        with pytest.raises(AlreadyExists):
            store.adopt(ref)
        clone = store.clone(info.location, name=image_id + "-c", verify_source=True)
        assert store.get(clone.location) == data

    def test_adopt_refusal_leaves_the_bits_untouched(self, backend: Backend, store: Store, image_id: str,
                                                     qcow2_with_backing: bytes) -> None:
        if not backend.has("adopt"):
            with pytest.raises(Unsupported):
                store.adopt(store.location(image_id))
        else:
            self._adopt_refusals(backend, store, image_id, qcow2_with_backing)

    def _adopt_refusals(self, backend: Backend, store: Store, image_id: str, qcow2_with_backing: bytes) -> None:
        raw = payload(MiB, seed=41)
        cases: list[tuple[str, bytes, dict[str, Any], type[ImageStoreError]]] = [
            ("-evil", qcow2_with_backing, {}, UnsafeImage),
            ("-declared", raw, {"format": "qcow2"}, UnsafeImage),
            ("-expected", raw, {"expected": {"sha512": "0" * 128}}, ChecksumMismatch),
        ]
        for suffix, data, kwargs, error in cases:
            ref = backend.place_native(image_id + suffix, data)
            before = backend.native_state(image_id + suffix)
            with pytest.raises(error):
                store.adopt(ref, **kwargs)
            assert backend.native_state(image_id + suffix) == before, suffix
            assert store.stat(ref).checksums == {}
        assert store.adopt(backend.place_native(image_id, raw)).size == MiB  # a good one is adopted

    def test_adopt_refuses_foreign_refs(self, store: Store) -> None:
        for ref in ("/etc/passwd", "file:///etc/passwd", "rbd://0000/pool/image/snap"):
            with pytest.raises(InvalidLocation):
                store.adopt(ref)

    def test_verify_source_once_per_version(self, backend: Backend, store: Store, image_id: str) -> None:
        """OSSN-0090: a clone can check its source's bits, once per immutable version."""
        sibling = backend.make("sibling", sibling=True)
        data = payload(2 * MiB, seed=42)
        info = store.add(image_id, data, len(data))
        reads: list[tuple[int, int]] = []
        real = store._driver.open_reader

        def counting(loc: imagestore.Location, offset: int, length: int) -> Any:
            reads.append((offset, length))
            return real(loc, offset, length)

        store._driver.open_reader = counting  # type: ignore[method-assign]
        first = store.clone(info.location, sibling, name=image_id + "-v1", verify_source=True)
        second = store.clone(info.location, sibling, name=image_id + "-v2", verify_source=True)
        version = store._driver.stat(info.location).version
        if first.mode == "stream":
            assert len(reads) == 2  # each stream is verified as it goes
        else:
            assert len(reads) == (1 if version is not None else 2), reads
        assert sibling.get(second.location) == data
        reads.clear()
        assert store.verify_source(info.location) is (version is None)
        assert len(reads) == (0 if version is not None else 1)

    def test_clone_depth_and_flatten(self, backend: Backend, store: Store, image_id: str) -> None:
        sibling = backend.make("sibling", sibling=True)
        data = payload(3 * MiB, seed=43)
        info = store.add(image_id, data, len(data))
        clone = store.clone(info.location, sibling, name=image_id + "-child")
        depends = clone.mode == "cow" and backend.clones_depend_on_source
        assert clone.depth == sibling.depth(clone.location) == (1 if depends else 0)
        assert store.depth(info.location) == 0
        assert sibling.flatten(clone.location) == 0
        assert sibling.depth(clone.location) == 0
        assert sibling.get(clone.location) == data
        assert store.delete(info.location) is DeleteOutcome.DELETED  # nothing depends on it any more
        assert sibling.get(clone.location) == data


class ConformanceSuite(ConsumerSuite):
    """Behaviour every store must have; subclasses provide the ``backend`` fixture."""

    @pytest.fixture
    def backend(self) -> Backend:  # pragma: no cover - overridden
        raise NotImplementedError

    @pytest.fixture(autouse=True)
    def _close_stores(self, backend: Backend) -> Iterator[None]:
        yield
        backend.close_all()

    @pytest.fixture
    def store(self, backend: Backend) -> Store:
        return backend.make()

    @pytest.fixture
    def image_id(self, request: pytest.FixtureRequest) -> str:
        digest = hashlib.sha1(f"{request.node.nodeid}{time.time_ns()}".encode()).hexdigest()[:12]
        return f"img-{digest}"

    # ------------------------------------------------------------ round trip
    def test_add_known_size_roundtrip(self, store: Store, image_id: str) -> None:
        data = payload(3 * MiB + 17)
        info = store.add(image_id, io.BytesIO(data), len(data))
        assert info.size == len(data)
        assert info.checksums == {"md5": hashlib.md5(data).hexdigest(), "sha512": hashlib.sha512(data).hexdigest()}
        assert info.location.store == store.name
        assert imagestore.Location.parse(str(info.location)) == info.location
        assert store.stat(info.location) == info
        assert store.stat(str(info.location)) == info
        assert store.get(info.location) == data

    def test_add_unknown_size_from_iterator(self, backend: Backend, store: Store, image_id: str) -> None:
        data = payload(2 * MiB + 5, seed=2)
        if not backend.has("unknown_size"):
            with pytest.raises(Unsupported):
                store.add(image_id, chunks(data))
            with pytest.raises(NotFound):
                store.stat(image_id)
        else:
            info = store.add(image_id, chunks(data, 65_537))
            assert info.size == len(data)
            assert store.get(info.location) == data
            assert store.stat(image_id).checksums["sha512"] == hashlib.sha512(data).hexdigest()

    def test_add_from_bytes_and_path(self, store: Store, image_id: str, tmp_path: Any) -> None:
        data = payload(MiB + 3, seed=3)
        a = store.add(image_id + "-b", data, len(data))
        path = tmp_path / "img"
        path.write_bytes(data)
        b = store.add(image_id + "-p", str(path), len(data))
        assert a.checksums == b.checksums
        assert store.get(b.location) == data

    def test_empty_image(self, store: Store, image_id: str) -> None:
        info = store.add(image_id, b"", 0)
        assert info.size == 0
        assert store.get(info.location) == b""
        assert info.checksums["md5"] == hashlib.md5(b"").hexdigest()

    def test_configured_checksums(self, backend: Backend, image_id: str) -> None:
        store = backend.make(checksums=["sha256"])
        data = payload(MiB, seed=4)
        info = store.add(image_id, data, len(data))
        assert info.checksums == {"sha256": hashlib.sha256(data).hexdigest()}
        assert store.get(info.location) == data  # verified against sha256

    def test_progress_callback(self, store: Store, image_id: str) -> None:
        data = payload(5 * MiB, seed=5)
        calls: list[tuple[int, int | None]] = []
        info = store.add(image_id, data, len(data), progress=lambda d, t: calls.append((d, t)))
        assert calls[-1] == (len(data), len(data))
        reads: list[tuple[int, int | None]] = []
        with store.open(info.location, progress=lambda d, t: reads.append((d, t))) as r:
            assert b"".join(r) == data
        assert reads[-1] == (len(data), len(data))

    # ------------------------------------------------------------ ranges and verification
    @pytest.mark.parametrize(("offset", "length"), [(0, 1), (1, 4096), (MiB - 1, 2), (0, None), (MiB, None),
                                                    (2 * MiB - 10, 100), (5 * MiB, 10)])
    def test_ranged_reads(self, backend: Backend, store: Store, image_id: str, offset: int,
                          length: int | None) -> None:
        data = payload(2 * MiB, seed=6)
        info = store.add(image_id, data, len(data))
        end = None if length is None else offset + length
        if not backend.has("range_read") and (offset or length is not None):
            with pytest.raises(Unsupported):
                store.get(info.location, offset, length)
        else:
            assert store.get(info.location, offset, length) == data[offset:end]

    def test_verify_detects_wrong_expected(self, store: Store, image_id: str) -> None:
        data = payload(MiB, seed=7)
        info = store.add(image_id, data, len(data))
        wrong = {"sha512": hashlib.sha512(b"other").hexdigest()}
        with pytest.raises(ChecksumMismatch) as err, store.open(info.location, expected=wrong) as r:
            for _ in r:
                pass
        assert err.value.algorithm == "sha512"
        with store.open(info.location, expected={"md5": info.checksums["md5"]}) as r:
            assert r.read() == data

    def test_ranged_read_cannot_verify(self, store: Store, image_id: str) -> None:
        info = store.add(image_id, payload(1000), 1000)
        with pytest.raises(Unsupported):
            store.open(info.location, 10, 10, verify=True)

    def test_download_to_is_atomic_and_verified(self, store: Store, image_id: str, tmp_path: Any) -> None:
        data = payload(3 * MiB, seed=8)
        info = store.add(image_id, data, len(data))
        tmp_path = tmp_path / "downloads"
        tmp_path.mkdir()
        out = tmp_path / "out.img"
        store.download_to(info.location, out)
        assert out.read_bytes() == data
        bad = tmp_path / "bad.img"
        with pytest.raises(ChecksumMismatch), store.open(
            info.location, expected={"md5": "0" * 32}
        ) as reader:
            imagestore.engine.reader.write_atomically(reader, bad)  # type: ignore[attr-defined]
        assert not bad.exists()
        assert os.listdir(tmp_path) == ["out.img"]

    # ------------------------------------------------------------ publication
    def test_add_existing_id_refused(self, store: Store, image_id: str) -> None:
        first = payload(MiB, seed=9)
        store.add(image_id, first, len(first))
        with pytest.raises(AlreadyExists):
            store.add(image_id, payload(MiB, seed=10), MiB)
        assert store.get(image_id) == first

    def test_concurrent_adds_of_one_id(self, backend: Backend, image_id: str) -> None:
        store = backend.make()
        datas = [payload(2 * MiB, seed=100 + i) for i in range(4)]
        barrier = threading.Barrier(len(datas))
        results: list[object] = [None] * len(datas)

        def slow(data: bytes) -> Iterator[bytes]:
            barrier.wait()  # every writer is open before anyone finishes
            yield from chunks(data, 256 * 1024)

        def run(i: int) -> None:
            try:
                results[i] = store.add(image_id, slow(datas[i]))
            except BaseException as exc:  # noqa: BLE001
                results[i] = exc

        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(datas))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        winners = [r for r in results if isinstance(r, imagestore.ImageInfo)]
        losers = [r for r in results if isinstance(r, AlreadyExists)]
        assert len(winners) == 1, results
        assert len(losers) == len(datas) - 1, results
        assert store.get(image_id) == datas[results.index(winners[0])]
        assert backend.leftovers() == []

    def test_concurrent_adds_from_separate_stores(self, backend: Backend, image_id: str) -> None:
        """Stores opened one by one share no lock in the facade: a backend that claims
        atomic_create gives one winner by itself (without it, only adds through one Store
        are serialised, by the facade)."""
        stores = [backend.make(f"w{i}") for i in range(4)]
        datas = [payload(MiB + 1, seed=110 + i) for i in range(len(stores))]
        barrier = threading.Barrier(len(stores))
        results: list[object] = [None] * len(stores)

        def run(i: int) -> None:
            barrier.wait()
            try:
                results[i] = stores[i].add(image_id, datas[i], len(datas[i]))
            except BaseException as exc:  # noqa: BLE001
                results[i] = exc

        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(stores))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        winners = [i for i, r in enumerate(results) if isinstance(r, imagestore.ImageInfo)]
        assert all(isinstance(r, (imagestore.ImageInfo, AlreadyExists)) for r in results), results
        if backend.has("atomic_create"):
            assert len(winners) == 1, results
            assert sum(isinstance(r, AlreadyExists) for r in results) == len(stores) - 1, results
            assert stores[1].get(image_id) == datas[winners[0]]
        else:  # several may publish, one after the other: the image is one of them, whole
            assert winners, results
            assert stores[1].get(image_id) in [datas[i] for i in winners]
        assert backend.leftovers() == []

    def test_abort_mid_stream_leaves_nothing(self, backend: Backend, store: Store, image_id: str) -> None:
        def broken() -> Iterator[bytes]:
            yield payload(3 * MiB)
            raise ConnectionResetError("client went away")

        with pytest.raises(ConnectionResetError):
            store.add(image_id, broken())
        with pytest.raises(NotFound):
            store.stat(image_id)
        assert backend.leftovers() == []
        store.add(image_id, b"second try", 10)  # the id is free

    def test_size_cap_stops_endless_upload(self, backend: Backend, image_id: str) -> None:
        store = backend.make(max_image_size=4 * MiB)
        pulled = 0

        def endless() -> Iterator[bytes]:
            nonlocal pulled
            block = payload(MiB, seed=11)
            while True:
                pulled += len(block)
                yield block

        with pytest.raises(ImageTooLarge):
            store.add(image_id, endless())
        assert pulled <= 6 * MiB
        with pytest.raises(ImageTooLarge):
            store.add(image_id, b"x" * 10, 5 * MiB)  # declared too large: refused before any byte
        with pytest.raises(NotFound):
            store.stat(image_id)
        assert backend.leftovers() == []

    @pytest.mark.parametrize("declared", [MiB - 1, MiB + 1])
    def test_size_mismatch(self, backend: Backend, store: Store, image_id: str, declared: int) -> None:
        with pytest.raises(SizeMismatch):
            store.add(image_id, io.BytesIO(payload(MiB)), declared)
        with pytest.raises(NotFound):
            store.stat(image_id)
        assert backend.leftovers() == []

    def _kill_writer_mid_upload(self, backend: Backend, image_id: str, tmp_path: Any) -> None:
        """Run an add in another process and SIGKILL it once it has written 1 MiB."""
        marker = tmp_path / f"started-{image_id}"
        code = textwrap.dedent(f"""
            import imagestore, pathlib, time
            store = imagestore.open_store({backend.spec()!r}, "main")
            def slow():
                yield b"x" * (1 << 20)
                pathlib.Path({str(marker)!r}).write_text("1")
                while True:
                    time.sleep(0.05)
                    yield b"y" * 65536
            store.add({image_id!r}, slow())
        """)
        proc = subprocess.Popen([sys.executable, "-c", code])
        try:
            deadline = time.monotonic() + 60
            while not marker.exists():
                assert proc.poll() is None, "writer died before it started"
                assert time.monotonic() < deadline, "writer never started"
                time.sleep(0.05)
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
        finally:
            if proc.poll() is None:
                proc.kill()

    def test_in_progress_add_is_invisible(self, backend: Backend, store: Store, image_id: str) -> None:
        """Until commit, readers see nothing; an abandoned writer publishes nothing."""
        started, release = threading.Event(), threading.Event()
        outcome: list[object] = []

        def source() -> Iterator[bytes]:
            yield payload(MiB, seed=60)
            started.set()
            release.wait(30)
            yield payload(MiB, seed=61)

        def run() -> None:
            try:
                outcome.append(store.add(image_id, source()))
            except BaseException as exc:  # noqa: BLE001
                outcome.append(exc)

        thread = threading.Thread(target=run)
        thread.start()
        try:
            assert started.wait(30)
            with pytest.raises(NotFound):
                store.stat(image_id)
            with pytest.raises(NotFound):
                store.get(image_id)
        finally:
            release.set()
            thread.join(60)
        assert isinstance(outcome[0], imagestore.ImageInfo), outcome
        assert store.get(image_id) == payload(MiB, seed=60) + payload(MiB, seed=61)

    def test_killed_add_leaves_no_image(self, backend: Backend, store: Store, image_id: str, tmp_path: Any) -> None:
        """A writer process killed mid-upload publishes nothing; the id stays free."""
        if not backend.has("persistent"):
            # images live in the writer's process: one that dies takes its uploads with it,
            # and another process never sees this one's images
            info = store.add(image_id, b"in this process", 15)
            code = (f"import imagestore; s = imagestore.open_store({backend.spec()!r}, 'main');\n"
                    f"try: s.stat({image_id!r})\nexcept imagestore.NotFound: raise SystemExit(3)")
            assert subprocess.run([sys.executable, "-c", code]).returncode == 3
            assert store.get(info.location) == b"in this process"
        else:
            self._kill_writer_mid_upload(backend, image_id, tmp_path)
            store = backend.make()
            with pytest.raises(NotFound):
                store.stat(image_id)
            info = store.add(image_id, b"after the kill", 14)
            assert store.get(info.location) == b"after the kill"

    def test_sweep_removes_a_killed_writers_leftovers(self, backend: Backend, store: Store, image_id: str,
                                                      tmp_path: Any) -> None:
        """What a killed add left behind is swept (once its writer is provably dead), and counted."""
        if not backend.has("persistent"):
            assert store.sweep(0) == imagestore.SweepReport()
        else:
            self._sweep_after_kill(backend, store, image_id, tmp_path)

    def _sweep_after_kill(self, backend: Backend, store: Store, image_id: str, tmp_path: Any) -> None:
        self._kill_writer_mid_upload(backend, image_id, tmp_path)
        assert backend.leftovers(), "a killed writer left nothing to sweep: the test proves nothing"
        assert store.sweep(3600).removed == 0, "a fresh temporary was swept with older_than=1h"
        removed = 0
        deadline = time.monotonic() + 120  # a dead client's lock or watch takes a while to lapse
        while backend.leftovers():
            assert time.monotonic() < deadline, f"never swept: {backend.leftovers()}"
            time.sleep(1)
            report = store.sweep(0)
            removed += report.removed
            assert report.bytes_freed >= 0
        assert removed >= 1
        store.sweep(0)
        assert backend.leftovers() == []

    # ------------------------------------------------------------ delete
    def test_delete_semantics(self, store: Store, image_id: str) -> None:
        info = store.add(image_id, b"to be deleted", 13)
        assert store.delete(info.location) is imagestore.DeleteOutcome.DELETED
        for op in (store.stat, store.get, store.delete):
            with pytest.raises(NotFound):
                op(info.location)

    # ------------------------------------------------------------ bad input
    @pytest.mark.parametrize("bad", ["", "../escape", "/abs", "a/b", ".hidden", "x" * 300, "sp ace",
                                     "nul\x00", "..", "ok/../../etc"])
    def test_bad_ids_refused(self, backend: Backend, store: Store, bad: str) -> None:
        with pytest.raises(InvalidLocation):
            store.add(bad, b"data", 4)
        assert backend.leftovers() == []

    def test_foreign_locations_refused(self, store: Store, image_id: str) -> None:
        info = store.add(image_id, b"data", 4)
        loc = info.location
        foreign = [
            loc.with_store("elsewhere"),
            imagestore.Location("file", "", ("etc", "passwd"), store.name),
            imagestore.Location("file", "", ("etc", "passwd")),
            imagestore.Location("memory", "other-namespace", (image_id,)),
            imagestore.Location("rbd", "0000", ("pool", image_id, "snap")),
        ]
        for bad in foreign:
            with pytest.raises(InvalidLocation):
                store.stat(bad)
        for text in ["file:///etc/passwd?store=" + store.name, "s3://key:secret@host/b/k",
                     f"{loc.scheme}://{loc.host}/%2e%2e/x", "non sense", "ftp://x/y"]:
            with pytest.raises(InvalidLocation) as err:
                store.stat(text)
            assert "secret" not in str(err.value)

    # ------------------------------------------------------------ clone
    def test_clone_auto_same_store(self, backend: Backend, store: Store, image_id: str) -> None:
        data = payload(2 * MiB, seed=12)
        info = store.add(image_id, data, len(data))
        check = store.can_clone(info.location)
        expected_mode = backend.native_clone_mode or "stream"
        assert check.possible and check.mode == expected_mode, check
        res = store.clone(info.location, name=image_id + "-c")
        assert res.mode == expected_mode
        assert res.location.store == store.name
        clone = store.stat(res.location)
        assert clone.checksums == info.checksums and clone.size == info.size
        assert store.get(res.location) == data
        with pytest.raises(AlreadyExists):
            store.clone(info.location, name=image_id + "-c")

    def test_clone_to_sibling_store(self, backend: Backend, store: Store, image_id: str) -> None:
        sibling = backend.make("sibling", sibling=True)
        data = payload(MiB, seed=13)
        info = store.add(image_id, data, len(data))
        res = store.clone(info.location, sibling, name=image_id + "-s")
        assert res.mode == (backend.native_clone_mode or "stream")
        assert res.location.store == "sibling"
        assert sibling.get(res.location) == data
        assert sibling.stat(res.location).checksums == info.checksums

    def test_clone_explicit_modes(self, backend: Backend, store: Store, image_id: str) -> None:
        info = store.add(image_id, payload(MiB, seed=14), MiB)
        native = backend.native_clone_mode
        for mode in ("cow", "server_copy"):
            if mode == native:
                assert store.can_clone(info.location, mode=mode).possible
                continue
            check = store.can_clone(info.location, mode=mode)  # type: ignore[arg-type]
            assert not check.possible and check.reason
            with pytest.raises(Unsupported):
                store.clone(info.location, name=image_id + "-" + mode, mode=mode)  # type: ignore[arg-type]
        res = store.clone(info.location, name=image_id + "-stream", mode="stream")
        assert res.mode == "stream" and store.get(res.location) == store.get(info.location)

    def test_clone_to_other_backend_streams_verified(self, store: Store, image_id: str) -> None:
        other = imagestore.open_store("memory://", "scratch")
        data = payload(MiB, seed=15)
        info = store.add(image_id, data, len(data))
        check = store.can_clone(info.location, other)
        assert check.mode == "stream"
        with pytest.raises(Unsupported):
            store.clone(info.location, other, mode="cow")
        res = store.clone(info.location, other)
        assert res.mode == "stream" and other.get(res.location) == data
        assert other.stat(res.location).checksums == info.checksums

    # ------------------------------------------------------------ locate
    def test_locate(self, backend: Backend, store: Store, image_id: str) -> None:
        data = payload(MiB, seed=16)
        info = store.add(image_id, data, len(data))
        if not backend.has("direct_access"):
            with pytest.raises(Unsupported):
                store.locate(info.location)
        else:
            self._check_locate(store, image_id, info.location, data)

    @staticmethod
    def _check_locate(store: Store, image_id: str, location: imagestore.Location, data: bytes) -> None:
        access = store.locate(location)
        assert access.kind in ("path", "rbd", "url")
        if access.kind == "path":
            assert access.path is not None
            with open(access.path, "rb") as fh:
                assert fh.read() == data
        if access.kind == "rbd":
            assert access.image == image_id and access.pool and access.fsid and access.snapshot
            assert access.mon_hosts
        if access.kind == "url":
            assert access.url is not None and access.expires_at is not None
            with urllib.request.urlopen(access.url, timeout=30) as resp:  # noqa: S310 - a test server
                assert resp.read() == data

    # ------------------------------------------------------------ format policy
    def test_unsafe_image_rejected_leaves_nothing(self, backend: Backend, store: Store, image_id: str,
                                                  qcow2_with_backing: bytes) -> None:
        with pytest.raises(UnsafeImage) as err:
            store.add(image_id, qcow2_with_backing, len(qcow2_with_backing))
        assert err.value.reasons
        with pytest.raises(NotFound):
            store.stat(image_id)
        assert backend.leftovers() == []

    def test_allowed_formats_and_declared_format(self, backend: Backend, image_id: str,
                                                 qcow2_plain: bytes) -> None:
        only_raw = backend.make(allowed_formats=["raw"])
        with pytest.raises(UnsafeImage):
            only_raw.add(image_id, qcow2_plain, len(qcow2_plain))
        store = backend.make()
        with pytest.raises(UnsafeImage):
            store.add(image_id, qcow2_plain, len(qcow2_plain), format="raw")
        info = store.add(image_id, qcow2_plain, len(qcow2_plain), format="qcow2")
        assert info.format == "qcow2" and info.virtual_size == 64 * MiB
        assert store.stat(info.location).format == "qcow2"
        assert backend.leftovers() == []

    def test_clone_honours_target_format_policy(self, backend: Backend, store: Store, image_id: str,
                                                qcow2_plain: bytes) -> None:
        """A clone never brings a format into a store that does not allow it, in any mode."""
        info = store.add(image_id, qcow2_plain, len(qcow2_plain))
        raw_only = backend.make("sibling", sibling=True, allowed_formats=["raw"])
        for mode in ("auto", "stream"):
            with pytest.raises(UnsafeImage):
                store.clone(info.location, raw_only, name=f"{image_id}-{mode}", mode=mode)  # type: ignore[arg-type]
            with pytest.raises(NotFound):
                raw_only.stat(f"{image_id}-{mode}")
        assert backend.leftovers() == []
        if backend.native_clone_mode == "cow":
            no_cow = backend.make("sibling", sibling=True, cow_requires_raw=True)
            with pytest.raises(UnsafeImage):
                store.clone(info.location, no_cow, name=image_id + "-cow", mode="cow")
            assert store.clone(info.location, no_cow, name=image_id + "-s", mode="stream").mode == "stream"

    # ------------------------------------------------------------ secrets
    def test_no_credentials_in_logs_or_reprs(self, backend: Backend, store: Store, image_id: str,
                                             caplog: Any) -> None:
        secret_options = sorted(k for k, o in store._driver.OPTIONS.items() if o.secret)
        secrets = backend.secrets()
        if secret_options:
            assert secrets, f"the backend authenticates with {secret_options}: the test must know their values"
        caplog.set_level(logging.DEBUG, logger="imagestore")
        info = store.add(image_id, b"abc", 3)
        store.stat(info.location)
        with pytest.raises(ImageStoreError) as err:
            store.add(image_id, b"abc", 3)
        with pytest.raises(NotFound) as missing:
            store.stat(image_id + "-missing")
        texts = [repr(store), repr(store._driver), repr(info), str(info.location), repr(store.capabilities),
                 caplog.text, str(err.value), str(missing.value), repr(store.describe()),
                 repr(store.locate(info.location)) if store.capabilities.direct_access else ""]
        for secret in secrets:
            assert len(secret) >= 8, "a secret this short proves nothing"
            for text in texts:
                assert secret not in text, text
        parts = urlsplit(str(info.location))
        assert parts.username is None and parts.password is None

    # ------------------------------------------------------------ capabilities
    def test_native_clone_claims_match_the_mode_used(self, backend: Backend, store: Store) -> None:
        caps = store.capabilities
        assert caps.cow_clone is (backend.native_clone_mode == "cow")
        if backend.native_clone_mode == "server_copy":
            assert caps.server_copy

    def test_capabilities_are_the_declared_ones(self, backend: Backend, store: Store) -> None:
        """The probe gives exactly what the backend declares, field by field: a store that starts
        claiming less (or more) fails here, not silently in the tests its claims select."""
        names = [f.name for f in fields(imagestore.Capabilities)]
        assert sorted(backend.capabilities) == sorted(names), "the backend must declare every capability"
        for name in names:
            want, got = backend.capabilities[name], getattr(store.capabilities, name)
            if want == SERVER_LIMIT:
                assert isinstance(got, int) and got > 0, (name, got)
            else:
                assert got == want, f"{name}: probed {got!r}, declared {want!r}"

    def test_presign(self, backend: Backend, store: Store, image_id: str) -> None:
        data = payload(MiB + 11, seed=17)
        info = store.add(image_id, data, len(data))
        if not backend.has("presign"):
            with pytest.raises(Unsupported):
                store.locate(info.location, ttl=60)
        else:
            self._check_presign(store, info.location, data)

    @staticmethod
    def _check_presign(store: Store, location: imagestore.Location, data: bytes) -> None:
        assert store.capabilities.direct_access
        before = datetime.now(UTC)
        access = store.locate(location, ttl=120)
        after = datetime.now(UTC)
        assert access.kind == "url" and access.url and access.expires_at is not None
        assert_expires(access, before, after, 120)
        assert "hidden" in repr(access) and access.url not in repr(access)
        with urllib.request.urlopen(access.url, timeout=30) as resp:  # noqa: S310 - a test server
            assert resp.read() == data
        ranged = urllib.request.Request(access.url, headers={"Range": "bytes=1000-1999"})
        with urllib.request.urlopen(ranged, timeout=30) as resp:  # noqa: S310
            assert resp.status == 206 and resp.read() == data[1000:2000]

    def test_delete_the_source_of_a_clone(self, backend: Backend, store: Store, image_id: str) -> None:
        """Deleting a cloned image never breaks the clone: refused, deferred or independent."""
        sibling = backend.make("sibling", sibling=True)
        data = payload(3 * MiB, seed=18)
        info = store.add(image_id, data, len(data))
        clone = store.clone(info.location, sibling, name=image_id + "-child")
        depends = clone.mode == "cow" and backend.clones_depend_on_source
        if depends and store.capabilities.deferred_delete:
            assert store.delete(info.location) is DeleteOutcome.DEFERRED
            with pytest.raises(NotFound):
                store.stat(info.location)
        elif depends:
            with pytest.raises(InUse):
                store.delete(info.location)
            assert store.get(info.location) == data
        else:
            assert store.delete(info.location) is DeleteOutcome.DELETED
        assert sibling.get(clone.location) == data  # verified against the carried checksum
        assert sibling.delete(clone.location) is DeleteOutcome.DELETED
        if depends and not store.capabilities.deferred_delete:
            assert store.delete(info.location) is DeleteOutcome.DELETED
        with pytest.raises(NotFound):
            store.stat(info.location)
        store.add(image_id, b"the id is free again", 20)

    def test_backend_object_limit_is_enforced(self, backend: Backend, store: Store, image_id: str) -> None:
        limit = store.capabilities.max_object_size
        if backend.capabilities["max_object_size"] is None:
            assert limit is None
            assert store.limit().size == store.settings.max_image_size
        else:
            assert limit is not None
            with pytest.raises(ImageTooLarge):
                store.add(image_id, b"", limit + 1)  # declared: refused before any byte
            assert store.limit().size == limit
        with pytest.raises(NotFound):
            store.stat(image_id)

    def test_payload_larger_than_one_backend_object(self, store: Store, image_id: str) -> None:
        """20 MiB + 1 byte spans several RBD objects, S3 parts or Swift segments."""
        data = payload(20 * MiB + 1, seed=19)
        info = store.add(image_id, chunks(data, 3 * MiB + 7))
        assert info.size == len(data) and info.checksums["sha512"] == hashlib.sha512(data).hexdigest()
        assert store.get(info.location) == data
        if store.capabilities.range_read:
            for offset, length in ((8 * MiB - 3, 6), (16 * MiB - 1, 2), (20 * MiB, 1), (4 * MiB, 9 * MiB)):
                assert store.get(info.location, offset, length) == data[offset:offset + length]

    # ------------------------------------------------------------ backend faults
    @pytest.mark.parametrize("fault", sorted(FAULTS))
    @pytest.mark.parametrize("point", POINTS)
    def test_backend_faults_are_clear_errors(self, backend: Backend, image_id: str, point: str,
                                             fault: str) -> None:
        """A fault at any driver call ends in one ImageStoreError of the right class; nothing is lost
        and nothing half-written remains."""
        store = backend.make(retries=1, retry_backoff=0)
        sibling = backend.make("sibling", sibling=True, retries=1, retry_backoff=0)
        data = payload(2 * MiB, seed=20)
        existing = store.add(image_id, data, len(data))
        injector = inject(store, point, FAULTS[fault])

        def attempt() -> object:
            if point in ("open_writer", "write", "commit"):
                return store.add(image_id + "-new", chunks(payload(3 * MiB, seed=21), MiB))
            if point in ("open_reader", "read", "stat"):
                return store.get(existing.location)
            if point == "delete":
                return store.delete(existing.location)
            if point == "locate":
                return store.locate(existing.location)
            if point == "plan_clone":
                return store.can_clone(existing.location, sibling)
            if point == "clone":
                return store.clone(existing.location, sibling, name=image_id + "-clone")
            return store.sweep(0)

        if point == "locate" and not backend.has("direct_access"):
            with pytest.raises(Unsupported):
                attempt()
            assert injector.fired == 0
        elif point == "clone" and backend.native_clone_mode is None:
            assert attempt().mode == "stream"  # type: ignore[attr-defined]
            assert injector.fired == 0
        else:
            self._check_fault(backend, store, sibling, image_id, point, fault, injector, attempt, existing, data)

    def _check_fault(self, backend: Backend, store: Store, sibling: Store, image_id: str, point: str, fault: str,
                     injector: Any, attempt: Any, existing: imagestore.ImageInfo, data: bytes) -> None:
        expected: type[ImageStoreError] = {"transient": BackendUnavailable, "eio": BackendError,
                                           "enospc": NoSpace, "bug": BackendError}[fault]
        with pytest.raises(ImageStoreError) as err:
            attempt()
        assert type(err.value) is expected or isinstance(err.value, expected), repr(err.value)
        assert injector.fired >= 1
        assert store.name in str(err.value)
        if fault == "transient":
            assert injector.fired == 1 + (point not in ("write", "commit", "clone")), \
                "idempotent calls are retried (retries=1), streaming writes and clones are not"
        # nothing lost, nothing half-written
        injector.budget = 0
        assert store.get(existing.location) == data
        for name in (image_id + "-new", image_id + "-clone"):
            with pytest.raises(NotFound):
                store.stat(name)
            with pytest.raises(NotFound):
                sibling.stat(name)
        assert backend.leftovers() == []

    def test_read_resumes_after_a_broken_transfer(self, store: Store, image_id: str) -> None:
        data = payload(9 * MiB + 5, seed=22)
        info = store.add(image_id, data, len(data))
        injector = inject(store, "read", FAULTS["transient"], times=2)
        with store.open(info.location) as reader:  # verified
            assert b"".join(reader) == data
            assert reader.resumes == 2
        assert injector.fired == 2
        if store.capabilities.range_read:
            injector.budget, injector.fired = 1, 0
            assert store.get(info.location, 3 * MiB, 4 * MiB) == data[3 * MiB:7 * MiB]
            assert injector.fired == 1


class ReadOnlySuite:
    """Behaviour of a store that claims ``write=False``: everything that writes is refused
    with Unsupported, and reads work. Subclasses provide ``stores``: a writable store and a
    read-only view of the same images."""

    @pytest.fixture
    def stores(self) -> tuple[Store, Store]:  # pragma: no cover - overridden
        raise NotImplementedError

    def test_read_only_view(self, stores: tuple[Store, Store]) -> None:
        writable, view = stores
        assert writable.capabilities.write and not view.capabilities.write
        data = payload(2 * MiB, seed=30)
        info = writable.add("ro-image", data, len(data))
        loc = view.location("ro-image")
        assert view.get(loc) == data and view.stat(loc).checksums == info.checksums
        with pytest.raises(Unsupported):
            view.add("ro-new", b"data", 4)
        with pytest.raises(Unsupported):
            view.delete(loc)
        with pytest.raises(Unsupported):
            writable.clone(info.location, view, name="ro-clone")
        check = writable.can_clone(info.location, view)
        assert not check.possible and "read-only" in check.reason
        copy = view.clone(loc, writable, name="from-ro")  # a read-only store is a fine source
        assert writable.get(copy.location) == data
        assert writable.get(info.location) == data

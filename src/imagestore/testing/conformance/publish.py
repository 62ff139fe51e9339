"""Publication: an add is invisible until committed, never overwrites, and a failed, aborted or killed add leaves nothing behind."""

from __future__ import annotations

import io
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest

import imagestore
from imagestore import AlreadyExists, ImageTooLarge, NotFound, SizeMismatch, Store

from ..backends.base import Backend
from ..payloads import chunks, payload
from ..processes import race_adds
from .base import MiB, SuiteBase


class PublishTests(SuiteBase):
    """What an add publishes, and what a failed one leaves (nothing)."""

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

        def slow(data: bytes) -> Iterator[bytes]:
            barrier.wait()  # every writer is open before anyone finishes
            yield from chunks(data, 256 * 1024)

        results = race_adds(lambda src: store.add(image_id, src), [slow(d) for d in datas], timeout=60)
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
            code = backend.source("main") + (f"try: store.stat({image_id!r})\n"
                                             "except imagestore.NotFound: raise SystemExit(3)\n")
            assert subprocess.run([sys.executable, "-c", code]).returncode == 3
            assert store.get(info.location) == b"in this process"
        else:
            self._kill_writer_mid_upload(backend, image_id, tmp_path)
            store = backend.make()
            with pytest.raises(NotFound):
                store.stat(image_id)
            info = store.add(image_id, b"after the kill", 14)
            assert store.get(info.location) == b"after the kill"

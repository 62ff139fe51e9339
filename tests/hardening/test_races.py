"""Races placed exactly: another client's delete or add runs at a chosen driver call (the
chaos layer's Call action), on every backend. The loser gets a clear error, the winner's
image is intact, nothing is left behind and no read returns wrong bytes."""

from __future__ import annotations

import pytest

from imagestore import AlreadyExists, ImageStoreError, NotFound
from imagestore.testing.backends import Backend
from imagestore.testing.chaos import Call, Chaos, Fault
from imagestore.testing.payloads import chunks, payload

SETTINGS = {"auto_sweep": False, "retries": 1, "retry_backoff": 0}
SIZE = (3 << 20) + 99


def temporaries(backend: Backend, prefix: str) -> list[str]:
    return [str(o) for o in backend.objects(prefix) if o.kind != "image"]


def test_clone_of_a_source_deleted_meanwhile_is_not_found(backend: Backend, prefix: str) -> None:
    """The source goes between the facade's clone planning and the driver's clone: the caller
    must learn that the image is gone (NotFound), not that cloning is unsupported."""
    images, vms = backend.open("images", **SETTINGS), backend.open("vms", **SETTINGS)
    try:
        data = payload(SIZE, 1)
        src = images.add(f"{prefix}-src", data, len(data))
        chaos = Chaos([Fault("clone", Call(lambda: images.delete(src.location)))])
        with chaos.attached(images), pytest.raises(NotFound):
            images.clone(src.location, vms, name=f"{prefix}-new")
        assert chaos.fired["clone"] == 1
        with pytest.raises(NotFound):
            vms.stat(f"{prefix}-new")
        assert temporaries(backend, prefix) == []
    finally:
        images.close()
        vms.close()


def test_read_of_an_image_deleted_mid_stream_never_returns_wrong_bytes(backend: Backend, prefix: str) -> None:
    images = backend.open("images", **SETTINGS, chunk_size="64K")
    try:
        data = payload(SIZE, 2)
        info = images.add(f"{prefix}-img", data, len(data))
        chaos = Chaos([Fault("read", Call(lambda: images.delete(info.location)), after_bytes=1 << 20, times=1)])
        with chaos.attached(images):
            try:
                got = images.get(info.location)
            except ImageStoreError:
                pass  # the deletion won: a clear error
            else:
                assert got == data  # the reader kept the bytes it had opened
        assert chaos.fired["read"] == 1
        with pytest.raises(NotFound):
            images.stat(info.location)
    finally:
        images.close()


def test_adds_racing_at_commit_publish_exactly_one(backend: Backend, prefix: str) -> None:
    """Another client adds the same id while ours commits: exactly one wins (which one is the
    backend's rule: first to publish, or the holder of a create claim), the loser gets
    AlreadyExists, the image holds the winner's bytes and nothing else is left."""
    images = backend.open("images", **SETTINGS)
    try:
        name = f"{prefix}-raced"
        ours, theirs = payload(SIZE, 3), payload(SIZE, 4)
        other: list[str] = []

        def other_client() -> None:
            store = backend.open("images", **SETTINGS)
            try:
                store.add(name, theirs, len(theirs))
                other.append("won")
            except AlreadyExists:
                other.append("lost")
            finally:
                store.close()

        chaos = Chaos([Fault("commit", Call(other_client))])
        try:
            with chaos.attached(images):
                images.add(name, chunks(ours, 1 << 20), len(ours))
            mine = "won"
        except AlreadyExists:
            mine = "lost"
        assert sorted([mine, *other]) == ["lost", "won"], (mine, other)
        assert images.get(name) == (ours if mine == "won" else theirs)
        assert temporaries(backend, prefix) == []
    finally:
        images.close()


def test_concurrent_deletes_of_one_image_are_deleted_or_not_found(backend: Backend, prefix: str) -> None:
    """Eight clients delete the same image at once, ten times: each gets DELETED or NotFound
    (object stores' deletes are idempotent, so several may say DELETED), never an error."""
    import threading

    images = backend.open("images", **SETTINGS)
    try:
        outcomes: list[str] = []
        for round_ in range(10):
            name = f"{prefix}-d{round_}"
            images.add(name, b"z" * 65536, 65536)
            barrier = threading.Barrier(8)

            def delete(name: str = name, barrier: threading.Barrier = barrier) -> None:
                barrier.wait()
                try:
                    outcomes.append(images.delete(name).value)
                except NotFound:
                    outcomes.append("not_found")
                except ImageStoreError as exc:
                    outcomes.append(f"{type(exc).__name__}: {exc}")

            threads = [threading.Thread(target=delete) for _ in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(120)
        assert set(outcomes) <= {"deleted", "not_found"} and len(outcomes) == 80, outcomes
        assert outcomes.count("deleted") >= 10
        assert temporaries(backend, prefix) == []
    finally:
        images.close()

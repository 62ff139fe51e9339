"""Bad arguments to Store, Stores and ImageCache methods are InvalidArgument: an ImageStoreError that
names store and image (the README's promise) and a ValueError (what callers caught before)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import imagestore
from imagestore import ImageStoreError, InvalidArgument, errors


@pytest.fixture
def store() -> imagestore.Store:
    s = imagestore.open_store(f"memory://args-{uuid.uuid4().hex[:8]}", "mem")
    s.add("img", b"x" * 1000, 1000)
    return s


def test_invalid_argument_is_exported_and_both_kinds() -> None:
    assert imagestore.InvalidArgument is errors.InvalidArgument
    assert "InvalidArgument" in imagestore.__all__ and "InvalidArgument" in errors.__all__
    assert issubclass(InvalidArgument, ImageStoreError) and issubclass(InvalidArgument, ValueError)


CASES: dict[str, Callable[[imagestore.Store], Any]] = {
    "add size -1": lambda s: s.add("new", b"", -1),
    "add size 1.5": lambda s: s.add("new", b"", 1.5),
    "add size True": lambda s: s.add("new", b"x", True),
    "add data int": lambda s: s.add("new", 42, 2),
    "add data chunks of str": lambda s: s.add("new", iter(["text"])),
    "add checksums str": lambda s: s.add("new", b"x", 1, checksums="sha256"),
    "add expected unknown algorithm": lambda s: s.add("new", b"x", 1, expected={"crc32": "00000000"}),
    "add expected not hex": lambda s: s.add("new", b"x", 1, expected={"md5": "z" * 32}),
    "add expected not a mapping": lambda s: s.add("new", b"x", 1, expected=["md5"]),
    "open offset -1": lambda s: s.open("img", -1),
    "open length -1": lambda s: s.open("img", 0, -1),
    "open offset str": lambda s: s.open("img", "10"),
    "open expected unknown algorithm": lambda s: s.open("img", expected={"nope": "00"}),
    "open expected bad digest": lambda s: s.open("img", expected={"sha256": 12}),
    "get length -5": lambda s: s.get("img", 0, -5),
    "locate ttl 0": lambda s: s.locate("img", ttl=0),
    "locate ttl nan": lambda s: s.locate("img", ttl=float("nan")),
    "locate ttl str": lambda s: s.locate("img", ttl="60"),
    "can_clone mode": lambda s: s.can_clone("img", mode="fast"),
    "clone mode": lambda s: s.clone("img", name="c", mode="fast"),
    "sweep age -1": lambda s: s.sweep(-1),
    "sweep age str": lambda s: s.sweep("1h"),
    "sweep age nan": lambda s: s.sweep(float("nan")),
    "clone size -1": lambda s: s.clone("img", name="c", size=-1),
    "clone to a name": lambda s: s.clone("img", "other-store", name="c"),
    "can_clone to a dict": lambda s: s.can_clone("img", {"driver": "memory"}),
    "replicate to a name": lambda s: s.replicate("img", "other-store", name="r"),
    "add format int": lambda s: s.add("new", b"x", 1, format=5),
    "add progress not callable": lambda s: s.add("new", b"x", 1, progress=5),
    "open progress not callable": lambda s: s.open("img", progress="bar"),
    "download_to path int": lambda s: s.download_to("img", 42),
    "clone progress not callable": lambda s: s.clone("img", name="c", progress=1),
    "replicate format int": lambda s: s.replicate("img", s, name="r", format=5),
    "replicate expected unknown algorithm": lambda s: s.replicate("img", s, name="r", expected={"x": "00"}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_arguments_are_invalid_argument(store: imagestore.Store, case: str, monkeypatch: Any) -> None:
    # locate/presign need a store that claims them: the argument is checked after the claim
    from dataclasses import replace

    monkeypatch.setattr(store._state, "caps", replace(store.capabilities, direct_access=True, presign=True))
    with pytest.raises(InvalidArgument) as err:
        CASES[case](store)
    assert isinstance(err.value, ValueError)
    assert err.value.store == "mem", case
    if case.split()[0] not in ("sweep",):
        assert err.value.image in ("img", "new"), case
    with pytest.raises(imagestore.NotFound):
        store.stat("new")  # nothing was added


def test_a_failed_open_leaves_no_driver_reader_open(store: imagestore.Store) -> None:
    """expected= with an unknown algorithm used to fail after the driver's reader was opened
    (a connection, and on S3 a read-ahead thread, left behind)."""
    opened: list[Any] = []
    real = store._driver.open_reader

    class Counted:
        def __init__(self, inner: Any) -> None:
            self.inner, self.closed = inner, False
            opened.append(self)

        def read(self, n: int) -> bytes:
            return bytes(self.inner.read(n))

        def close(self) -> None:
            self.closed = True
            self.inner.close()

    store._driver.open_reader = lambda loc, at, n: Counted(real(loc, at, n))  # type: ignore[method-assign]
    for expected in ({"nope": "00"}, {"sha256": "0" * 64, "md4x": "00"}):
        with pytest.raises(InvalidArgument):
            store.open("img", expected=expected)
    assert all(r.closed for r in opened), "a driver reader outlived the refused open"
    with store.open("img") as r:  # the store still reads, through one reader that is closed after
        assert r.read() == b"x" * 1000
    assert opened and all(r.closed for r in opened)


def test_reader_closes_the_driver_reader_when_the_hashers_cannot_start(store: imagestore.Store) -> None:
    """The reader's own guard, below the facade's checks: whatever fails after the driver's reader
    is open closes it."""
    from imagestore.engine.reader import ImageReader

    closed: list[bool] = []

    class Raw:
        def read(self, n: int) -> bytes:
            return b""

        def close(self) -> None:
            closed.append(True)

    with pytest.raises(ValueError):
        ImageReader(lambda at, n: Raw(), offset=0, size=0, chunk_size=10, expected={"no-such-hash": "00"},
                    progress=None, store="mem", image="img")
    assert closed == [True]


def test_stores_unknown_name_is_a_config_error_and_a_key_error() -> None:
    stores = imagestore.Stores({"stores": {"a": {"driver": "memory"}}})
    for bad in ("nope", 3):
        with pytest.raises(imagestore.ConfigError) as err:
            stores[bad]  # type: ignore[index]
        assert isinstance(err.value, KeyError) and "no store named" in str(err.value)
    with pytest.raises(imagestore.ConfigError):
        stores.driver_name("nope")
    assert stores.get("nope") is None and "nope" not in stores  # the Mapping protocol still works


def test_image_cache_bad_arguments(tmp_path: Path, store: imagestore.Store) -> None:
    bad: list[Callable[[], Any]] = [
        lambda: imagestore.ImageCache(tmp_path / "c1", max_bytes=-1),
        lambda: imagestore.ImageCache(tmp_path / "c2", link="sometimes"),  # type: ignore[arg-type]
    ]
    cache = imagestore.ImageCache(tmp_path / "c", store=store)
    bad += [
        lambda: cache.path_of("../etc"),
        lambda: cache.release("../etc", "holder"),
        lambda: cache.lease("img", "bad holder/.."),
        lambda: cache.lease("img", 42),  # type: ignore[arg-type]
        lambda: cache.fetch("img", expected={"nope": "00"}),
        lambda: cache.fetch("img", expected={"sha512": 5}),  # type: ignore[dict-item]
    ]
    for i, call in enumerate(bad):
        with pytest.raises(InvalidArgument):
            call()
    assert cache.entries() == []

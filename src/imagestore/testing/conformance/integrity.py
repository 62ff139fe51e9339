"""Integrity: every add records the image's BLAKE3 digest, and bits changed behind the store's
back (one byte flipped with the backend's own tools) are never handed out as good: a whole read,
a read of exactly ``size`` bytes, ``download_to`` and ``verify_source`` all raise ChecksumMismatch,
and ``scrub`` reports the image."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from imagestore import ChecksumMismatch, InvalidArgument, Scrubbed, Store

from ..backends.base import Backend, flipped
from ..payloads import payload
from .base import MiB, SuiteBase

try:
    from blake3 import blake3
except ImportError as exc:  # pragma: no cover - blake3 is a dependency of imagestore itself
    raise ImportError("imagestore.testing.conformance needs blake3: pip install blake3") from exc


class IntegrityTests(SuiteBase):
    """The BLAKE3 digest is recorded by add and checked by every verified read."""

    def test_add_records_the_blake3_digest(self, store: Store, image_id: str) -> None:
        data = payload(MiB + 3, seed=30)
        info = store.add(image_id, data, len(data))
        assert info.integrity == blake3(data).hexdigest()
        assert store.stat(info.location).integrity == info.integrity
        assert "blake3" not in info.checksums  # the glance-compatible checksums stay as configured

    @pytest.mark.parametrize("where", ["first", "middle", "last"])
    def test_a_flipped_byte_is_found_by_every_verified_read(self, backend: Backend, store: Store, image_id: str,
                                                           tmp_path: Path, where: str) -> None:
        data = payload(backend.image_size, seed=31)  # over one backend object, part or segment
        info = store.add(image_id, data, len(data))
        offset = {"first": 0, "middle": len(data) // 2, "last": len(data) - 1}[where]
        backend.corrupt(info.location, offset)
        assert store.get(info.location, verify=False) == flipped(data, offset)  # the backend's bits did change

        with pytest.raises(ChecksumMismatch) as err:
            store.get(info.location)
        assert err.value.algorithm == "blake3" and err.value.expected == info.integrity

        received = 0
        with pytest.raises(ChecksumMismatch), store.open(info.location) as reader:
            while received < info.size:  # a consumer that reads exactly size bytes, then stops
                received += len(reader.read(MiB))
        assert received < info.size  # the last bytes never left the reader unverified

        downloads = tmp_path / "downloads"
        downloads.mkdir()
        with pytest.raises(ChecksumMismatch):
            store.download_to(info.location, downloads / "image.img")
        assert os.listdir(downloads) == []  # neither the file nor its temporary

        with pytest.raises(ChecksumMismatch):
            store.verify_source(info.location)

    def test_a_caller_may_expect_the_blake3_digest(self, store: Store, image_id: str) -> None:
        data = payload(MiB, seed=32)
        with pytest.raises(ChecksumMismatch) as err:
            store.add(image_id, data, len(data), expected={"blake3": blake3(b"other").hexdigest()})
        assert err.value.algorithm == "blake3"
        info = store.add(image_id, data, len(data), expected={"blake3": blake3(data).hexdigest()})
        with store.open(info.location, expected={"blake3": info.integrity}) as reader:
            assert reader.read() == data


class ScrubTests(SuiteBase):
    """``scrub`` lists the store's images, reads each against its digest and reports (never
    deletes) the corrupt ones, in id order so that a later scrub goes on where one stopped."""

    def test_scrub_reports_the_corrupt_image_and_keeps_it(self, backend: Backend, store: Store,
                                                           image_id: str) -> None:
        ids = [f"{image_id}-{n}" for n in "abc"]
        infos = {i: store.add(i, payload(MiB + 11, seed=40 + k), MiB + 11) for k, i in enumerate(ids)}
        backend.corrupt(infos[ids[1]].location, MiB)
        seen: list[Scrubbed] = []
        report = store.scrub(prefix=image_id, on_image=seen.append)
        assert [(s.image, s.status, s.algorithm) for s in seen] == [
            (ids[0], "ok", "blake3"), (ids[1], "corrupt", "blake3"), (ids[2], "ok", "blake3")]
        assert report.corrupt == (ids[1],) and report.checked == 3 and report.last == ids[2]
        assert report.bytes_read == 3 * (MiB + 11)
        assert store.stat(ids[1]).size == MiB + 11  # reported, not deleted
        again = store.scrub(prefix=image_id, start_after=ids[1])
        assert (again.checked, again.corrupt, again.last) == (1, (), ids[2])

    def test_the_listing_scrub_walks_holds_no_temporary(self, store: Store, image_id: str) -> None:
        """An add in progress (its writer open, nothing published) is not an image to scrub,
        under any name the driver gives its temporaries."""
        writer = store._driver.open_writer(f"{image_id}-open", None)
        try:
            writer.write(memoryview(payload(MiB, seed=41)))
            info = store.add(f"{image_id}-done", payload(1000, seed=42), 1000)
            names = list(store._driver.list_images())
            assert info.location.image in names
            assert [n for n in names if f"{image_id}-open" in n] == []
        finally:
            writer.abort()

    @pytest.mark.parametrize("bad", [{"rate": 0}, {"rate": -1.0}, {"rate": "fast"}, {"rate": True},
                                     {"start_after": 3}, {"prefix": None}])
    def test_scrub_refuses_bad_arguments_before_reading(self, store: Store, bad: dict[str, object]) -> None:
        with pytest.raises(InvalidArgument) as err:
            store.scrub(**bad)  # type: ignore[arg-type]
        assert next(iter(bad)) in str(err.value)

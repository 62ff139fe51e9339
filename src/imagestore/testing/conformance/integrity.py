"""Integrity: every add records the image's BLAKE3 digest and block table, and bits changed behind
the store's back (one byte flipped with the backend's own tools) are never handed out: a whole
read, a read of exactly ``size`` bytes, a ranged read over the changed block, ``download_to`` and
``verify_source`` all raise ChecksumMismatch before any byte of the changed block leaves, and
``scrub`` reports the image; the other blocks stay readable, verified."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from imagestore import ChecksumMismatch, InvalidArgument, Scrubbed, Store
from imagestore.store.tables import companion

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

        assert info.block_table is not None
        block = int(info.block_table.partition(":")[0])
        with pytest.raises(ChecksumMismatch) as err:
            store.get(info.location)
        assert err.value.algorithm == "blake3" and f"block {offset // block} " in str(err.value)

        received = b""
        with pytest.raises(ChecksumMismatch), store.open(info.location) as reader:
            while len(received) < info.size:  # a consumer that reads exactly size bytes, then stops
                received += reader.read(MiB)
        assert received == data[:offset // block * block]  # every block before the changed one, none of it

        downloads = tmp_path / "downloads"
        downloads.mkdir()
        with pytest.raises(ChecksumMismatch):
            store.download_to(info.location, downloads / "image.img")
        assert os.listdir(downloads) == []  # neither the file nor its temporary

        with pytest.raises(ChecksumMismatch):
            store.verify_source(info.location)

    @pytest.mark.parametrize("where", ["first", "middle", "last"])
    def test_a_ranged_read_verifies_every_block_it_touches(self, backend: Backend, store: Store, image_id: str,
                                                           where: str) -> None:
        data = payload(backend.image_size, seed=33)
        info = store.add(image_id, data, len(data))
        assert info.block_table is not None and store.stat(info.location).block_table == info.block_table
        block = int(info.block_table.partition(":")[0])
        blocks = -(-len(data) // block)
        assert blocks >= 3
        offset = {"first": 0, "middle": len(data) // 2, "last": len(data) - 1}[where]
        bad = offset // block
        backend.corrupt(info.location, offset)
        assert store.get(info.location, offset, 1, verify=False) == flipped(data, offset)[offset:offset + 1]

        with pytest.raises(ChecksumMismatch) as err:  # a range over the flipped byte
            store.get(info.location, max(0, offset - 100), 200)
        assert f"block {bad} (bytes {bad * block}-" in str(err.value) and err.value.algorithm == "blake3"
        neighbour = bad * block + (1 if offset == bad * block else 0)
        with pytest.raises(ChecksumMismatch):  # a range of the same block that misses the flipped byte
            store.get(info.location, neighbour, 1)

        start = max(0, bad - 1) * block  # from the block before (if any): its bytes come out, none of the bad one's
        received = 0
        with pytest.raises(ChecksumMismatch), store.open(info.location, start, (bad + 1) * block - start) as reader:
            while True:
                chunk = reader.read(64 * 1024)
                assert chunk, "the reader ended without raising"
                assert chunk == data[start + received:start + received + len(chunk)]
                received += len(chunk)
        assert received == bad * block - start

        for good in {(bad + 1) % blocks, (bad - 1) % blocks}:  # the other blocks stay readable, verified
            lo = good * block + 5
            assert store.get(info.location, lo, 1000) == data[lo:lo + 1000]
        if bad + 2 < blocks:  # a range across the boundary of two good blocks
            edge = (bad + 2) * block
            assert store.get(info.location, edge - 10, 20) == data[edge - 10:edge + 10]

    def test_a_range_of_a_one_block_image_is_verified_by_its_digest(self, backend: Backend, store: Store,
                                                                     image_id: str) -> None:
        data = payload(1000, seed=34)
        info = store.add(image_id, data, len(data))
        assert info.block_table is None  # one block: its table would be its digest
        assert store.get(info.location, 10, 20) == data[10:30]
        backend.corrupt(info.location, 500)
        with pytest.raises(ChecksumMismatch):
            store.get(info.location, 10, 20)
        assert store.get(info.location, 10, 20, verify=False) == data[10:30]

    def test_the_block_table_lives_and_dies_with_its_image(self, store: Store, image_id: str) -> None:
        data = payload(3 * MiB + 5, seed=35)
        info = store.add(image_id, data, len(data))
        assert info.block_table is not None
        table = companion(image_id, info.block_table)
        assert table in store._driver.list_images()  # beside the image, through the driver's writer
        with pytest.raises(InvalidArgument):  # the tables' names are not image ids
            store.add(table, b"x", 1)
        assert store.get(info.location, 2 * MiB - 7, 14) == data[2 * MiB - 7:2 * MiB + 7]
        clone = store.clone(info.location, name=f"{image_id}-c")
        assert store.stat(clone.location).block_table == info.block_table
        copied = companion(f"{image_id}-c", info.block_table)
        assert copied in store._driver.list_images()  # the clone has a table of its own
        assert store.scrub(prefix="imagestore-blocks-").checked == 0  # scrub checks images, not their tables
        assert (store.scrub(prefix=image_id).checked, store.scrub(prefix=image_id).corrupt) == (2, ())
        assert store.get(clone.location, MiB - 3, 9) == data[MiB - 3:MiB + 6]
        store.delete(clone.location)
        names = list(store._driver.list_images())
        assert copied not in names and table in names
        assert store.get(info.location, MiB - 3, 9) == data[MiB - 3:MiB + 6]
        store.delete(info.location)
        assert [n for n in store._driver.list_images() if image_id in n] == []

    def test_a_caller_may_expect_the_blake3_digest(self, store: Store, image_id: str) -> None:
        data = payload(MiB, seed=32)
        with pytest.raises(ChecksumMismatch) as err:
            store.add(image_id, data, len(data), expected={"blake3": blake3(b"other").hexdigest()})
        assert err.value.algorithm == "blake3"
        info = store.add(image_id, data, len(data), expected={"blake3": blake3(data).hexdigest()})
        assert info.integrity is not None
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

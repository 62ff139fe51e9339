"""Backfill and scrub's age filter: an image stored without its BLAKE3 digest and block table (as
an earlier version wrote it: through the driver, with its glance-compatible checksums only) is
verified against its strongest checksum by ``scrub``, which then records the digest and table, so
its ranges read verified from then on; a corrupt one is reported and gets nothing; a missing table
object is written again; ``older_than`` passes over images written since."""

from __future__ import annotations

import hashlib
import time

import pytest

from imagestore import BackendError, ChecksumMismatch, InvalidArgument, Scrubbed, Store, Unsupported
from imagestore.results import encode_metadata
from imagestore.store.tables import companion

from ..backends.base import Backend
from ..payloads import payload
from .base import MiB, SuiteBase

try:
    from blake3 import blake3
except ImportError as exc:  # pragma: no cover - blake3 is a dependency of imagestore itself
    raise ImportError("imagestore.testing.conformance needs blake3: pip install blake3") from exc


def store_without_digest(store: Store, image_id: str, data: bytes) -> None:
    """Write ``data`` through the driver with the metadata of an image stored before digests and
    block tables: md5 and sha512, the format, nothing else."""
    checksums = {"md5": hashlib.md5(data).hexdigest(), "sha512": hashlib.sha512(data).hexdigest()}
    writer = store._driver.open_writer(image_id, len(data))
    try:
        for at in range(0, len(data), MiB):
            writer.write(memoryview(data[at:at + MiB]))
        writer.commit(encode_metadata(checksums, "raw", None))
    except BaseException:
        writer.abort()
        raise


def names_with(store: Store, image_id: str) -> list[str]:
    """What the store's listing holds of ``image_id``: the image and its table object."""
    return sorted(n for n in store._driver.list_images() if image_id in n)


class BackfillTests(SuiteBase):
    """``scrub`` records what an image lacks, from its verified bytes; ``older_than`` filters by age."""

    def test_scrub_records_the_digest_and_table_an_image_lacks(self, backend: Backend, store: Store,
                                                                image_id: str) -> None:
        data = payload(backend.image_size, seed=60)
        store_without_digest(store, image_id, data)
        before = store.stat(image_id)
        assert (before.integrity, before.block_table) == (None, None)
        with pytest.raises(Unsupported):  # no table: a range cannot be verified
            store.get(image_id, MiB, 10, verify=True)
        seen: list[Scrubbed] = []
        report = store.scrub(prefix=image_id, on_image=seen.append)
        if backend.has("metadata_update"):
            assert [(s.status, s.algorithm, s.backfilled) for s in seen] == [
                ("ok", "sha512", ("digest", "block table"))]
            assert report.backfilled == (image_id,) and report.checked == 1
            after = store.stat(image_id)
            assert after.integrity == blake3(data).hexdigest() and after.block_table is not None
            assert after.checksums == before.checksums and after.format == "raw" and after.size == len(data)
            assert names_with(store, image_id) == sorted([image_id, companion(image_id, after.block_table)])
            fresh = backend.open()  # another process: the table comes from the backend
            try:
                assert fresh.get(image_id, MiB - 5, 10) == data[MiB - 5:MiB + 5]
                backend.corrupt(after.location, 2 * MiB + 1)
                with pytest.raises(ChecksumMismatch) as err:  # a range over the changed block: verified now
                    fresh.get(image_id, 2 * MiB, 100)
                assert err.value.algorithm == "blake3"
                assert fresh.get(image_id, MiB - 5, 10) == data[MiB - 5:MiB + 5]
            finally:
                fresh.close()
            again = store.scrub(prefix=image_id)
            assert (again.corrupt, again.backfilled) == ((image_id,), ())
        else:  # a store that cannot change metadata reads, verifies and says why it recorded nothing
            assert [(s.status, s.algorithm, s.backfilled) for s in seen] == [("ok", "sha512", ())]
            assert seen[0].detail is not None and "cannot change an image's metadata" in seen[0].detail
            assert store.stat(image_id) == before and report.backfilled == ()
        store.delete(image_id)
        assert names_with(store, image_id) == []  # the table went with the image

    def test_a_corrupt_image_gets_no_digest(self, backend: Backend, store: Store, image_id: str) -> None:
        data = payload(backend.image_size, seed=61)
        store_without_digest(store, image_id, data)
        backend.corrupt(store.stat(image_id).location, len(data) - 1)
        seen: list[Scrubbed] = []
        report = store.scrub(prefix=image_id, on_image=seen.append)
        assert [(s.status, s.algorithm, s.backfilled) for s in seen] == [("corrupt", "sha512", ())]
        assert report.corrupt == (image_id,) and report.backfilled == ()
        assert store.stat(image_id).integrity is None
        assert names_with(store, image_id) == [image_id]  # no table was written

    def test_a_read_only_scrub_records_nothing(self, backend: Backend, store: Store, image_id: str) -> None:
        data = payload(MiB // 2, seed=62)
        store_without_digest(store, image_id, data)
        seen: list[Scrubbed] = []
        store.scrub(prefix=image_id, backfill=False, on_image=seen.append)
        assert [(s.status, s.algorithm, s.backfilled) for s in seen] == [("ok", "sha512", ())]
        assert seen[0].detail == "lacks its digest, not recorded: backfill is off"
        assert store.stat(image_id).integrity is None
        report = store.scrub(prefix=image_id)  # one block: a digest, no table
        assert report.backfilled == ((image_id,) if backend.has("metadata_update") else ())
        assert (store.stat(image_id).integrity == blake3(data).hexdigest()) is backend.has("metadata_update")
        assert names_with(store, image_id) == [image_id]

    def test_a_missing_table_object_is_written_again(self, backend: Backend, store: Store, image_id: str) -> None:
        data = payload(3 * MiB + 7, seed=63)
        info = store.add(image_id, data, len(data))
        assert info.block_table is not None
        table = companion(image_id, info.block_table)
        store._driver.delete(store._driver.location_for(table))  # lost behind the store's back
        fresh = backend.open()
        try:
            with pytest.raises(BackendError, match="block table of this image is missing"):
                fresh.get(image_id, 10, 10)
            seen: list[Scrubbed] = []
            fresh.scrub(prefix=image_id, on_image=seen.append)
            assert [(s.status, s.algorithm, s.backfilled) for s in seen] == [("ok", "blake3", ("table object",))]
        finally:
            fresh.close()
        assert names_with(store, image_id) == sorted([image_id, table])
        other = backend.open()
        try:
            assert other.get(image_id, 2 * MiB - 3, 6) == data[2 * MiB - 3:2 * MiB + 3]
            assert other.scrub(prefix=image_id).backfilled == ()
        finally:
            other.close()

    def test_older_than_passes_over_images_written_since(self, store: Store, image_id: str) -> None:
        info = store.add(image_id, payload(1000, seed=64), 1000)
        written = store._driver.stat(info.location).written
        seen: list[Scrubbed] = []
        report = store.scrub(prefix=image_id, older_than=3600, on_image=seen.append)
        if written is not None:
            assert abs(written - time.time()) < 300  # the backend says when, by a clock near ours
            assert (report.checked, report.skipped, report.bytes_read) == (0, 1, 0)
            assert [(s.status, s.detail) for s in seen] == [("skipped", "written within older_than")]
        else:  # a backend that does not say when: every image is old enough
            assert (report.checked, report.skipped, [s.status for s in seen]) == (1, 0, ["ok"])
        report = store.scrub(prefix=image_id, older_than=0)
        assert (report.checked, report.skipped) == (1, 0)

    @pytest.mark.parametrize("bad", [{"older_than": -1}, {"older_than": "1d"}, {"older_than": True},
                                     {"backfill": "yes"}, {"backfill": None}])
    def test_scrub_refuses_a_bad_age_or_backfill(self, store: Store, bad: dict[str, object]) -> None:
        with pytest.raises(InvalidArgument) as err:
            store.scrub(**bad)  # type: ignore[arg-type]
        assert next(iter(bad)) in str(err.value)

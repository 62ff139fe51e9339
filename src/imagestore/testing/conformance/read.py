"""Reading: whole and ranged reads, verification against checksums, atomic downloads, resuming a broken transfer."""

from __future__ import annotations

import hashlib
import os
from typing import Any

import pytest

import imagestore
from imagestore import ChecksumMismatch, Store, Unsupported

from ..backends.base import Backend
from ..payloads import payload
from .base import MiB, SuiteBase
from .faults import FAULTS, inject


class ReadTests(SuiteBase):
    """Reading images back, whole, ranged and verified."""

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
    def test_a_range_is_verified_but_not_against_expected(self, store: Store, image_id: str) -> None:
        data = payload(1000)
        info = store.add(image_id, data, 1000)
        with store.open(info.location, 10, 10, verify=True) as reader:  # by its digest, block by block
            assert reader.read() == data[10:20]
        with pytest.raises(Unsupported):  # a caller's checksum is of the whole image
            store.open(info.location, 10, 10, expected={"md5": info.checksums["md5"]})
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
            imagestore.engine.reader.write_atomically(reader, bad)
        assert not bad.exists()
        assert os.listdir(tmp_path) == ["out.img"]
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

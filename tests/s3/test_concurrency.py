"""Of concurrent adds of one id exactly one wins, on both servers, for both commit paths:
an inline image (one conditional PutObject) and a multipart upload published by its record
(radosgw 16.2 ignores If-None-Match on CompleteMultipartUpload; the record's PutObject is
what is conditional). Many rounds, the writers released together right before they commit."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import imagestore
from imagestore import AlreadyExists
from imagestore.testing.processes import race_adds
from tests.services.faultproxy import FaultProxyFactory
from tests.services.s3 import S3Server

from .conftest import MiB, Opener, leftovers, payload, s3_spec

ROUNDS = 8


def race(store: imagestore.Store, image: str, datas: list[bytes]) -> list[object]:
    """Add ``image`` from one thread per data, all committing at once; each one's outcome."""
    barrier = threading.Barrier(len(datas))

    def source(data: bytes) -> Iterator[bytes]:
        yield data[: len(data) // 2]
        yield data[len(data) // 2:]
        barrier.wait(60)  # every writer has sent everything: now they all commit at once

    return race_adds(lambda src: store.add(image, src), [source(d) for d in datas])


@pytest.mark.parametrize("size", [256 * 1024, 6 * MiB + 1], ids=["inline", "record"])
def test_four_concurrent_adds_one_winner(open_s3: Opener, s3_server: S3Server, s3_bucket: str, size: int) -> None:
    store = open_s3(part_size="5M")
    for r in range(ROUNDS):
        datas = [payload(size, seed=100 * r + i) for i in range(4)]
        results = race(store, f"race-{r}", datas)
        winners = [i for i, res in enumerate(results) if isinstance(res, imagestore.ImageInfo)]
        assert len(winners) == 1, (r, results)
        assert sum(isinstance(res, AlreadyExists) for res in results) == 3, (r, results)
        assert store.get(f"race-{r}") == datas[winners[0]]
    assert leftovers(s3_server.client(), s3_bucket) == []


def test_four_processes_add_one_id(s3_server: S3Server, s3_bucket: str, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Four writer processes (no shared lock of any kind), released together by a file."""
    monkeypatch.setenv("IMAGESTORE_TEST_S3_ACCESS", s3_server.access_key)
    monkeypatch.setenv("IMAGESTORE_TEST_S3_SECRET", s3_server.secret_key)
    spec = s3_spec(s3_server, s3_bucket, part_size="5M")
    go = tmp_path / "go"
    outs = _racers(spec, go, 4, image="proc-race")
    assert sorted(outs) == ["lost", "lost", "lost", "won"], outs
    store = imagestore.open_store(spec, "check")
    try:
        assert store.get("proc-race") == bytes([outs.index("won")]) * (6 << 20)
    finally:
        store.close()
    assert leftovers(s3_server.client(), s3_bucket) == []


def _racers(spec: dict[str, Any], go: Path, n: int, image: str = "ignored") -> list[str]:
    """Run ``n`` processes (no shared lock of any kind) that open the store, stream a 6 MiB image
    of byte ``i`` and commit it as ``image`` together, once ``go`` exists (3 s after they start,
    when each has sent its bytes); what each printed: won, lost or refused: ERROR."""
    code = textwrap.dedent(f"""
        import pathlib, sys, time, imagestore
        n = int(sys.argv[1])
        try:
            store = imagestore.open_store({spec!r}, "main")
        except imagestore.ImageStoreError as exc:
            print("refused:", type(exc).__name__, exc)
            sys.exit(0)
        data = bytes([n]) * (6 << 20)
        def source():
            yield data
            while not pathlib.Path({str(go)!r}).exists():
                time.sleep(0.005)
        try:
            store.add({image!r}, source())
            print("won")
        except imagestore.AlreadyExists:
            print("lost")
    """)
    procs = [subprocess.Popen([sys.executable, "-c", code, str(i)], stdout=subprocess.PIPE, text=True)
             for i in range(n)]
    try:
        time.sleep(3)
        go.write_text("1")
        return [p.communicate(timeout=120)[0].strip() for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()


def test_an_endpoint_that_ignores_conditional_puts(moto_server: S3Server, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   fault_proxy: FaultProxyFactory) -> None:
    """Behind a proxy that drops If-None-Match (moto checks no signature, so the request still
    passes), two processes must not both win an id: a store of such an endpoint does not open
    unless ``atomic_create = "no"`` says to, and then it says it has no atomic create."""
    from tests.services.s3 import temporary_bucket

    monkeypatch.setenv("IMAGESTORE_TEST_S3_ACCESS", moto_server.access_key)
    monkeypatch.setenv("IMAGESTORE_TEST_S3_SECRET", moto_server.secret_key)
    proxy = fault_proxy(moto_server)
    proxy.strip_header("If-None-Match")
    with temporary_bucket(moto_server, "imagestore-nocond") as bucket:
        spec = s3_spec(moto_server, bucket, endpoint=proxy.endpoint, part_size="5M")
        outs = _racers(spec, tmp_path / "go", 2)
        assert all(o.startswith("refused: ConfigError") and "atomic_create" in o for o in outs), outs
        client = moto_server.client()
        assert client.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0
        store = imagestore.open_store({**spec, "atomic_create": "no"}, "declared")
        try:
            assert store.capabilities.atomic_create is False
            store.add("ignored", b"first", 5)
            with pytest.raises(AlreadyExists):  # the best-effort check of one process
                store.add("ignored", b"second", 6)
            assert store.get("ignored") == b"first"
        finally:
            store.close()

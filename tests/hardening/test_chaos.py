"""The driver-level fault layer and the fault matrix: retries recover what is retryable,
the rest ends in the promised ImageStoreError, no truncated or altered read succeeds,
and a failed add or clone leaves nothing (imagestore.testing.chaos and .faultrun)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import imagestore
from imagestore import ChecksumMismatch, SizeMismatch
from imagestore.testing.backends import FileBackend
from imagestore.testing.chaos import KILLABLE_ENV, Chaos, Corrupt, Eof, Fault, Kill, Raise, Stall, killable_env
from imagestore.testing.faultrun import CASES, fault_run
from imagestore.testing.payloads import chunks, payload
from tests.services.ceph import CephCluster

from .conftest import rbd_backend

MiB = 1 << 20


def assert_contract_held(report: dict[str, object]) -> None:
    assert report["violations"] == [], report["violations"]
    assert report["violation_count"] == 0 and report["corrupt_reads_returned"] == 0, report
    assert report["reference_intact"] is True
    assert set(report["outcomes"]) <= {"recover", "clear"}, report["outcomes"]  # type: ignore[arg-type]
    assert report["cases_run"] == len(CASES)


def test_fault_matrix_file(file_backend: FileBackend, prefix: str) -> None:
    assert_contract_held(fault_run(file_backend, prefix, seed=1))


@pytest.mark.ceph
@pytest.mark.parametrize("kind", ["v1", "v2"])
def test_fault_matrix_rbd(kind: str, ceph_v1: CephCluster, ceph_v2: CephCluster, prefix: str) -> None:
    cluster = ceph_v1 if kind == "v1" else ceph_v2
    assert_contract_held(fault_run(rbd_backend(cluster), prefix, seed=2))


def memory_store(name: str = "chaos") -> imagestore.Store:
    return imagestore.open_store({"driver": "memory", "namespace": name, "retries": 3, "retry_backoff": 0,
                                  "chunk_size": "64K"}, "mem")


def test_same_seed_same_faults() -> None:
    """Probabilistic faults are a function of the seed and the call sequence only."""
    logs = []
    for _ in range(2):
        store = memory_store("seeded")
        data = payload(3 * MiB, 1)
        info = store.add("img", data, len(data))
        chaos = Chaos([Fault("read", Raise.transient(), probability=0.25, times=None)], seed=99)
        with chaos.attached(store):
            for _ in range(20):
                try:
                    store.get(info.location)
                except imagestore.BackendUnavailable:
                    pass
        logs.append(chaos.log)
        store.delete(info.location)
    assert logs[0] == logs[1] and 0 < len(logs[0]) < 400


def test_after_bytes_splits_a_write_exactly() -> None:
    store = memory_store("split")
    seen: list[int] = []
    chaos = Chaos([Fault("write", Raise.os_error(5), after_bytes=1_000_003)])
    real_open = store._driver.open_writer

    def spy(image_id: str, size: int | None) -> object:
        writer = real_open(image_id, size)
        real_write = writer.write
        writer.write = lambda data: (seen.append(len(data)), real_write(data))[1]  # type: ignore[method-assign]
        return writer

    store._driver.open_writer = spy  # type: ignore[method-assign]
    with chaos.attached(store), pytest.raises(imagestore.BackendError):
        store.add("img", chunks(payload(3 * MiB, 2), 256 << 10), 3 * MiB)
    assert sum(seen) == 1_000_003 and chaos.fired["write"] == 1


def test_detach_restores_the_driver() -> None:
    store = memory_store("detach")
    info = store.add("img", b"x" * 100, 100)
    chaos = Chaos([Fault("stat", Raise.os_error(5), times=None)]).attach(store)
    with pytest.raises(imagestore.BackendError):
        store.stat(info.location)
    chaos.detach()
    assert store.stat(info.location).size == 100 and "stat" not in store._driver.__dict__


def test_every_read_altered_never_succeeds() -> None:
    """Whole reads: a flipped bit or a cut anywhere is caught; ranged reads: their length is."""
    store = memory_store("altered")
    data = payload(2 * MiB + 7, 3)
    info = store.add("img", data, len(data))
    for at in (0, 1, 64 << 10, MiB, 2 * MiB):
        with Chaos([Fault("read", Corrupt(), after_bytes=at)]).attached(store), pytest.raises(ChecksumMismatch):
            store.get(info.location)
        with Chaos([Fault("read", Eof(), after_bytes=at, times=None)]).attached(store), \
                pytest.raises(SizeMismatch):
            store.get(info.location)
        with Chaos([Fault("read", Eof(), after_bytes=min(at, len(data) - 11), times=None)]).attached(store), \
                pytest.raises(SizeMismatch):
            store.get(info.location, 5, len(data) - 10, verify=False)
    with Chaos([Fault("read", Eof(), after_bytes=MiB, times=1)]).attached(store):
        assert store.get(info.location, 5, len(data) - 10, verify=False) == data[5:-5]  # resumed


def test_stall_delays_but_does_not_fail() -> None:
    store = memory_store("stall")
    info = store.add("img", b"y" * 1000, 1000)
    with Chaos([Fault("stat", Stall(0.2))]).attached(store) as chaos:
        assert store.get(info.location) == b"y" * 1000
    assert chaos.summary()["by_action"] == {"stall": 1}


def test_kill_after_exactly_n_bytes(tmp_path: Path) -> None:
    """SIGKILL from the chaos layer: the process dies with exactly N bytes written, and the
    dead writer's temporary holds exactly those bytes (the file driver writes through)."""
    root = tmp_path / "root"
    code = textwrap.dedent(f"""
        import imagestore
        from imagestore.testing.chaos import Chaos, Fault, Kill
        from imagestore.testing.payloads import chunks, payload
        store = imagestore.open_store({{"driver": "file", "root": {str(root)!r}, "auto_sweep": False}}, "k")
        Chaos([Fault("write", Kill(), after_bytes=1234567)]).attach(store)
        store.add("victim", chunks(payload(3 << 20, 5), 100_000), 3 << 20)
        print("survived")
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **killable_env()})
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert "survived" not in proc.stdout
    temps = list((root / ".tmp").iterdir())
    assert len(temps) == 1 and temps[0].stat().st_size == 1234567
    assert temps[0].read_bytes() == payload(3 << 20, 5)[:1234567]
    assert not (root / "victim").exists()
    store = FileBackend(tmp_path).open("root")
    os.utime(temps[0], (0, 0))  # as old as a long-dead writer's
    assert store.sweep(0).removed == 1 and list((root / ".tmp").iterdir()) == []


def test_kill_is_refused_in_a_process_not_started_to_be_killed(tmp_path: Path) -> None:
    """A library caller (here a process whose parent did not mark it killable, and its grandchild
    when the mark names another parent) is never SIGKILLed: attaching or adding a Kill rule
    raises, and nothing is killed."""
    code = textwrap.dedent(f"""
        import sys
        import imagestore
        from imagestore.testing.chaos import Chaos, Fault, Kill, Raise
        store = imagestore.open_store({{"driver": "file", "root": sys.argv[1]}}, "k")
        try:
            Chaos([Fault("write", Kill())]).attach(store)
        except RuntimeError as exc:
            print("attach refused:", exc)
        chaos = Chaos([Fault("stat", Raise.transient(), calls={{99}})]).attach(store)
        try:
            chaos.add(Fault("write", Kill()))
        except RuntimeError:
            print("add refused")
        store.add("x", b"z" * 10, 10)
        print("survived")
    """)
    for i, env in enumerate(({}, {KILLABLE_ENV: "1"})):  # no mark; a mark naming another process
        proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / f"root{i}")], capture_output=True,
                              text=True, timeout=60,
                              env={**os.environ, **env})
        assert proc.returncode == 0, (env, proc.returncode, proc.stderr)
        assert "attach refused: Kill SIGKILLs the process it runs in" in proc.stdout, proc.stdout
        assert "add refused" in proc.stdout and "survived" in proc.stdout, proc.stdout


def test_bad_rules_are_refused() -> None:
    with pytest.raises(ValueError):
        Fault("nowhere", Kill())
    with pytest.raises(ValueError):
        Fault("write", Corrupt())
    with pytest.raises(ValueError):
        Fault("stat", Kill(), after_bytes=3)
    with pytest.raises(ValueError):
        Fault("read", Raise.bug(), probability=1.5)

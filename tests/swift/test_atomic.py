"""Concurrent adds of one id have exactly one winner on a real Swift, between stores that
share nothing: other processes, or stores of their own in threads (no facade lock helps).

``IMAGESTORE_SWIFT_ATOMIC_ROUNDS`` sets the rounds of each test (default 5); the figure in
the README was measured with 50.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import imagestore
from imagestore import AlreadyExists
from imagestore.testing.payloads import payload

from .area import MiB, SwiftArea

ROUNDS = int(os.environ.get("IMAGESTORE_SWIFT_ATOMIC_ROUNDS", "5"))
WRITERS = 4

_CHILD = textwrap.dedent("""
    import json, pathlib, sys, time
    import imagestore
    from imagestore.testing.payloads import payload
    spec, image, seed, size = json.loads(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    ready, go = pathlib.Path(sys.argv[5]), pathlib.Path(sys.argv[6])
    store = imagestore.open_store(spec, "main")
    data = payload(size, seed=seed)
    ready.write_text("1")
    while not go.exists():
        time.sleep(0.0005)
    try:
        store.add(image, data, size)
        print("won")
    except imagestore.AlreadyExists:
        print("lost")
""")


def _round_of_processes(area: SwiftArea, image: str, size: int, tmp: Path) -> tuple[int, list[str]]:
    """Start WRITERS processes, let them add ``image`` at the same moment; (winner seed, outcomes)."""
    go = tmp / f"go-{image}"
    procs = []
    for seed in range(WRITERS):
        ready = tmp / f"ready-{image}-{seed}"
        procs.append((ready, subprocess.Popen(
            [sys.executable, "-c", _CHILD, json.dumps(area.spec()), image, str(seed), str(size), str(ready), str(go)],
            stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[2])))
    deadline = time.monotonic() + 120
    while not all(ready.exists() for ready, _ in procs):
        assert time.monotonic() < deadline, "the writers never got ready"
        assert all(p.poll() is None for _, p in procs), "a writer died while opening its store"
        time.sleep(0.01)
    go.write_text("go")
    outcomes = []
    for _, proc in procs:
        out, _ = proc.communicate(timeout=180)
        outcomes.append(out.strip() if proc.returncode == 0 else f"exit {proc.returncode}")
    winners = [i for i, o in enumerate(outcomes) if o == "won"]
    return (winners[0] if len(winners) == 1 else -1), outcomes


@pytest.mark.parametrize("size", [300_000, 2 * MiB + 5], ids=["plain", "slo"])
def test_concurrent_adds_from_processes_have_one_winner(area: SwiftArea, tmp_path: Path, size: int) -> None:
    store = area.store()
    for n in range(ROUNDS):
        image = f"race-{n}"
        winner, outcomes = _round_of_processes(area, image, size, tmp_path)
        assert sorted(outcomes) == ["lost"] * (WRITERS - 1) + ["won"], outcomes
        assert store.get(image) == payload(size, seed=winner)  # the winner's bytes, verified
        assert area.leftovers() == []


def test_concurrent_adds_from_stores_of_their_own_have_one_winner(area: SwiftArea) -> None:
    stores = [imagestore.open_store(area.spec(), f"w{i}") for i in range(WRITERS)]
    area.stores.extend(stores)
    datas = [payload(MiB + 3, seed=i) for i in range(WRITERS)]
    for n in range(ROUNDS):
        image = f"race-{n}"
        barrier = threading.Barrier(WRITERS)
        results: list[Any] = [None] * WRITERS

        def run(i: int, image: str = image, barrier: threading.Barrier = barrier, results: list[Any] = results,
                ) -> None:
            barrier.wait()
            try:
                results[i] = stores[i].add(image, datas[i], len(datas[i]))
            except BaseException as exc:  # noqa: BLE001 - reported below
                results[i] = exc

        threads = [threading.Thread(target=run, args=(i,)) for i in range(WRITERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(180)
        winners = [i for i, r in enumerate(results) if isinstance(r, imagestore.ImageInfo)]
        assert len(winners) == 1 and sum(isinstance(r, AlreadyExists) for r in results) == WRITERS - 1, results
        assert stores[0].get(image) == datas[winners[0]]
        assert area.leftovers() == []

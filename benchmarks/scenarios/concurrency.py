"""N clients at once on one store, as threads and as processes: aggregate MB/s, ops/s, p50/p95/p99.

Each level runs N clients that each add (known size, from the warm source file)
or read (unverified, the same image) ``size`` bytes once per repeat; the
limit is the backend's own limit (ideal add, raw read) run by N threads at the
same time, measured in the threads figure and used for the processes one too.
Its ratio is the target's "aggregate throughput / (single-client limit x what
the backend scales to)": the limit at N already is what the backend scales to.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import imagestore

from ..backends import Backend
from ..measure import Reported
from ..runner import Contender, Fn, Run

REPEATS = 2


def _threads(n: int, work: Callable[[int], None]) -> list[float]:
    """Run ``work(i)`` in ``n`` threads started together; each one's seconds (re-raises a failure)."""
    lat = [0.0] * n
    errors: list[BaseException] = []
    barrier = threading.Barrier(n)

    def body(i: int) -> None:
        try:
            barrier.wait()
            t0 = time.perf_counter()
            work(i)
            lat[i] = time.perf_counter() - t0
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
            errors.append(exc)

    ts = [threading.Thread(target=body, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        raise errors[0]
    return lat


def run_concurrency(run: Run, b: Backend, size: int, levels: list[int], modes: list[str]) -> None:
    """Every level in every mode, for add and get."""
    src = run.source(size)
    probe = b.store.add(f"bench-cc-probe-{uuid.uuid4().hex[:6]}", open(src, "rb"), size=size)  # noqa: SIM115
    base_tag = f"cc-read-{uuid.uuid4().hex[:6]}"
    try:
        b.limit_add(b.ideal_limit, src, size, base_tag)()
        has_read = b.read_limit is not None and base_tag in b.kept
        for n in levels:
            limits: dict[str, dict[str, Any]] = {}
            for mode in modes:
                if mode == "processes" and not b.store.capabilities.persistent:
                    run.skip("concurrency", b.name, "processes: the store does not outlive a process")
                    continue
                c: list[Contender] = []
                if mode == "threads":
                    c.append(Contender(f"{b.ideal_limit}", _limit_add(b, src, size, n), n * size, is_limit=True,
                                       scenario="concurrency"))
                    if has_read:
                        assert b.read_limit is not None
                        c.append(Contender(b.read_limit, _limit_get(b, base_tag, size, n), n * size, is_limit=True,
                                           scenario="concurrency"))
                add = _add_threads(b, src, size, n) if mode == "threads" else _procs(b, "add", src, size, n, probe)
                get = _get_threads(b, probe, size, n) if mode == "threads" else _procs(b, "get", src, size, n, probe)
                c.append(Contender("add_known", add, n * size, limit=b.ideal_limit, scenario="concurrency", ops=n))
                c.append(Contender("get", get, n * size, limit=b.read_limit if has_read else None,
                                   scenario="concurrency", ops=n))
                got = run.compare(b.name, b.driver, size, c, pids=b.pids, concurrency=n, mode=mode,
                                  repeats=REPEATS, external=limits)
                limits.update({k: v for k, v in got.items() if k in (b.ideal_limit, b.read_limit)})
    finally:
        b.store.delete(probe.location)
        b.drop(base_tag)


def _limit_add(b: Backend, src: Any, size: int, n: int) -> Callable[[int], tuple[Fn, Fn | None]]:
    def prepare(r: int) -> tuple[Fn, Fn | None]:
        tags = [f"cc-{r}-{i}-{uuid.uuid4().hex[:6]}" for i in range(n)]
        fns = [b.limit_add(b.ideal_limit, src, size, t) for t in tags]

        def cleanup() -> None:
            for t in tags:
                b.drop(t)
        return (lambda: _threads(n, lambda i: fns[i]())), cleanup
    return prepare


def _limit_get(b: Backend, tag: str, size: int, n: int) -> Callable[[int], tuple[Fn, Fn | None]]:
    def prepare(r: int) -> tuple[Fn, Fn | None]:
        assert b.read_limit is not None
        fns = [b.limit_get(b.read_limit, tag, size) for _ in range(n)]
        return (lambda: _threads(n, lambda i: fns[i]())), None
    return prepare


def _add_threads(b: Backend, src: Any, size: int, n: int) -> Callable[[int], tuple[Fn, Fn | None]]:
    def prepare(r: int) -> tuple[Fn, Fn | None]:
        prefix = f"bench-cc-{uuid.uuid4().hex[:6]}"
        made: list[imagestore.ImageInfo] = []

        def one(i: int) -> None:
            with open(src, "rb") as fh:
                made.append(b.store.add(f"{prefix}-{i}", fh, size=size))

        def cleanup() -> None:
            for info in made:
                b.store.delete(info.location)
        return (lambda: _threads(n, one)), cleanup
    return prepare


def _get_threads(b: Backend, probe: imagestore.ImageInfo, size: int, n: int) -> Callable[[int], tuple[Fn, Fn | None]]:
    def one(i: int) -> None:
        got = 0
        with b.store.open(probe.location, verify=False) as reader:
            for piece in reader:
                got += len(piece)
        if got != size:
            raise AssertionError(f"read {got} bytes, not {size}")
    return lambda r: ((lambda: _threads(n, one)), None)


def _procs(b: Backend, op: str, src: Any, size: int, n: int,
           probe: imagestore.ImageInfo) -> Callable[[int], tuple[Fn, Fn | None]]:
    job = {"src": str(src), "size": size, "image": str(probe.location), "probe": str(probe.location)}
    return client_processes(b, op, n, job)


def client_processes(b: Backend, op: str, n: int, job: dict[str, Any]) -> Callable[[int], tuple[Fn, Fn | None]]:
    """``n`` client processes (``client.py``) doing ``op`` once each, started and connected before the clock.

    The timed call sends ``go`` to all and ends when the last one has answered; the clients
    exit (and are reaped) in the cleanup, so their interpreter start and exit are not timed."""
    def prepare(r: int) -> tuple[Fn, Fn | None]:
        prefix = f"bench-cp-{uuid.uuid4().hex[:6]}"
        procs = []
        for i in range(n):
            one = {"spec": b.spec, "name": b.name, "op": op, "ops": 1, "prefix": f"{prefix}-{i}", **job}
            procs.append(subprocess.Popen([sys.executable, "-m", "imagestore_bench.scenarios.client", json.dumps(one)],
                                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
        results: list[dict[str, Any]] = []

        def kill() -> None:
            for q in procs:
                q.kill()
                q.wait()

        for p in procs:
            assert p.stdout is not None
            if p.stdout.readline().strip() != "ready":
                kill()
                raise RuntimeError(f"a {op} client did not start")

        def fn() -> Reported:
            for p in procs:
                assert p.stdin is not None
                p.stdin.write("go\n")
                p.stdin.flush()
            for p in procs:
                assert p.stdout is not None
                line = p.stdout.readline()
                if not line.strip():
                    kill()
                    raise RuntimeError(f"a {op} client failed (exit {p.wait()})")
                results.append(json.loads(line))
            top = max(results, key=lambda x: x.get("rss_peak_mib") or 0)
            return Reported([x for res in results for x in res["latencies"]],
                            sum(x["cpu_user_s"] for x in results), sum(x["cpu_sys_s"] for x in results),
                            top.get("rss_base_mib"), top.get("rss_peak_mib"))

        def cleanup() -> None:
            for p in procs:
                p.communicate(timeout=120)
            for res in results:
                for loc in res["made"]:
                    b.store.delete(loc)
            if any(p.returncode != 0 for p in procs):
                raise RuntimeError(f"a {op} client exited {[p.returncode for p in procs]}")
        return fn, cleanup
    return prepare

"""One retry policy and one set of timeouts: ``RetryPolicy.run`` is the only retry loop of the
package (every call site named by ``site=`` and listed in the README's table), the store's
``retries``/``retry_backoff``/``connect_timeout``/``io_timeout`` reach the driver in its context,
and no other module sleeps between attempts."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import pytest

import imagestore
from imagestore import BackendUnavailable, ConfigError
from imagestore.config import StoreSettings
from imagestore.drivers.memory import MemoryDriver
from imagestore.errors import Transient
from imagestore.spi import DriverContext, RetryPolicy, Timeouts
from imagestore.spi.parts import ChunkedUploader, PartSizes, done

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "imagestore"
RETRY_MODULE = SRC / "spi" / "retry.py"

# Sleeps that are not a retry of a failure, and why each is allowed (path relative to src/imagestore).
SLEEP_ALLOWED: dict[str, tuple[int, str]] = {
    "drivers/swift/claims.py": (4, "the create claim's protocol: wait out the timing window before confirming a "
                                   "claim, and poll another writer's claim until it lapses or is renewed"),
    "testing/chaos.py": (2, "fault injection: a Stall fault is a slow backend; a Kill waits for its own SIGKILL"),
    "testing/crash.py": (3, "the crash harness waits for dead writers' locks and watches to lapse before sweeping"),
    "testing/conformance/base.py": (1, "a deliberately slow source, killed mid-upload"),
    "testing/processes.py": (1, "polling for a writer to start before it is killed"),
    "testing/moto.py": (1, "polling for a starting moto server to answer"),
    "testing/conformance/sweep.py": (1, "the sweep test waits for a dead client's lock or watch to lapse"),
    "store/ops/scrub.py": (1, "scrub's rate limit: it reads no faster than the operator allowed"),
}
_SLEEP = re.compile(r"\b(?:time\.|asyncio\.)?sleep\(")
_LOOP = re.compile(r"\bfor\s+\w*attempt\w*\s+in\b|\bbackoff_delay\("  # a loop over attempts, a backoff
                   r"|max_retries\s*=\s*[1-9]|max_attempts\"?\s*[:=]\s*[2-9]")  # a client that retries itself
_SITE = re.compile(r"\bsite=\"([a-z0-9-]+)\"")


def _sources() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if p != RETRY_MODULE)


def test_no_module_but_the_retry_module_sleeps_or_loops_over_attempts() -> None:
    sleeps: dict[str, int] = {}
    loops: list[str] = []
    for path in _sources():
        rel = path.relative_to(SRC).as_posix()
        text = path.read_text()
        if n := len(_SLEEP.findall(text)):
            sleeps[rel] = n
        loops += [f"{rel}: {m.group(0)}" for m in _LOOP.finditer(text) if rel != "compat/backend.py"
                  or m.group(0) != "backoff_delay("]  # compat schedules a reopen on a later request: no loop
    assert sleeps == {k: n for k, (n, _) in SLEEP_ALLOWED.items()}, sleeps
    assert loops == [], loops


def test_the_readme_table_lists_exactly_the_retry_sites_of_the_code() -> None:
    in_code: set[str] = set()
    for path in SRC.rglob("*.py"):
        in_code |= set(_SITE.findall(path.read_text()))
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Who retries what", 1)[1].split("\n### ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    in_table = {re.match(r"\| `([a-z0-9-]+)` \|", row).group(1) for row in rows}  # type: ignore[union-attr]
    assert len(rows) == len(in_table)
    assert in_code and in_table == in_code, (sorted(in_table), sorted(in_code))


# ------------------------------------------------------------------ the policy
class Flaky:
    """Fails with ``error`` the first ``failures`` calls, then returns ``"ok"``."""

    def __init__(self, failures: int, error: Exception | None = None) -> None:
        self.failures = failures
        self.error = error or Transient("busy")
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "ok"


def test_run_retries_transient_up_to_retries_then_lets_the_last_error_out() -> None:
    policy = RetryPolicy(retries=2, backoff=0.0)
    assert policy.attempts == 3
    ok = Flaky(2)
    assert policy.run(ok, site="test") == "ok" and ok.calls == 3
    down = Flaky(10)
    seen: list[tuple[str, int]] = []
    with pytest.raises(Transient):
        policy.run(down, site="test", on_retry=lambda exc, n, delay: seen.append((str(exc), n)))
    assert down.calls == 3 and seen == [("busy", 1), ("busy", 2)]
    bug = Flaky(1, ValueError("not retryable"))
    with pytest.raises(ValueError):
        policy.run(bug, site="test")
    assert bug.calls == 1
    vetoed = Flaky(10)
    with pytest.raises(Transient):
        policy.run(vetoed, site="test", retry_if=lambda exc: vetoed.calls < 2)
    assert vetoed.calls == 2


def test_delays_grow_exponentially_up_to_the_cap_with_jitter_around_them() -> None:
    exact = RetryPolicy(backoff=0.5, cap=3.0, jitter=False)
    assert [exact.delay(n) for n in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    jittered = RetryPolicy(backoff=0.5, cap=3.0)
    for n in range(5):
        assert 0.5 * exact.delay(n) <= jittered.delay(n) <= 1.5 * exact.delay(n)
    with pytest.raises(ValueError):
        RetryPolicy(retries=-1)
    with pytest.raises(ValueError):
        Timeouts(connect=0)
    assert Timeouts(connect=3, io=4).override(io=7) == Timeouts(connect=3, io=7)


def test_a_part_is_resent_as_the_policy_says() -> None:
    sent: list[int] = []

    class Part:
        def __init__(self, n: int) -> None:
            self.n = n

        def wait(self) -> int:
            if len(sent) < 3:
                raise Transient("503")
            return self.n

    def start(index: int, offset: int, data: memoryview) -> Any:
        sent.append(index)
        return Part(index)

    up = ChunkedUploader(start, PartSizes(4), concurrency=1, policy=RetryPolicy(retries=1, backoff=0.0))
    up.write(b"abcd")
    with pytest.raises(Transient):
        up.finish()
    assert sent == [0, 0]  # one send and one resend: retries=1
    sent.clear()
    up = ChunkedUploader(start, PartSizes(4), concurrency=1, policy=RetryPolicy(retries=2, backoff=0.0))
    up.write(b"abcd")
    assert up.finish() == [0] and sent == [0, 0, 0] and up.retried == 2
    assert ChunkedUploader(lambda i, o, d: done(i), PartSizes(4), concurrency=1).finish() == [0]


# ------------------------------------------------------------------ settings and context
class Recorder(MemoryDriver):
    """A memory driver that keeps the context it was opened with and fails its stats."""

    def __init__(self, failing: bool = False) -> None:
        super().__init__("rec", namespace=f"rec-{uuid.uuid4().hex[:8]}")
        self.context: DriverContext | None = None
        self.stats = 0
        self.failing = failing

    def open(self, context: DriverContext) -> imagestore.Capabilities:
        self.context = context
        return super().open(context)

    def stat(self, location: Any) -> Any:
        self.stats += 1
        if self.failing:
            raise Transient("timed out")
        return super().stat(location)


def test_the_store_settings_reach_the_driver_context() -> None:
    settings = StoreSettings.from_mapping({"retries": 5, "retry_backoff": 0.5, "connect_timeout": 2,
                                           "io_timeout": 7.5}, "stores.rec")
    driver = Recorder()
    store = imagestore.Store(driver, settings)
    try:
        ctx = driver.context
        assert ctx is not None
        assert ctx.retry == RetryPolicy(retries=5, backoff=0.5)
        assert ctx.timeouts == Timeouts(connect=2.0, io=7.5)
        assert (ctx.retries, ctx.retry_backoff) == (5, 0.5)  # the names drivers read before
    finally:
        store.close()
    defaults = StoreSettings()
    assert defaults.timeouts == Timeouts(connect=10.0, io=60.0) == DriverContext().timeouts


@pytest.mark.parametrize("key,value", [("connect_timeout", 0), ("io_timeout", -1), ("io_timeout", "fast"),
                                       ("connect_timeout", 601), ("io_timeout", True)])
def test_bad_timeouts_name_their_key(key: str, value: object) -> None:
    with pytest.raises(ConfigError) as err:
        StoreSettings.from_mapping({key: value}, "stores.x")
    assert err.value.key == f"stores.x.{key}"


def test_the_facade_tries_a_failing_call_retries_plus_one_times() -> None:
    driver = Recorder(failing=True)
    store = imagestore.Store(driver, StoreSettings(retries=2, retry_backoff=0.0))
    try:
        with pytest.raises(BackendUnavailable) as err:
            store.stat("img")
        assert driver.stats == 3 and "after 3 attempt(s)" in str(err.value)
    finally:
        store.close()

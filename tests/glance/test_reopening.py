"""A Glance backend whose store cannot be opened is opened again later, after an exponential backoff."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from imagestore import open_store
from imagestore.compat.backend import GlanceBackend, Reopening
from imagestore.errors import BackendUnavailable, ConfigError


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_store_is_opened_again_only_after_the_backoff_and_the_log_says_when(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "not-yet"
    blocker.write_text("a file where the root's parent directory should be")
    root = blocker / "images"
    opens: list[float] = []
    clock = Clock()

    def open_backend() -> GlanceBackend:
        opens.append(clock.now)
        return GlanceBackend("fast", open_store({"driver": "file", "root": str(root)}, name="fast"))

    reopening = Reopening("fast", "fast", open_backend, first_delay=1.0, clock=clock)
    waits = []
    for _ in range(5):  # each failure waits about twice as long as the one before (jitter 0.5x-1.5x)
        with pytest.raises(BackendUnavailable) as caught:
            reopening.get("img-1")
        message = str(caught.value)
        assert "cannot be opened" in message and "'fast'" in message and "img-1" in message
        assert str(root) in message  # the reason: the root that cannot be made
        calls = len(opens)
        with pytest.raises(BackendUnavailable, match="next attempt in"):
            reopening.get("img-1")  # within the backoff: not opened again
        assert len(opens) == calls
        wait = reopening._retry_at - clock.now
        waits.append(wait)
        clock.now = reopening._retry_at
    assert len(opens) == 5 and reopening.failures == 5
    assert waits[4] > waits[0] * 2  # 16x nominal; jitter cannot undo that
    assert all(w <= 45 for w in waits)  # capped

    blocker.unlink()
    caplog.set_level(logging.INFO, logger="imagestore.glance")
    backend = reopening.get("img-2")
    assert backend.url_prefix == f"file://{root}/"
    assert reopening.get() is backend and len(opens) == 6 and reopening.failures == 0
    back = [r for r in caplog.records if "is open again" in r.getMessage()]
    assert len(back) == 1 and back[0].levelno == logging.INFO
    assert "after 5 failed attempt(s)" in back[0].getMessage()


def test_an_error_opening_the_store_is_retried_not_fatal(tmp_path: Path) -> None:
    def broken() -> GlanceBackend:
        raise ConfigError("bad", key="stores.fast.root")

    reopening = Reopening("fast", "fast", broken, clock=Clock())
    with pytest.raises(BackendUnavailable, match="stores.fast.root: bad"):
        reopening.get()
    assert reopening.backend is None

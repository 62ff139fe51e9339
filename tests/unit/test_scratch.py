"""Conversion scratch directories: room checked before the first byte, removed at the end, and
those of a killed conversion removed by the next one (never one that a live process holds)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from imagestore import NoSpace
from imagestore.engine.scratch import PREFIX, scratch

_HOLD = """
import sys, time
from imagestore.engine.scratch import scratch
with scratch(0, store="s", image="i") as work:
    open(work + "/source", "wb").write(b"spool")
    print(work, flush=True)
    time.sleep(120)
"""


@pytest.fixture
def tmpdir_(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def _holder() -> tuple[subprocess.Popen[str], Path]:
    proc = subprocess.Popen([sys.executable, "-c", _HOLD], stdout=subprocess.PIPE, text=True, env=dict(os.environ))
    assert proc.stdout is not None
    return proc, Path(proc.stdout.readline().strip())


def test_a_killed_conversions_scratch_is_removed_by_the_next_and_a_live_one_is_kept(tmpdir_: Path) -> None:
    dead, dead_dir = _holder()
    live, live_dir = _holder()
    try:
        dead.send_signal(signal.SIGKILL)
        dead.wait()
        assert (dead_dir / "source").exists()  # nobody removed it
        (tmpdir_ / f"{PREFIX}unlocked").mkdir()  # being set up, or not a scratch directory: kept
        with scratch(0, store="s", image="i") as work:
            assert Path(work).is_dir() and Path(work).parent == tmpdir_
        assert not Path(work).exists()
        assert not dead_dir.exists() and (live_dir / "source").exists()
        assert (tmpdir_ / f"{PREFIX}unlocked").is_dir()
    finally:
        live.kill()
        live.wait()


def test_too_little_room_is_no_space_before_anything_is_made(tmpdir_: Path) -> None:
    with pytest.raises(NoSpace, match=r"\$TMPDIR") as err:
        with scratch(1 << 62, store="s", image="img-9"):
            raise AssertionError("no scratch directory without the room")
    assert err.value.image == "img-9" and list(tmpdir_.iterdir()) == []

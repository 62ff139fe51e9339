"""``VerifiedBlocks``: any range, served from whole blocks fetched a run at a time and kept."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imagestore.engine.ranges import VerifiedBlocks

DATA = bytes(range(256)) * 41  # 10,496 bytes: 10 blocks of 1,000 and a short last one


def _blocks(window: int = 3, capacity: int = 6, bad: int | None = None
            ) -> tuple[VerifiedBlocks, list[tuple[int, int, bool]]]:
    """Blocks of ``DATA``; each fetch recorded as ``(first, count, ahead)`` (``ahead``: on the
    fetching thread); a fetch of the run from ``bad`` fails."""
    calls: list[tuple[int, int, bool]] = []

    def fetch(first: int, count: int) -> list[bytes]:
        calls.append((first, count, threading.current_thread() is not threading.main_thread()))
        if first == bad:
            raise ValueError(f"block {first} does not match")
        return [DATA[i * 1000:(i + 1) * 1000] for i in range(first, first + count)]

    return VerifiedBlocks(fetch, 1000, len(DATA), window=window, capacity=capacity), calls


@settings(max_examples=200, deadline=None)
@given(st.integers(0, len(DATA) + 50), st.integers(0, 4000))
def test_any_range_reads_as_the_data(offset: int, length: int) -> None:
    blocks, _ = _blocks()
    assert bytes(blocks.pread(offset, length)) == DATA[offset:offset + length]


def test_reading_in_order_uses_the_runs_fetched_ahead() -> None:
    blocks, calls = _blocks(window=3, capacity=9)
    with blocks:
        assert bytes(blocks.pread(10, 20)) == DATA[10:30]  # run 0-2 now, 3-5 ahead
        assert bytes(blocks.pread(3500, 3000)) == DATA[3500:6500]  # 3-5 and 6-8 as fetched ahead
        assert bytes(blocks.pread(0, 10)) == DATA[:10]  # still kept
    assert calls[0] == (0, 3, False) and calls[1:3] == [(3, 3, True), (6, 3, True)]
    assert set(calls[3:]) <= {(9, 2, True)} and blocks.fetched == 9


def test_a_jump_fetches_where_it_lands_and_the_least_recent_blocks_go() -> None:
    blocks, calls = _blocks(window=3, capacity=3)
    with blocks:
        blocks.pread(0, 10)
        assert bytes(blocks.pread(8100, 10)) == DATA[8100:8110]
        assert (8, 1, False) in calls  # fetched in line: the run ahead (3-5) was not it
        assert bytes(blocks.pread(500, 10)) == DATA[500:510]
        assert calls.count((0, 3, False)) == 2  # block 0 went when 8-10 came in


def test_a_jump_fetches_nothing_ahead_until_the_reads_go_on_in_order() -> None:
    """An inspector's jumps (a table, the tail) cost the blocks they read; reading on from there is in order."""
    blocks, calls = _blocks(window=2, capacity=9)
    with blocks:
        blocks.pread(9500, 10)  # a jump: block 9, nothing ahead
        blocks.pread(3500, 1000)  # another: the blocks it needs, 3-4
        assert calls == [(9, 1, False), (3, 2, False)]
        blocks.pread(5500, 10)  # on from block 4: in order, 5-6 and 7-8 ahead
        assert calls[2:] == [(5, 2, False), (7, 2, True)]


def test_a_failed_run_ahead_is_raised_only_when_it_is_read() -> None:
    blocks, calls = _blocks(window=3, capacity=9, bad=3)
    with blocks:
        assert bytes(blocks.pread(0, 10)) == DATA[:10]  # 3-5 fails ahead, unread
        assert bytes(blocks.pread(9500, 10)) == DATA[9500:9510]
        with pytest.raises(ValueError, match="block 3"):
            blocks.pread(3000, 10)
    assert blocks.fetched == 3 + 1  # 0-2, then the block the jump read (9); 3-5 failed ahead, unread


def test_a_failed_fetch_is_raised_to_the_reader_and_nothing_is_kept() -> None:
    def fetch(first: int, count: int) -> list[bytes]:
        raise ValueError(f"block {first} does not match")

    blocks = VerifiedBlocks(fetch, 1000, len(DATA))
    with pytest.raises(ValueError, match="block 2"):
        blocks.pread(2000, 10)
    assert blocks.fetched == 0


def test_a_fetch_that_returns_the_wrong_number_of_blocks_is_an_error() -> None:
    blocks = VerifiedBlocks(lambda first, count: [b"x" * 1000], 1000, len(DATA), window=2)
    with pytest.raises(ValueError, match="returned 1 blocks"):
        blocks.pread(0, 1)

"""Sweep: what a killed writer left is removed once its writer is provably dead, and counted."""

from __future__ import annotations

import time
from typing import Any


import imagestore
from imagestore import Store

from ..backends.base import Backend
from .base import SuiteBase


class SweepTests(SuiteBase):
    """Sweeping a killed writer's leftovers."""

    def test_sweep_removes_a_killed_writers_leftovers(self, backend: Backend, store: Store, image_id: str,
                                                      tmp_path: Any) -> None:
        """What a killed add left behind is swept (once its writer is provably dead), and counted."""
        if not backend.has("persistent"):
            assert store.sweep(0) == imagestore.SweepReport()
        else:
            self._sweep_after_kill(backend, store, image_id, tmp_path)
    def _sweep_after_kill(self, backend: Backend, store: Store, image_id: str, tmp_path: Any) -> None:
        self._kill_writer_mid_upload(backend, image_id, tmp_path)
        assert backend.leftovers(), "a killed writer left nothing to sweep: the test proves nothing"
        assert store.sweep(3600).removed == 0, "a fresh temporary was swept with older_than=1h"
        removed = 0
        deadline = time.monotonic() + 120  # a dead client's lock or watch takes a while to lapse
        while backend.leftovers():
            assert time.monotonic() < deadline, f"never swept: {backend.leftovers()}"
            time.sleep(1)
            report = store.sweep(0)
            removed += report.removed
            assert report.bytes_freed >= 0
        assert removed >= 1
        store.sweep(0)
        assert backend.leftovers() == []

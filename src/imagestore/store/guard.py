"""The driver writer as the facade sees it: every failure leaves as an ImageStoreError naming store
and image, and abort (from the idle watch or the add, whichever comes first) never raises."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping

from ..spi.contract import Writer
from ..location import Location
from ..spi.retry import translate

__all__ = ["GuardedWriter"]

log = logging.getLogger("imagestore")


class GuardedWriter:
    """A driver's writer whose every failure leaves as an ImageStoreError; abort never raises."""

    def __init__(self, writer: Writer, store: str, image: str) -> None:
        self._writer = writer
        self._store = store
        self._image = image
        self._lock = threading.Lock()
        self._aborted = False

    def _fail(self, exc: Exception, op: str) -> BaseException:
        return translate(exc, op, store=self._store, image=self._image)

    def write(self, data: memoryview) -> None:
        try:
            self._writer.write(data)
        except Exception as exc:
            error = self._fail(exc, "upload")
            if error is exc:
                raise
            raise error from exc

    def commit(self, metadata: Mapping[str, str]) -> Location:
        try:
            return self._writer.commit(metadata)
        except Exception as exc:
            error = self._fail(exc, "publish")
            if error is exc:
                raise
            raise error from exc

    def abort(self) -> None:
        """Abort once, from whichever thread comes first (the idle watch or the add)."""
        with self._lock:
            if self._aborted:
                return
            self._aborted = True
        try:
            self._writer.abort()
        except Exception as exc:  # noqa: BLE001 - the original failure is what the caller must see
            log.warning("store %s: abort of the upload of %s failed (%s); sweep() removes what is left",
                        self._store, self._image, translate(exc, "abort", store=self._store, image=self._image))

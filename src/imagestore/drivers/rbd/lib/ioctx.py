"""What an open image needs from its connection (the typed libraries, a label for errors, a
pool's I/O context), as a Protocol: :mod:`.image` depends on it, not on :mod:`.cluster`."""

from __future__ import annotations

from ctypes import c_void_p
from typing import Protocol

from ._ffi import _Lib


class IoctxSource(Protocol):
    """A librados connection as seen by an image handle (:class:`~.cluster.Cluster` is one)."""

    lib: _Lib
    label: str | None

    def ioctx(self, pool: str) -> c_void_p:
        """The I/O context of ``pool``."""
        ...

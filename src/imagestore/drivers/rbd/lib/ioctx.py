"""What an open image needs from its connection (the typed libraries, a label for errors, a
pool's I/O context), as a Protocol: :mod:`.image` depends on it, not on :mod:`.cluster`."""

from __future__ import annotations

from ctypes import c_void_p
from typing import Any, Protocol

from ._ffi import _Lib


class IoctxSource(Protocol):
    """A librados connection as seen by an image handle (:class:`~.cluster.Cluster` is one)."""

    lib: _Lib
    label: str | None

    def ioctx(self, pool: str) -> c_void_p:
        """The I/O context of ``pool``."""
        ...

    def hold_image(self, handle: c_void_p, image: Any) -> bool:
        """Remember an open image handle (its shutdown closes it if its owner did not); False
        if the connection is closed already."""
        ...

    def release_image(self, handle: c_void_p) -> bool:
        """Forget an image handle; False if the connection's shutdown closed it already."""
        ...

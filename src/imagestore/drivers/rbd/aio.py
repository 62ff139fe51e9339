"""A librbd aio completion as the shared plumbing's :class:`~imagestore.spi.parts.Pending`, so the writer
and the reader wait on it and get the mapped imagestore error of a failed I/O."""

from __future__ import annotations

from .lib import Completion, error_for

__all__ = ["AioPending"]


class AioPending:
    """An aio completion as a Pending: waits, and raises the mapped error of a negative result."""

    __slots__ = ("comp", "op", "store", "image")

    def __init__(self, comp: Completion, op: str, store: str, image: str) -> None:
        self.comp, self.op, self.store, self.image = comp, op, store, image

    def wait(self) -> int:
        ret = self.comp.wait()
        if ret < 0:
            raise error_for(ret, self.op, store=self.store, image=self.image)
        return ret

"""NBD exports on a unix socket between imagestore and ``qemu-img``: a write-only one that turns a
conversion's output into a stream (:class:`NbdSink`), a read-only one that serves a stored image's
verified blocks as a conversion's input (:class:`NbdSource`)."""

from .protocol import NbdError
from .sink import NbdSink
from .source import NbdSource

__all__ = ["NbdError", "NbdSink", "NbdSource"]

"""The read-ahead reader of the Swift driver: a range mapped onto the image's pieces (an
SLO's manifest or a DLO's listing, read once), ``concurrency`` ranged GETs in flight.

A connection that breaks mid-body raises Transient so the facade resumes at the byte
where the stream stopped.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence

import requests
import urllib3

from ...errors import BackendError, Transient
from ...spi.parts import Pending, ReadAhead, ThreadParts
from .core import Piece, SwiftCore, quote_path

__all__ = ["SwiftReader", "pieces_of_manifest"]


class SwiftReader(ReadAhead):
    """Reads ``[offset, offset + length)`` with ranged GETs of the pieces, ``depth`` in flight."""

    def __init__(self, driver: SwiftCore, image: str, pieces: Sequence[Piece], offset: int, length: int) -> None:
        self._d = driver
        self._image = image
        self._pieces = list(pieces)
        self._starts = [p.start for p in self._pieces]
        self._pool = ThreadParts(driver.concurrency, name="imagestore-swift-get")

        def start(at: int, n: int, buf: bytearray) -> Pending[int]:
            return self._pool.run(self._read_into, at, n, buf)

        try:
            super().__init__(start, offset, length, piece=driver.read_piece, depth=driver.concurrency,
                             on_close=self._pool.close)
        except BaseException:
            self._pool.close()
            raise

    def _read_into(self, at: int, n: int, buf: bytearray) -> int:
        """Fill ``buf[:n]`` with the image's bytes from ``at``, one ranged GET per piece crossed."""
        view = memoryview(buf)
        done = 0
        i = max(0, bisect.bisect_right(self._starts, at) - 1)
        while done < n and i < len(self._pieces):
            piece = self._pieces[i]
            lo = at + done - piece.start
            hi = min(piece.size, at + n - piece.start)
            if hi > lo:
                self._get(piece, lo, hi, view[done:done + hi - lo])
                done += hi - lo
            i += 1
        return done

    def _get(self, piece: Piece, lo: int, hi: int, into: memoryview) -> None:
        op = f"GET {self._image!r} bytes {piece.start + lo}-{piece.start + hi - 1}"
        resp = self._d.http.request("GET", piece.path, op=op, headers={"Range": f"bytes={lo}-{hi - 1}"},
                                    stream=True)
        whole = resp.status_code == 200 and lo == 0 and hi == piece.size
        if resp.status_code != 206 and not whole:
            if resp.status_code == 200:
                resp.close()
                raise BackendError(f"{op}: Swift ignored the range", store=self._d.name, image=self._image)
            raise self._d.http.error(resp, op, image=self._image)
        want = hi - lo
        got = 0
        try:
            raw = resp.raw
            while got < want:
                n = raw.readinto(into[got:])
                if not n:
                    break
                got += n
        except (urllib3.exceptions.HTTPError, requests.exceptions.RequestException, OSError) as exc:
            resp.close()
            raise Transient(f"{op}: the connection broke after {got} of {want} bytes "
                            f"({type(exc).__name__})") from None
        if got < want:
            resp.close()
            raise Transient(f"{op}: the body ended after {got} of {want} bytes")
        resp.raw.release_conn()


def pieces_of_manifest(segments: Sequence[Mapping[str, object]], size: int) -> list[Piece] | None:
    """The pieces of an SLO manifest (``multipart-manifest=get``), None if it has ranges,
    nested manifests or does not add up to ``size`` (the proxy then assembles it)."""
    out: list[Piece] = []
    start = 0
    for seg in segments:
        name, nbytes = seg.get("name"), seg.get("bytes")
        if seg.get("range") or seg.get("sub_slo") or not isinstance(name, str) or not isinstance(nbytes, int):
            return None
        out.append(Piece(quote_path(name.lstrip("/")), start, nbytes))
        start += nbytes
    return out if start == size else None

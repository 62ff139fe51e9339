"""Streaming I/O of the Swift driver: the upload writer, the server-side copier and the
read-ahead reader.

The writer sends segments through the shared part uploader (:mod:`.chunked`): the
store's ``concurrency`` segment PUTs in flight, each from a buffer of its own and
resent on a transient failure, segment sizes growing so that the SLO's segment limit
still reaches the cluster's largest object. A stream that ends within its first
segment (and fits ``large_object_threshold``) is one plain PUT instead. Publishing
(the manifest or the plain object, ``If-None-Match: *``) waits for the create claim
(:mod:`.swift_claims`); any failure or abort deletes the segments written. A clone
within the account copies every piece of the source inside Swift into segments of
its own (``concurrency`` at a time, each retried) and publishes them the same way.

The reader maps a range onto the image's segments (an SLO's manifest or a DLO's
listing, read once) and keeps ``concurrency`` ranged GETs in flight; a connection
that breaks mid-body raises Transient so the facade resumes at the byte where the
stream stopped.
"""

from __future__ import annotations

import bisect
import functools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import requests
import urllib3

from ..errors import AlreadyExists, BackendError, Transient
from ..location import Location
from .chunked import ChunkedUploader, PartSizes, Pending, ReadAhead, ThreadParts, run_parts
from .swift_claims import IMAGE_TYPE, IMAGE_WRITER_TAG, WRITER_HEADER, Claim, new_token, segment_name, writer_of
from .swift_http import quote_path

if TYPE_CHECKING:
    from .swift import Place, SwiftDriver

__all__ = ["Piece", "SwiftCopy", "SwiftReader", "SwiftWriter", "pieces_of_manifest"]


@dataclass(frozen=True)
class _Segment:
    """A segment that was written: its name in the segments container, ETag and size."""

    name: str
    etag: str
    size: int


@dataclass(frozen=True)
class _Inline:
    """A stream that ended within its first segment: the bytes of a single PUT."""

    data: memoryview


class _Unknown(Exception):
    """The publish request failed without an answer: it may still land."""


class _Publisher:
    """What uploads and server-side copies share: the writer token, the claim, the
    non-overwriting publish and the removal of the segments on failure."""

    def __init__(self, driver: SwiftDriver, image_id: str) -> None:
        self._d = driver
        self._id = image_id
        self._place: Place = driver.place(image_id)
        self.token = new_token()
        self._state = "open"
        self._written = 0  # segment indexes that may exist: 0 .. _written - 1
        self.claim = Claim(driver.http, self._place.segments, image_id, self.token, driver.timing,
                           label=driver.name, published=lambda: driver.published(self._place, image_id))

    def _segment_path(self, index: int) -> str:
        return quote_path(self._place.segments, segment_name(self._id, self.token, index))

    def _put_segment(self, index: int, data: memoryview) -> _Segment:
        name = segment_name(self._id, self.token, index)
        op = f"PUT segment {index} of {self._id!r}"
        self._written = max(self._written, index + 1)
        resp = self._d.http.request("PUT", quote_path(self._place.segments, name), op=op, data=data,
                                    headers={"Content-Type": "application/octet-stream"})
        if resp.status_code != 201:
            raise self._d.http.error(resp, op, image=self._id)
        resp.close()
        return _Segment(name, resp.headers.get("Etag", "").strip('"'), len(data))

    def _publish(self, parts: Sequence[_Segment | _Inline], metadata: Mapping[str, str]) -> None:
        """PUT the manifest of ``parts`` (or the one inline buffer) with ``If-None-Match: *``."""
        headers = {**self._d.meta_headers(metadata), WRITER_HEADER: self.token, "If-None-Match": "*",
                   "Content-Type": f"{IMAGE_TYPE};{IMAGE_WRITER_TAG}={self.token}"}  # listings show the writer
        first = parts[0] if parts else _Inline(memoryview(b""))
        if isinstance(first, _Inline) and len(first.data) > self._d.threshold:
            parts = [self._put_segment(0, first.data)]  # over the threshold: a one-segment SLO
        params: dict[str, str] = {}
        if len(parts) == 1 and isinstance(parts[0], _Inline):
            body: bytes | memoryview = parts[0].data
        else:
            segments = [p for p in parts if isinstance(p, _Segment)]
            body = json.dumps([{"path": f"/{self._place.segments}/{s.name}", "etag": s.etag,
                                "size_bytes": s.size} for s in segments]).encode()
            params = {"multipart-manifest": "put"}
        op = f"publish {self._id!r}"
        path = quote_path(self._place.container, self._id)
        try:
            resp = self._d.http.request("PUT", path, op=op, headers=headers, params=params, data=body)
        except Transient as exc:
            if self._landed():
                return
            raise _Unknown(str(exc)) from None
        status = resp.status_code
        if status == 201:
            resp.close()
            return
        if status in (412, 202):
            resp.close()
            raise AlreadyExists("an image with this id exists", store=self._d.name, image=self._id)
        raise self._d.http.error(resp, op, image=self._id)

    def _landed(self) -> bool:
        """After a publish without an answer: whether our manifest (or object) is the one there."""
        try:
            resp = self._d.http.request("HEAD", quote_path(self._place.container, self._id),
                                        op=f"check the publish of {self._id!r}", headers={"X-Newest": "true"})
        except Transient:
            return False
        resp.close()
        return resp.status_code == 200 and writer_of(resp.headers) == self.token

    def _finish(self, parts: Sequence[_Segment | _Inline], metadata: Mapping[str, str]) -> Location:
        """Wait for the claim, publish, release; on failure remove what was written."""
        try:
            self.claim.acquire()
            self._publish(parts, metadata)
        except _Unknown as exc:
            self._state = "unknown"
            self.claim.abandon()
            self._closed()
            raise Transient(f"publishing {self._id!r}: {exc}; the outcome is unknown, sweep removes what is "
                            "left if it did not land") from None
        except BaseException:
            self.abort()
            raise
        self._state = "committed"
        self.claim.release()
        self._closed()
        return self._d.location_for(self._id)

    def _stop_parts(self) -> None:
        """Stop the part transfers still running (their results are thrown away)."""

    def _closed(self) -> None:
        """Release the threads."""

    def abort(self) -> None:
        """Stop the transfers, delete the segments written, end the claim; safe to call twice."""
        if self._state in ("aborted", "committed", "unknown"):
            return
        self._state = "aborted"
        try:
            self._stop_parts()
            names = [segment_name(self._id, self.token, i) for i in range(self._written)]
            self._d.delete_objects(self._place.segments, names, image=self._id)
        finally:
            self.claim.release()
            self._closed()


class SwiftWriter(_Publisher):
    """An upload of one image: segments (or one buffer), then a claimed, non-overwriting publish."""

    def __init__(self, driver: SwiftDriver, image_id: str, size: int | None) -> None:
        super().__init__(driver, image_id)
        # a known size within the threshold never fills its one buffer: finish() makes it one PUT
        sizes = PartSizes(size + 1) if size is not None and size <= driver.threshold else driver.part_sizes(image_id)
        workers = driver.concurrency
        self._pool = ThreadParts(workers, name="imagestore-swift-put")
        self._parts: ChunkedUploader[_Segment | _Inline] = ChunkedUploader(
            self._start, sizes, concurrency=workers, retries=driver.retries, backoff=driver.retry_backoff,
            memory_budget=workers * sizes.first, single=_Inline,
            label=f"store {driver.name!r}: upload of {image_id!r}")
        try:
            self.claim.start()
        except BaseException:
            self._pool.close()
            self.claim.release()
            raise

    def _start(self, index: int, offset: int, data: memoryview) -> Pending[_Segment | _Inline]:
        self._written = max(self._written, index + 1)
        return self._pool.run(self._put_segment, index, data)

    def write(self, data: memoryview | bytes | bytearray) -> None:
        """Append ``data`` (copied into segment buffers; blocks while every buffer is in flight)."""
        if self._state != "open":
            raise ValueError(f"write on a {self._state} upload")
        self.claim.check_alive()
        self._parts.write(data)

    def commit(self, metadata: Mapping[str, str]) -> Location:
        """Finish the segments, wait for the claim, publish without overwriting, release."""
        if self._state != "open":
            raise ValueError(f"commit on a {self._state} upload")
        self._state = "committing"
        try:
            parts = self._parts.finish()
        except BaseException:
            self.abort()
            raise
        return self._finish(parts, metadata)

    def _stop_parts(self) -> None:
        self._parts.abort()

    def _closed(self) -> None:
        self._pool.close()


class SwiftCopy(_Publisher):
    """A server-side copy into a new image: each piece copied inside Swift into a segment of
    its own, ``concurrency`` at a time and each retried, then published as the image's SLO."""

    def __init__(self, driver: SwiftDriver, image_id: str) -> None:
        super().__init__(driver, image_id)
        self.claim.start()

    def run(self, pieces: Sequence[Piece], metadata: Mapping[str, str]) -> Location:
        """Copy every piece into a segment of this image and publish them as its SLO."""
        try:
            parts: Sequence[_Segment | _Inline] = self._copy_all([p for p in pieces if p.size])
        except BaseException:
            self.abort()
            raise
        return self._finish(parts or [_Inline(memoryview(b""))], metadata)

    def _copy_one(self, index: int, piece: Piece) -> _Segment:
        op = f"copy segment {index} into {self._id!r}"
        resp = self._d.http.request("PUT", self._segment_path(index), op=op,
                                    headers={"X-Copy-From": f"/{piece.path}", "Content-Length": "0"}, data=b"")
        if resp.status_code != 201:
            raise self._d.http.error(resp, op, image=self._id)
        resp.close()
        return _Segment(segment_name(self._id, self.token, index), resp.headers.get("Etag", "").strip('"'),
                        piece.size)

    def _copy_all(self, pieces: Sequence[Piece]) -> list[_Segment]:
        """Every piece copied, ``concurrency`` in flight, each resent on Transient up to ``retries``."""
        self._written = len(pieces)
        pool = ThreadParts(self._d.concurrency, name="imagestore-swift-copy")
        try:
            starts: list[Callable[[], Pending[_Segment]]] = [
                functools.partial(pool.run, self._copy_one, i, piece) for i, piece in enumerate(pieces)]
            return run_parts(starts, concurrency=self._d.concurrency, retries=self._d.retries,
                             backoff=self._d.retry_backoff, label=f"store {self._d.name!r}: copy into {self._id!r}")
        finally:
            pool.close()


@dataclass(frozen=True)
class Piece:
    """A stretch of the image stored as one object: its path and where it starts in the image."""

    path: str
    start: int
    size: int


class SwiftReader(ReadAhead):
    """Reads ``[offset, offset + length)`` with ranged GETs of the pieces, ``depth`` in flight."""

    def __init__(self, driver: SwiftDriver, image: str, pieces: Sequence[Piece], offset: int, length: int) -> None:
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

"""The claimed, non-overwriting publish that uploads and server-side copies share: the
writer token, the create claim, the SLO manifest (or plain object) PUT with
``If-None-Match: *``, and the removal of the segments written when anything fails.

Publishing waits for the create claim (:mod:`.claims`); a publish without an answer is
checked with a HEAD and otherwise reported as an unknown outcome that sweep cleans up.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ...errors import AlreadyExists, Transient
from ...location import Location
from .claims import IMAGE_TYPE, IMAGE_WRITER_TAG, WRITER_HEADER, Claim, new_token, segment_name, writer_of
from .core import Place, SwiftCore, quote_path

__all__ = ["Inline", "Publisher", "Segment"]


@dataclass(frozen=True)
class Segment:
    """A segment that was written: its name in the segments container, ETag and size."""

    name: str
    etag: str
    size: int


@dataclass(frozen=True)
class Inline:
    """A stream that ended within its first segment: the bytes of a single PUT."""

    data: memoryview


class _Unknown(Exception):
    """The publish request failed without an answer: it may still land."""


class Publisher:
    """What uploads and server-side copies share: the writer token, the claim, the
    non-overwriting publish and the removal of the segments on failure."""

    def __init__(self, driver: SwiftCore, image_id: str) -> None:
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

    def _put_segment(self, index: int, data: memoryview) -> Segment:
        name = segment_name(self._id, self.token, index)
        op = f"PUT segment {index} of {self._id!r}"
        self._written = max(self._written, index + 1)
        resp = self._d.http.request("PUT", quote_path(self._place.segments, name), op=op, data=data,
                                    headers={"Content-Type": "application/octet-stream"})
        if resp.status_code != 201:
            raise self._d.http.error(resp, op, image=self._id)
        resp.close()
        return Segment(name, resp.headers.get("Etag", "").strip('"'), len(data))

    def _publish(self, parts: Sequence[Segment | Inline], metadata: Mapping[str, str]) -> None:
        """PUT the manifest of ``parts`` (or the one inline buffer) with ``If-None-Match: *``."""
        headers = {**self._d.meta_headers(metadata), WRITER_HEADER: self.token, "If-None-Match": "*",
                   "Content-Type": f"{IMAGE_TYPE};{IMAGE_WRITER_TAG}={self.token}"}  # listings show the writer
        first = parts[0] if parts else Inline(memoryview(b""))
        if isinstance(first, Inline) and len(first.data) > self._d.threshold:
            parts = [self._put_segment(0, first.data)]  # over the threshold: a one-segment SLO
        params: dict[str, str] = {}
        if len(parts) == 1 and isinstance(parts[0], Inline):
            body: bytes | memoryview = parts[0].data
        else:
            segments = [p for p in parts if isinstance(p, Segment)]
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

    def _finish(self, parts: Sequence[Segment | Inline], metadata: Mapping[str, str]) -> Location:
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

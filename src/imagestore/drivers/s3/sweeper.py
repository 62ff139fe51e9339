"""Sweeping an S3 store: dead writers' multipart uploads, unpublished data, stale leases, probes.

The liveness rule: an upload (multipart upload or data object of token T) is a
live writer's while the lease ``.imagestore/uploads/<id>/T`` was refreshed less
than ``stale_after`` seconds ago (two heartbeats plus the connect and read
timeouts a refresh may take), by the server's clock (the ``Date`` of the
lease's HEAD). Only uploads without a fresh lease and older than ``older_than``
are removed, and data only when the image's key does not hold a record naming
it (checked with a HEAD right before the delete). A writer takes its lease
before it writes and drops it only after it published or cleaned up, so data
listed before its lease is found stale is a dead (or finished) writer's.

One pass removes everything a dead writer can leave: its open upload, its data
(whether the id is free, or taken by an inline, final or foreign object, or by
a record naming other data), its lease, a probe object of an interrupted open.
An explicit sweep (no deadline) also finishes an add killed between its record
and its final copy (and turns records of earlier versions into final objects).

The pass walks the driver's subtree one listing page at a time (never the
images themselves) and checks ``deadline`` between pages and between requests;
a pass cut short by it leaves a cursor in the driver, so the next sweep goes on
from there instead of listing the same first pages again. moto reports every
multipart upload as initiated in 2010, so there liveness, not age, is what
protects a new upload.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ...spi.contract import SweepReport
from ...errors import NotFound
from .client import server_time
from .core import Layout, S3Store

__all__ = ["PHASES", "sweep"]

PHASES = ("uploads", "data", "leases", "probes")
"""The pass, in order: uploads and data before the leases that say whether they are alive."""


class _OutOfTime(Exception):
    """The deadline passed: the pass stops where it is (the cursor says where)."""


@dataclass
class _Cursor:
    """Where an interrupted pass goes on: the phase and the last key it finished there."""

    phase: str = PHASES[0]
    after: str = ""


class _Pass:
    """One sweep: the phases from the driver's cursor on, each a paged listing."""

    def __init__(self, d: S3Store, older_than: float, deadline: float | None) -> None:
        self.d, self.older_than, self.deadline = d, older_than, deadline
        self.report = SweepReport()
        self.cursor: _Cursor = getattr(d, "sweep_cursor", None) or _Cursor()
        self.progressed = False  # an item was handled: from then on the deadline stops the pass

    # -- time ---------------------------------------------------------------
    def tick(self) -> None:
        """Before a request: stop if the deadline passed, once this pass handled an item (so
        every pass gets somewhere, however small its budget)."""
        if self.progressed and self.deadline is not None and time.monotonic() > self.deadline:
            raise _OutOfTime

    def call(self, method: str, what: str, image: str | None = None, **params: Any) -> Any:
        self.tick()
        return self.d.client.call(method, what, image, **params)

    def done(self, phase: str, key: str) -> None:
        """``key`` of ``phase`` is handled: an interrupted pass goes on after it."""
        self.cursor = _Cursor(phase, key)
        self.progressed = True

    # -- the pass -------------------------------------------------------------
    def run(self) -> SweepReport:
        start = PHASES.index(self.cursor.phase)
        try:
            for phase in PHASES[start:]:
                after = self.cursor.after if phase == self.cursor.phase else ""
                self.cursor = _Cursor(phase, after)
                getattr(self, f"_{phase}")(after)
            self.cursor = _Cursor()
        except _OutOfTime:
            pass
        self.d.sweep_cursor = self.cursor
        return self.report

    def _pages(self, prefix: str, after: str) -> Iterator[tuple[list[dict[str, Any]], datetime]]:
        """The objects under ``prefix`` after key ``after``, one listing page at a time."""
        token: str | None = None
        while True:
            params: dict[str, Any] = {"Bucket": self.d.bucket, "Prefix": prefix}
            if token:
                params["ContinuationToken"] = token
            elif after:
                params["StartAfter"] = after
            resp = self.call("list_objects_v2", "list objects", **params)
            yield resp.get("Contents", []), server_time(resp)
            if not resp.get("IsTruncated"):
                return
            token = resp.get("NextContinuationToken")

    def _uploads(self, after: str) -> None:
        """Abort the multipart uploads of dead writers."""
        d = self.d
        marker: dict[str, Any] = {"KeyMarker": after} if after else {}
        while True:
            resp = self.call("list_multipart_uploads", "list multipart uploads", Bucket=d.bucket,
                             Prefix=d.layout.data_prefix, **marker)
            now = server_time(resp)
            for up in resp.get("Uploads", []):
                owner = Layout.split(up["Key"], d.layout.data_prefix)
                if owner is not None and (now - up["Initiated"]).total_seconds() >= self.older_than \
                        and not self._live(*owner):
                    try:
                        freed = self._upload_bytes(up["Key"], up["UploadId"])
                        self.call("abort_multipart_upload", "abort a dead upload", owner[0], Bucket=d.bucket,
                                  Key=up["Key"], UploadId=up["UploadId"])
                        self.report += SweepReport(1, freed)
                    except NotFound:
                        pass  # completed or aborted since it was listed
                self.done("uploads", up["Key"])  # data keys are unique: one upload per key
            if not resp.get("IsTruncated"):
                return
            marker = {"KeyMarker": resp.get("NextKeyMarker", ""), "UploadIdMarker": resp.get("NextUploadIdMarker", "")}

    def _upload_bytes(self, key: str, upload_id: str) -> int:
        """Bytes held by the parts of one upload."""
        total, marker = 0, 0
        while True:
            resp = self.call("list_parts", "list parts", Bucket=self.d.bucket, Key=key, UploadId=upload_id,
                             PartNumberMarker=marker)
            total += sum(int(p.get("Size", 0)) for p in resp.get("Parts", []))
            if not resp.get("IsTruncated"):
                return total
            marker = int(resp.get("NextPartNumberMarker", 0))

    def _data(self, after: str) -> None:
        """Delete data no record names, of writers without a live lease; finish dead records."""
        d = self.d
        for page, now in self._pages(d.layout.data_prefix, after):
            for obj in page:
                owner = Layout.split(obj["Key"], d.layout.data_prefix)
                if owner is not None and (now - obj["LastModified"]).total_seconds() >= self.older_than \
                        and not self._live(*owner):
                    self._dead_data(obj["Key"], owner[0], owner[1], int(obj.get("Size", 0)))
                self.done("data", obj["Key"])

    def _dead_data(self, key: str, image: str, token: str, size: int) -> None:
        """A dead writer's data: kept if the image's record names it (and then the record is
        finished into the image's final object by an explicit sweep), else deleted."""
        d = self.d
        self.tick()
        try:
            found = d.resolve(d.layout.image_key(image), image)
        except NotFound:
            found = None
        if found is not None and found.kind == "record" and found.token == token:
            if self.deadline is None:
                try:
                    d.finish_record(image, found)
                except NotFound:
                    pass  # deleted since it was read
            return
        self.call("delete_object", "delete dead data", image, Bucket=d.bucket, Key=key)
        self.report += SweepReport(1, size)

    def _live(self, image: str, token: str) -> bool:
        """Whether the writer of ``token`` is alive (its lease is fresh)."""
        self.tick()
        return self.d.lease_live(image, token)

    def _leases(self, after: str) -> None:
        """Delete the leases of dead writers."""
        self._stale("leases", self.d.layout.lease_prefix, after, "delete a dead writer's lease")

    def _probes(self, after: str) -> None:
        """Delete probe objects of opens that died between writing and removing them (an open
        takes two requests, each shorter than ``stale_after``)."""
        self._stale("probes", self.d.layout.probe_prefix, after, "delete a probe")

    def _stale(self, phase: str, prefix: str, after: str, what: str) -> None:
        """Delete the objects under ``prefix`` untouched for ``stale_after`` and ``older_than``."""
        d = self.d
        limit = max(self.older_than, d.stale_after)
        for page, now in self._pages(prefix, after):
            for obj in page:
                if (now - obj["LastModified"]).total_seconds() >= limit:
                    self.call("delete_object", what, Bucket=d.bucket, Key=obj["Key"])
                    self.report += SweepReport(1, 0)
                self.done(phase, obj["Key"])


def sweep(d: S3Store, older_than: float, deadline: float | None) -> SweepReport:
    """Remove what dead writers left; stops (with what it removed) once ``deadline`` passes,
    and the next sweep goes on from there."""
    return _Pass(d, older_than, deadline).run()

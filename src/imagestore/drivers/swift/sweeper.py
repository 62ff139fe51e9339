"""The sweep of the Swift driver: dead writers' segments and heartbeats, and lapsed claims,
found by walking each segments container beside its image container's listing.

A writer's objects go only once its heartbeat has expired, none is referenced by the
published image and the newest is older than ``older_than``; anything not named the way
the driver names objects is never touched.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from ...spi.contract import SweepReport
from ...errors import ImageStoreError, InvalidLocation, NotFound, Transient
from ...location import validate_image_id
from .claims import CLAIM, HEARTBEAT, IMAGE_WRITER_TAG, SEGMENT_RE, TOKEN_RE, parse_tag, writer_of
from .core import Place, SwiftCore, quote_path

__all__ = ["Sweeper"]

log = logging.getLogger("imagestore")


class Sweeper:
    """One sweep pass over the segments containers of a store."""

    def __init__(self, driver: SwiftCore) -> None:
        self._d = driver

    def _segment_containers(self) -> list[str]:
        if not self._d.seed:
            return [self._d.segment_container]
        found = []
        for row in self._d.listing("", prefix=f"{self._d.segment_container}_"):
            found.append(row["name"])
        return found

    def sweep(self, older_than: float, deadline: float | None = None) -> SweepReport:
        """Remove dead writers' segments and heartbeats (heartbeat expired, not referenced by
        the published image, newest part older than ``older_than``) and lapsed claims."""
        report = SweepReport()
        for container in self._segment_containers():
            report += self._sweep_container(container, older_than, deadline)
            if deadline is not None and time.monotonic() > deadline:
                break
        return report

    def _sweep_container(self, container: str, older_than: float, deadline: float | None) -> SweepReport:
        """One segments container, walked in name order beside its image container's listing:
        segments of the published image's writer are skipped without a request."""
        report = SweepReport()
        now = self._d.http.server_time()
        owners = _Owners(self._d.listing(self._image_container_of(container)))
        for image_id, rows in _by_image(self._d.listing(container)):
            if deadline is not None and time.monotonic() > deadline:
                break
            owner = owners.writer_of(image_id)
            writers: dict[str, list[dict[str, Any]]] = {}
            for row in rows:
                rest = row["name"][len(image_id) + 1:]
                if rest == CLAIM:
                    report += self._sweep_claim(container, row, now)
                    continue
                token, _, part = rest.partition("/")
                if TOKEN_RE.fullmatch(token) and (part == HEARTBEAT or SEGMENT_RE.fullmatch(part)):
                    writers.setdefault(token, []).append(row)  # anything else is not ours: never touched
            for token, own in writers.items():
                if token == owner:  # the published image's segments stay; a heartbeat its
                    report += self._sweep_owner_beat(container, image_id, own, now, older_than)
                    continue  # writer died before removing it has no use left
                try:
                    report += self._sweep_writer(container, image_id, token, own, now, older_than)
                except (Transient, ImageStoreError) as exc:
                    log.warning("store %s: sweeping upload %s of %s failed: %s", self._d.name, token, image_id, exc)
        return report

    def _sweep_claim(self, container: str, row: Mapping[str, Any], now: float) -> SweepReport:
        """Delete a claim whose lease has lapsed (only that one: ``X-If-Delete-At``)."""
        delete_at = parse_tag(str(row.get("content_type", ""))).get("delete_at", "")
        if not delete_at.isdigit() or int(delete_at) >= now - self._d.timing.margin:
            return SweepReport()
        resp = self._d.http.request("DELETE", quote_path(container, row["name"]), op="sweep a lapsed claim",
                                 headers={"X-If-Delete-At": delete_at})
        resp.close()
        return SweepReport(1, 0) if resp.status_code // 100 == 2 else SweepReport()

    def _sweep_owner_beat(self, container: str, image_id: str, rows: list[dict[str, Any]], now: float,
                          older_than: float) -> SweepReport:
        """The heartbeat left beside a published image's segments (writer killed once the
        manifest was in): deleted once older than ``older_than``; the segments never."""
        beats = [r for r in rows if r["name"].rpartition("/")[2] == HEARTBEAT and now - _row_time(r) >= older_than]
        if not beats:
            return SweepReport()
        return SweepReport(self._d.delete_objects(container, [r["name"] for r in beats], image=image_id), 0)

    def _sweep_writer(self, container: str, image_id: str, token: str, rows: list[dict[str, Any]], now: float,
                      older_than: float) -> SweepReport:
        """One writer's objects: kept while young, while its heartbeat lives, or if the image is its."""
        if now - max(_row_time(r) for r in rows) < older_than:
            return SweepReport()
        beat = self._d.http.request("HEAD", quote_path(container, f"{image_id}/{token}/{HEARTBEAT}"),
                                 op="sweep: heartbeat", headers={"X-Newest": "true"})
        beat.close()
        if beat.status_code == 200:
            return SweepReport()  # alive: it renews every third of writer_lease
        if beat.status_code != 404:
            raise self._d.http.error(beat, "sweep: heartbeat", image=image_id)
        try:
            validate_image_id(image_id)
            head = self._d.head(Place(self._image_container_of(container), container), image_id, newest=True)
            if writer_of(head.headers) == token:
                return SweepReport()  # just published (the listing had not caught up)
        except (NotFound, InvalidLocation):
            pass
        removed = self._d.delete_objects(container, [r["name"] for r in rows], image=image_id)
        return SweepReport(removed, sum(int(r.get("bytes", 0)) for r in rows))

    def _image_container_of(self, segments: str) -> str:
        """The image container whose segments container is ``segments``."""
        if segments == self._d.segment_container:
            return self._d.container
        return self._d.container + segments[len(self._d.segment_container):]



class _Owners:
    """The writer of each published image, from an image container listing read as far as needed
    (segment listings put ``img.x/`` before ``img/``, so rows already passed are remembered)."""

    def __init__(self, rows: Iterator[dict[str, Any]]) -> None:
        self._rows = rows
        self._seen: dict[str, str | None] = {}
        self._last = ""

    def writer_of(self, image_id: str) -> str | None:
        """The writer token of the published image ``image_id``, None if there is none."""
        while self._last < image_id or not self._last:
            row = next(self._rows, None)
            if row is None:
                break
            self._last = row["name"]
            self._seen[self._last] = parse_tag(str(row.get("content_type", ""))).get(IMAGE_WRITER_TAG)
        return self._seen.get(image_id)


def _by_image(rows: Iterator[dict[str, Any]]) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """Listing rows ``ID/...`` grouped by ID (a listing keeps them together, in name order)."""
    current: str | None = None
    group: list[dict[str, Any]] = []
    for row in rows:
        image_id, sep, _ = row["name"].partition("/")
        if not sep:
            continue  # not one of ours
        if image_id != current and group:
            yield current or "", group
            group = []
        current = image_id
        group.append(row)
    if group and current is not None:
        yield current, group


def _row_time(row: Mapping[str, Any]) -> float:
    """A listing row's last-modified time, in seconds since the epoch (UTC)."""
    text = str(row.get("last_modified", ""))
    try:
        return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()
    except ValueError:
        return 0.0


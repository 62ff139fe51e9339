"""Publishing an image id in Swift exactly once: the create claim, and the heartbeat that
tells ``sweep`` a writer is alive.

Swift has no atomic create. ``If-None-Match: *`` is checked when a PUT arrives, before
its body, so PUTs of one name that overlap all succeed and the one with the newest
timestamp stays. What Swift does order: an object holds the write with the newest
timestamp (a register), a PUT that arrives once an object has landed gets 412, and a
HEAD with ``X-Newest`` sees the newest write that landed. On that, each id has a
*claim* object, taken the way Fischer's timed mutual exclusion works:

1. PUT the claim with ``If-None-Match: *``, a writer token and an expiry (the lease),
   and count the claim only if the answer (201) came within ``window`` seconds of
   sending it. 412 (or 202: a newer timestamp is there) means someone holds it.
2. ``window`` seconds after that answer, HEAD the claim: only if it still names our
   token do we hold it. Any other PUT that also passed the check arrived before ours
   landed and, being counted only if it completed within ``window``, landed before
   we look; of such writes the newest-timestamp one is what both HEADs see, so at
   most one writer holds the claim. (Writes that took longer are never counted; they
   can only make a claimant lose.)
3. The holder renews the lease (POST) every third of it, publishes the image with
   ``If-None-Match: *`` (nobody else publishes while it holds the claim), and then
   deletes the claim (``X-If-Delete-At`` names its lease, so a later claim survives).

A writer that does not hold the claim still uploads; at commit it waits until the
claim goes away: then either the image exists (AlreadyExists), or the holder died or
gave up and it claims in turn. A holder seen renewing means another upload of the id
is alive: AlreadyExists. The claim is taken when the upload starts, so the
``window`` wait overlaps the upload and costs only small images anything.

Every writer also keeps a heartbeat object beside its segments, renewed with the
claim: ``sweep`` removes a writer's segments only once its heartbeat has expired.

Layout in the segments container: ``ID/claim``, ``ID/TOKEN/live``, ``ID/TOKEN/00000000``...
The claim's and heartbeat's Content-Type carry the writer and the expiry, and a
published image's Content-Type its writer (``;imagestore_writer=TOKEN``), so listings
tell sweep which segments belong to an image and which claims have lapsed.
"""

from __future__ import annotations

import logging
import re
import secrets
import threading
import time
from collections.abc import Callable

from ...errors import AlreadyExists, ImageStoreError, NotFound, Transient
from ...spi.trace import traced
from .core import Http, Timing, quote_path

__all__ = ["CLAIM", "HEARTBEAT", "IMAGE_TYPE", "IMAGE_WRITER_TAG", "SEGMENT_RE", "TOKEN_RE", "Claim",
           "new_token", "parse_tag", "segment_name", "writer_of"]

log = logging.getLogger("imagestore")

CLAIM = "claim"
HEARTBEAT = "live"
WRITER_HEADER = "X-Object-Meta-Imagestore-Writer"
CLAIM_TYPE = "application/x-imagestore-claim"
IMAGE_TYPE = "application/octet-stream"
IMAGE_WRITER_TAG = "imagestore_writer"  # Content-Type parameter of a published image: its writer
HEARTBEAT_TYPE = "application/x-imagestore-live"
_TAG_RE = re.compile(r";\s*([a-z_]+)=([A-Za-z0-9._-]+)")
TOKEN_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{16}")
"""What :func:`new_token` makes: sweep touches no object of another naming."""
SEGMENT_RE = re.compile(r"[0-9]{8}")
_POLL = 0.25  # seconds between looks at a claim someone else holds


def new_token() -> str:
    """A writer's token: hex seconds since the epoch and 64 random bits (unique, sortable)."""
    return f"{int(time.time()):08x}-{secrets.token_hex(8)}"


def segment_name(image_id: str, token: str, index: int) -> str:
    """The object name of segment ``index`` of a writer's upload."""
    return f"{image_id}/{token}/{index:08d}"


def parse_tag(content_type: str) -> dict[str, str]:
    """The ``;key=value`` parameters of a claim or heartbeat Content-Type."""
    return dict(_TAG_RE.findall(content_type or ""))


def writer_of(headers: dict[str, str] | object) -> str | None:
    """The writer token an object's headers name (a manifest, a claim), if any."""
    get = getattr(headers, "get", None)
    return get(WRITER_HEADER) if get is not None else None


class Claim:
    """One writer's claim on an image id and its heartbeat, renewed by a background thread.

    ``start`` writes the heartbeat and tries the claim; ``acquire`` (at commit) returns
    once the writer holds the claim, or raises AlreadyExists; ``release`` ends both.
    """

    def __init__(self, http: Http, container: str, image_id: str, token: str, timing: Timing, *,
                 label: str, published: Callable[[], bool]) -> None:
        self.http = http
        self.container = container
        self.image_id = image_id
        self.token = token
        self.timing = timing
        self.label = label
        self._published = published
        self._claim_path = quote_path(container, f"{image_id}/{CLAIM}")
        self._beat_path = quote_path(container, f"{image_id}/{token}/{HEARTBEAT}")
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.state = "new"  # pending | held | waiting | released
        self._confirm_at = 0.0
        self._claim_until = 0.0  # monotonic: our lease on the claim is safe until then
        self._claim_delete_at = 0
        self._beat_until = 0.0
        self.dead: str | None = None  # why the heartbeat or the claim was lost
        self.waited = 0.0
        """Seconds ``acquire`` spent waiting for another writer's claim."""

    # ------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Write the heartbeat (failures raise) and try the claim (failures mean: not holder)."""
        with traced("claim"):
            self._beat(create=True)
            self._try_claim()
        self._thread = threading.Thread(target=self._run, name=f"imagestore-lease-{self.image_id}", daemon=True)
        self._thread.start()

    def acquire(self) -> None:
        """Return once this writer holds the claim; AlreadyExists if the id is (being) published."""
        with traced("claim_confirm"):
            with self._lock:
                delay = self._confirm_at - time.monotonic() if self.state == "pending" else 0.0
            if delay > 0:
                time.sleep(delay)
            self._confirm()
            started = time.monotonic()
            try:
                self._wait_for_claim()
            finally:
                self.waited = time.monotonic() - started
            self.check_alive()

    def release(self) -> None:
        """Stop renewing; delete the claim (if held) and the heartbeat. Never raises."""
        self._halt()
        with self._lock:
            delay = self._confirm_at - time.monotonic() if self.state == "pending" else 0.0
        if delay > 0:  # the claim may be ours: learn whether before deleting it
            time.sleep(delay)
        try:
            self._confirm()
        except (ImageStoreError, Transient):
            pass  # unknown: it expires by itself
        with self._lock:
            held, delete_at = self.state == "held", self._claim_delete_at
            self.state = "released"
        if held:
            self._quietly("DELETE", self._claim_path, {"X-If-Delete-At": str(delete_at)})
        self._quietly("DELETE", self._beat_path, {})

    def abandon(self) -> None:
        """Stop renewing and delete nothing: what was published is unknown; sweep decides later."""
        self._halt()
        with self._lock:
            self.state = "released"

    def _halt(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=self.timing.lease)

    # ------------------------------------------------------------ the claim
    def _expiry(self) -> tuple[int, float]:
        """An ``X-Delete-At`` one lease from now (proxy clock), and until when (monotonic) it is safe."""
        sent = time.monotonic()
        delete_at = int(self.http.server_time() + self.timing.lease)
        safe = sent + (delete_at - self.http.server_time()) - self.timing.margin
        return delete_at, safe

    def _claim_headers(self, delete_at: int) -> dict[str, str]:
        return {"X-Delete-At": str(delete_at), WRITER_HEADER: self.token,
                "Content-Type": f"{CLAIM_TYPE};writer={self.token};delete_at={delete_at}"}

    def _try_claim(self) -> bool:
        """One timed PUT of the claim; True if it counts (201 within the window)."""
        window = self.timing.window
        delete_at, safe = self._expiry()
        sent = time.monotonic()
        try:
            resp = self.http.request("PUT", self._claim_path, op=f"claim of {self.image_id!r}",
                                     headers={**self._claim_headers(delete_at), "If-None-Match": "*",
                                              "Content-Length": "0"},
                                     data=b"", timeout=(window, window))
        except Transient as exc:
            log.debug("store %s: claim of %s failed (%s); waiting for the claim", self.label, self.image_id, exc)
            with self._lock:
                self.state = "waiting"
            return False
        took = time.monotonic() - sent
        status = resp.status_code
        resp.close()
        with self._lock:
            if status == 201 and took <= window:
                self.state = "pending"
                self._confirm_at = time.monotonic() + window
                self._claim_until, self._claim_delete_at = safe, delete_at
                return True
            if status == 201:
                log.warning("store %s: the claim of %s took %.2fs (> create_window %.2fs); not counted",
                            self.label, self.image_id, took, window)
            elif status not in (412, 202):
                raise self.http.error(resp, f"claim of {self.image_id!r}", image=self.image_id)
            self.state = "waiting"
            return False

    def _look(self) -> tuple[str, int] | None:
        """(writer, expiry) of the claim as the newest landed write says, None if there is none."""
        resp = self.http.request("HEAD", self._claim_path, op=f"claim of {self.image_id!r}",
                                 headers={"X-Newest": "true"})
        resp.close()
        if resp.status_code == 404:
            return None
        if resp.status_code != 200:
            raise self.http.error(resp, f"claim of {self.image_id!r}", image=self.image_id)
        tag = parse_tag(resp.headers.get("Content-Type", ""))
        writer = resp.headers.get(WRITER_HEADER) or tag.get("writer", "")
        try:
            delete_at = int(resp.headers.get("X-Delete-At") or tag.get("delete_at", "0"))
        except ValueError:
            delete_at = 0
        return writer, delete_at

    def _confirm(self) -> None:
        """Step 2: after the window, the claim is ours only if it still names our token."""
        with self._lock:
            if self.state != "pending":
                return
            try:
                seen = self._look()
            except Transient:
                if time.monotonic() > self._claim_until:
                    self.state = "waiting"
                return
            self.state = "held" if seen is not None and seen[0] == self.token else "waiting"
            if self.state == "waiting":
                log.debug("store %s: another writer's claim of %s won", self.label, self.image_id)

    def _wait_for_claim(self) -> None:
        """Until we hold the claim: AlreadyExists once the image exists or a live holder renews."""
        first: tuple[str, int] | None = None
        give_up = time.monotonic() + self.timing.lease + 4 * self.timing.window + 30
        while True:
            with self._lock:
                if self.state == "pending":
                    self._confirm()
                if self.state == "held":
                    return
            self.check_alive()
            seen = self._look()
            if seen is None:
                if self._published():
                    raise AlreadyExists("an image with this id exists", store=self.label, image=self.image_id)
                if self._try_claim():
                    time.sleep(self.timing.window)
                    self._confirm()
                continue
            writer, delete_at = seen
            if first is None or first[0] != writer:
                first = seen
            elif writer != self.token and delete_at > first[1]:
                if self._published():
                    raise AlreadyExists("an image with this id exists", store=self.label, image=self.image_id)
                raise AlreadyExists("another upload of this id is in progress", store=self.label,
                                    image=self.image_id)
            if time.monotonic() > give_up:
                raise Transient(f"the claim of {self.image_id!r} neither expired nor was renewed in time")
            time.sleep(_POLL)

    # ------------------------------------------------------------ renewals
    def _beat(self, create: bool = False) -> None:
        delete_at, safe = self._expiry()
        headers = {"X-Delete-At": str(delete_at), WRITER_HEADER: self.token,
                   "Content-Type": f"{HEARTBEAT_TYPE};writer={self.token};delete_at={delete_at}"}
        method = "PUT" if create else "POST"
        resp = self.http.request(method, self._beat_path, op=f"heartbeat of the upload of {self.image_id!r}",
                                 headers={**headers, "Content-Length": "0"} if create else headers,
                                 data=b"" if create else None)
        resp.close()
        if resp.status_code in (201, 202, 204):
            with self._lock:
                self._beat_until = safe
            return
        if resp.status_code == 404 and not create:
            with self._lock:
                self.dead = "its heartbeat expired (the writer stalled longer than writer_lease) and was swept"
            return
        raise self.http.error(resp, f"heartbeat of the upload of {self.image_id!r}", image=self.image_id)

    def _renew_claim(self) -> None:
        delete_at, safe = self._expiry()
        resp = self.http.request("POST", self._claim_path, op=f"claim of {self.image_id!r}",
                                 headers=self._claim_headers(delete_at))
        resp.close()
        with self._lock:
            if resp.status_code == 202:
                self._claim_until, self._claim_delete_at = safe, delete_at
            elif resp.status_code in (404, 409, 412):
                self.dead = "its claim lapsed before it was renewed"

    def _run(self) -> None:
        """The lease thread: confirm the claim after the window, renew both every third of a lease."""
        next_beat = time.monotonic() + self.timing.renew_every
        while not self._stop.is_set():
            with self._lock:
                wake = min(next_beat, self._confirm_at) if self.state == "pending" else next_beat
            if self._stop.wait(max(0.0, wake - time.monotonic())):
                return
            with self._lock:
                pending = self.state == "pending" and time.monotonic() >= self._confirm_at
            if pending:
                try:
                    self._confirm()
                except (ImageStoreError, Transient) as exc:
                    log.warning("store %s: checking the claim of %s failed (%s)", self.label, self.image_id, exc)
            if time.monotonic() < next_beat:
                continue
            try:
                self._beat()
                with self._lock:
                    held = self.state == "held"
                if held:
                    self._renew_claim()
                next_beat = time.monotonic() + self.timing.renew_every
            except (ImageStoreError, Transient) as exc:
                log.warning("store %s: renewing the lease of the upload of %s failed (%s); retrying",
                            self.label, self.image_id, exc)
                next_beat = time.monotonic() + 1.0
                with self._lock:
                    if time.monotonic() > self._beat_until and self.dead is None:
                        self.dead = "its heartbeat could not be renewed in time"

    def check_alive(self) -> None:
        """Raise Transient once this writer may no longer publish (lost heartbeat or claim)."""
        with self._lock:
            dead = self.dead
            if dead is None and time.monotonic() > self._beat_until:
                dead = "its heartbeat could not be renewed in time"
            if dead is None and self.state == "held" and time.monotonic() > self._claim_until:
                dead = "its claim lapsed before it was renewed"
        if dead is not None:
            raise Transient(f"the upload of {self.image_id!r} lost its lease: {dead}")

    def _quietly(self, method: str, path: str, headers: dict[str, str]) -> None:
        try:
            self.http.request(method, path, op=f"cleanup of {self.image_id!r}", headers=headers).close()
        except (Transient, ImageStoreError, NotFound) as exc:
            log.debug("store %s: %s %s failed (%s); it expires by itself", self.label, method, path, exc)

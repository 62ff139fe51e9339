"""The lease of a live S3 upload: an object its writer refreshes every ``heartbeat`` seconds.

Writers and server-side copies hold one while their data is unpublished; ``sweep`` (:mod:`.sweeper`)
leaves alone every upload whose lease is fresh.
"""

from __future__ import annotations

import json
import logging
import threading

from .core import S3Store

__all__ = ["Lease"]

log = logging.getLogger("imagestore")


class Lease:
    """A live writer's mark: an object refreshed every ``heartbeat`` seconds until released.

    ``sweep`` leaves alone every upload whose lease was refreshed within the driver's
    ``stale_after`` (two heartbeats plus the connect and read timeouts a refresh may take,
    by the server's clock), and removes dead writers' leftovers once old enough.
    """

    def __init__(self, driver: S3Store, image_id: str, token: str) -> None:
        self._d = driver
        self.key = driver.layout.lease_key(image_id, token)
        self._body = json.dumps({"image": image_id, "token": token}).encode()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._image = image_id

    def _put(self) -> None:
        self._d.client.call("put_object", "put the upload lease", self._image, Bucket=self._d.bucket, Key=self.key,
                            Body=self._body, ContentType="application/json")

    def start(self) -> None:
        """Write the lease (retried like a part) and start refreshing it."""
        self._d.retrying(self._put, "put the upload lease")
        self._thread = threading.Thread(target=self._beat, name="imagestore-s3-lease", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self._d.heartbeat):
            try:
                self._put()
            except Exception as exc:  # noqa: BLE001 - a missed beat is retried at the next one
                log.warning("store %s: refreshing the lease of an upload of %s failed: %s", self._d.name,
                            self._image, exc)

    def release(self) -> None:
        """Stop refreshing and delete the lease (a failure leaves it to go stale; sweep removes it)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        try:
            self._d.retrying(lambda: self._d.client.call("delete_object", "delete the upload lease", self._image,
                                                         Bucket=self._d.bucket, Key=self.key),
                             "delete the upload lease")
        except Exception as exc:  # noqa: BLE001 - a lease left behind goes stale and is swept
            log.warning("store %s: deleting the lease of an upload of %s failed: %s", self._d.name, self._image, exc)


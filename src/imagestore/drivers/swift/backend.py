"""OpenStack Swift driver: images as objects or Static Large Objects in one account.

An image ``ID`` is the object ``CONTAINER/ID``: a plain object up to
``large_object_threshold``, otherwise (and for a stream of unknown size that outgrows
its first segment) an SLO whose segments ``ID/TOKEN/00000000``... live in the segments
container and belong to that manifest alone (``TOKEN`` names the writer). The facade's
metadata rides on the object as ``X-Object-Meta-Image-*`` headers. Publishing never
overwrites: see :mod:`.claims` for the create claim that makes concurrent adds of
one id have exactly one winner. Clones within the account copy every segment inside
Swift, so a clone and its source never share a segment and deleting either leaves the
other whole. ``locate`` signs a TempURL with the account's Temp-URL key. Images that
glance_store wrote (plain objects and DLOs, ``X-Object-Manifest``) read through the
store like its own.

Needs python-swiftclient (``pip install 'imagestore[swift]'``); Keystone v3 also
needs keystoneauth1, loaded only when ``auth_version = "3"``.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import quote, unquote, urlsplit

from swiftclient.utils import generate_temp_url

from ...spi.capabilities import Capabilities
from ...spi.options import Secret, parse_duration, parse_size
from ...spi.contract import ClonePlan, CloneRequest, DeleteOutcome, DriverContext, Option, Stored, SweepReport
from ...errors import (
    AlreadyExists,
    ConfigError,
    InvalidLocation,
    NotFound,
    PermissionDenied,
    Transient,
    Unsupported,
)
from ...location import DirectAccess, Location, validate_image_id
from ...results import CloneRefusal
from ...spi.driver import Driver
from ...spi.parts import PartSizes, ThreadParts
from ...spi.retry import RetryPolicy, Timeouts
from .auth import KeystoneAuth, SwiftAuth, TempAuth, V3Scope
from .claims import writer_of
from .copier import SwiftCopy
from .core import (
    DEFAULT_MAX_FILE,
    META_PREFIX,
    TOKEN_LEN,
    MiB,
    Piece,
    Place,
    Timing,
    container_name,
    dec_key,
    enc_key,
    grow_every,
    quote_path,
)
from .http import Response, SwiftHttp
from .reader import SwiftReader, pieces_of_manifest
from .sweeper import Sweeper
from .writer import SwiftWriter

__all__ = ["Place", "SwiftDriver"]

log = logging.getLogger("imagestore")


def _endpoint(storage_url: str) -> str:
    """A storage URL without its account (``http://h:8080/v1/AUTH_x`` -> ``http://h:8080/v1``)."""
    return storage_url.rstrip("/").rpartition("/")[0]


class SwiftDriver(Driver):
    """Images in containers of one Swift account, reached through one pooled HTTP session."""

    scheme: ClassVar[str] = "swift"
    OPTIONS: ClassVar[Mapping[str, Option]] = {
        "auth_url": Option(str, required=True, help="v1 auth URL (.../auth/v1.0) or Keystone v3 URL (.../v3)"),
        "auth_version": Option((str, int), default="1", help='"1" (tempauth and friends) or "3" (Keystone)'),
        "user": Option(str, required=True, help="v1: account:user; v3: the user name"),
        "key": Option(str, secret=True, help="v1 key (or use password)"),
        "password": Option(str, secret=True, help="v3 password (or use key)"),
        "project_name": Option(str, help="v3 project (or project_id)"),
        "project_id": Option(str, help="v3 project id"),
        "project_domain_name": Option(str, help="v3 domain of the project (or project_domain_id)"),
        "project_domain_id": Option(str, help="v3 domain id of the project"),
        "user_domain_name": Option(str, help="v3 domain of the user (or user_domain_id)"),
        "user_domain_id": Option(str, help="v3 domain id of the user"),
        "region": Option(str, help="v3: region of the object-store endpoint"),
        "interface": Option(str, default="public", choices=("public", "internal", "admin"),
                            help="v3: which catalog endpoint"),
        "storage_url": Option(str, help="use this storage URL instead of the one auth returns"),
        "cacert": Option(str, help="CA bundle for https"),
        "insecure": Option(bool, default=False, help="do not verify https certificates"),
        "container": Option(str, default="images", help="container of the images"),
        "segment_container": Option(str, help="container of the SLO segments (default CONTAINER_segments)"),
        "container_seed": Option(int, default=0,
                                 help="spread images over containers named after the first N id characters (0-32)"),
        "create_container": Option(bool, default=True, help="create missing containers"),
        "segment_size": Option((int, str), default="32M", help="first SLO segment size; later ones double"),
        "max_segment_size": Option((int, str), help="largest segment (default: the cluster's max_file_size)"),
        "large_object_threshold": Option((int, str), help="largest image sent as one PUT (default segment_size)"),
        "temp_url_key": Option(str, secret=True, help="the account's Temp-URL key: enables locate() URLs"),
        "set_temp_url_key": Option(bool, default=False,
                                   help="write temp_url_key into a free Temp-URL key slot of the account "
                                        "when it has no such key (opening never changes the account otherwise)"),
        "temp_url_digest": Option(str, default="sha256", choices=("sha1", "sha256", "sha512"),
                                  help="TempURL signature digest"),
        "presign_ttl": Option((int, float, str), default="1h", help="validity of a locate() URL without ttl"),
        "read_timeout": Option((int, float), default=None,
                               help="seconds to wait for an answer or body bytes (default: the store's io_timeout)"),
        "create_window": Option((int, float, str), default="2s",
                                help="longest counted claim PUT; the same for every writer of a container"),
        "writer_lease": Option((int, float, str), default="30s",
                               help="life of an unrenewed claim or heartbeat (renewed every third)"),
        "location_aliases": Option(list, default=None,
                                   help="other location hosts meaning this store (glance swift+config references)"),
    }
    default_concurrency: ClassVar[int] = 4
    """Segment PUTs (and ranged GETs) in flight when the store sets no ``concurrency``."""

    def __init__(
        self,
        name: str,
        *,
        auth_url: str,
        user: str,
        auth_version: str | int = "1",
        key: Secret | None = None,
        password: Secret | None = None,
        project_name: str | None = None,
        project_id: str | None = None,
        project_domain_name: str | None = None,
        project_domain_id: str | None = None,
        user_domain_name: str | None = None,
        user_domain_id: str | None = None,
        region: str | None = None,
        interface: str = "public",
        storage_url: str | None = None,
        cacert: str | None = None,
        insecure: bool = False,
        container: str = "images",
        segment_container: str | None = None,
        container_seed: int = 0,
        create_container: bool = True,
        segment_size: int | str = "32M",
        max_segment_size: int | str | None = None,
        large_object_threshold: int | str | None = None,
        temp_url_key: Secret | None = None,
        set_temp_url_key: bool = False,
        temp_url_digest: str = "sha256",
        presign_ttl: float | str = "1h",
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
        create_window: float | str = "2s",
        writer_lease: float | str = "30s",
        location_aliases: list[str] | None = None,
    ) -> None:
        super().__init__(name)
        k = f"stores.{name}"
        parts = urlsplit(auth_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(f"expected an http(s) URL, got {auth_url!r}", key=f"{k}.auth_url")
        version = str(auth_version)
        if version not in ("1", "3"):
            raise ConfigError(f'must be "1" or "3", got {auth_version!r}', key=f"{k}.auth_version")
        if (key is None) == (password is None):
            raise ConfigError("give exactly one of key and password", key=f"{k}.key")
        secret = key if key is not None else password
        assert secret is not None
        if not 0 <= container_seed <= 32:
            raise ConfigError(f"must be between 0 and 32, got {container_seed}", key=f"{k}.container_seed")
        self.container = container_name(container, f"{k}.container")
        segments = f"{container}_segments" if segment_container is None else segment_container
        self.segment_container = container_name(segments, f"{k}.segment_container")
        if self.segment_container == self.container:
            raise ConfigError("must differ from container", key=f"{k}.segment_container")
        self.seed = container_seed
        self.create_container = create_container
        self.segment_size = parse_size(segment_size, f"{k}.segment_size")
        if self.segment_size < 64 << 10:
            raise ConfigError("must be at least 64K", key=f"{k}.segment_size")
        self.max_segment_size = (parse_size(max_segment_size, f"{k}.max_segment_size")
                                 if max_segment_size is not None else None)
        self.configured_threshold = (parse_size(large_object_threshold, f"{k}.large_object_threshold")
                                     if large_object_threshold is not None else self.segment_size)
        if set_temp_url_key and temp_url_key is None:
            raise ConfigError("needs temp_url_key (the key to set)", key=f"{k}.set_temp_url_key")
        self.temp_url_key = temp_url_key
        self.set_temp_url_key = set_temp_url_key
        self.temp_url_digest = temp_url_digest
        self.presign_ttl = parse_duration(presign_ttl, f"{k}.presign_ttl")
        if self.presign_ttl <= 0:
            raise ConfigError("must be positive", key=f"{k}.presign_ttl")
        for opt, value in (("connect_timeout", connect_timeout), ("read_timeout", read_timeout)):
            if value is not None and not value > 0:
                raise ConfigError("must be positive", key=f"{k}.{opt}")
        self._timeouts = (connect_timeout, read_timeout)
        window = parse_duration(create_window, f"{k}.create_window")
        lease = parse_duration(writer_lease, f"{k}.writer_lease")
        if not window > 0:
            raise ConfigError("must be positive", key=f"{k}.create_window")
        if lease < max(6.0, 3 * window):
            raise ConfigError("must be at least 6s and three create_window", key=f"{k}.writer_lease")
        self.timing = Timing(window=window, lease=lease)
        self.auth_url = auth_url
        self.auth_version = version
        self.user = user
        verify: bool | str = cacert if cacert else not insecure
        timeout = self._apply_timeouts(Timeouts())
        if version == "1":
            self.auth: SwiftAuth = TempAuth(auth_url, user, secret, label=name, verify=verify, timeout=timeout,
                                            storage_url=storage_url)
        else:
            scope = V3Scope(project_name=project_name, project_id=project_id,
                            project_domain_name=project_domain_name, project_domain_id=project_domain_id,
                            user_domain_name=user_domain_name, user_domain_id=user_domain_id, region=region,
                            interface=interface)
            if not (project_name or project_id):
                raise ConfigError("Keystone v3 needs project_name or project_id", key=f"{k}.project_name")
            self.auth = KeystoneAuth(auth_url, user, secret, scope, label=name, verify=verify, timeout=timeout,
                                     storage_url=storage_url)
        self.host = parts.netloc
        self.aliases = frozenset(location_aliases or ())
        self.concurrency = self.default_concurrency
        self.retry = RetryPolicy()
        self.read_piece = 4 * MiB
        self.http = SwiftHttp(self.auth, pool=2 * self.default_concurrency + 4, connect_timeout=timeout[0],
                              read_timeout=timeout[1], verify=verify, label=name)
        # limits, known once open() asked the cluster
        self.threshold = self.configured_threshold
        self.max_file_size = DEFAULT_MAX_FILE
        self.max_parts = 1000
        self.max_manifest_size = 8 * MiB
        self.largest = self.segment_size
        self.first = self.segment_size
        self.grow_every = 0
        self.bulk_delete = False
        self.presign = False
        self.presign_reason = "no temp_url_key configured" if temp_url_key is None else "not checked yet"
        self._ready: set[str] = set()
        self._ready_lock = threading.Lock()

    def _apply_timeouts(self, timeouts: Timeouts) -> tuple[float, float]:
        """(connect, read) seconds for requests: this driver's own values, else the store's."""
        mine = timeouts.override(*self._timeouts)
        return mine.connect, mine.io

    # ------------------------------------------------------------ lifecycle
    def open(self, context: DriverContext) -> Capabilities:
        """Authenticate, read the cluster's limits, make the containers, check the TempURL key."""
        self.concurrency = context.concurrency or self.default_concurrency
        self.retry = context.retry
        self.read_piece = max(MiB, context.chunk_size)
        timeout = self._apply_timeouts(context.timeouts)
        self.auth.use_timeout(timeout)
        self.http.close()
        self.http = SwiftHttp(self.auth, pool=2 * self.concurrency + 4, connect_timeout=timeout[0],
                              read_timeout=timeout[1], verify=self.http.verify, label=self.name)
        account = self.http.request("HEAD", "", op="HEAD account")
        account.close()
        if account.status_code // 100 != 2:
            raise self.http.error(account, "HEAD account")
        self._limits(self.http.info())
        if not self.seed:
            self.ensure(self.place("x"))
        if self.temp_url_key is not None:
            self.presign, self.presign_reason = self._check_temp_url_key(account)
            if not self.presign:
                log.warning("store %s: locate() gives no URLs: %s", self.name, self.presign_reason)
        return Capabilities(
            write=True,
            range_read=True,
            cow_clone=False,
            server_copy=True,
            direct_access=self.presign,
            presign=self.presign,
            atomic_create=True,
            unknown_size=True,
            deferred_delete=False,
            persistent=True,
            metadata_update=True,
            max_object_size=self.max_object_size(),
        )

    def _limits(self, info: Mapping[str, Any]) -> None:
        """Segment sizes and counts from the cluster's ``/info`` (Swift's defaults if it hides them)."""
        swift = info.get("swift") or {}
        slo = info.get("slo")
        self.max_file_size = int(swift.get("max_file_size", DEFAULT_MAX_FILE))
        self.bulk_delete = "bulk_delete" in info
        self.threshold = min(self.configured_threshold, self.max_file_size)
        self.largest = min(self.max_segment_size or self.max_file_size, self.max_file_size)
        self.first = min(self.segment_size, self.largest)
        if isinstance(slo, Mapping):
            self.max_parts = int(slo.get("max_manifest_segments", 1000))
            self.max_manifest_size = int(slo.get("max_manifest_size", 8 * MiB))
        else:
            self.max_parts = 0  # no SLO middleware: every image is one PUT
        self.grow_every = grow_every(self.first, self.largest, self._parts_for(255))

    def _parts_for(self, id_length: int) -> int:
        """Segments a manifest of an id this long may list (count and manifest-size limits)."""
        if not self.max_parts:
            return 0
        path = f"/{self.segment_container}{'_' + 'x' * self.seed if self.seed else ''}/{'x' * id_length}/" \
               f"{'x' * TOKEN_LEN}/00000000"
        entry = len(json.dumps({"path": path, "etag": "0" * 32, "size_bytes": self.largest})) + 2
        return max(1, min(self.max_parts, (self.max_manifest_size - 2) // entry))

    def part_sizes(self, image_id: str) -> PartSizes:
        """The segment sizes of an upload of ``image_id``."""
        parts = self._parts_for(len(image_id))
        return PartSizes(self.first, grow_every=self.grow_every, largest=self.largest, max_parts=parts or 1)

    def max_object_size(self) -> int:
        """The largest image this store takes (an SLO of the longest id, or one PUT)."""
        if not self.max_parts:
            return self.threshold
        cap = PartSizes(self.first, grow_every=self.grow_every, largest=self.largest,
                        max_parts=self._parts_for(255)).capacity() or 0
        return max(cap, self.threshold)

    def _check_temp_url_key(self, account: Response) -> tuple[bool, str]:
        """Whether TempURLs signed with our key work: the account has it, or ``set_temp_url_key``
        allows writing it into a free slot (the only change opening a store makes to an account)."""
        assert self.temp_url_key is not None
        mine = self.temp_url_key.reveal()
        keys = {h: account.headers.get(h) for h in ("X-Account-Meta-Temp-Url-Key", "X-Account-Meta-Temp-Url-Key-2")}
        if mine in keys.values():
            return True, "the account's Temp-URL key"
        if not self.set_temp_url_key:
            return False, "the account's Temp-URL-Key and -Key-2 differ from temp_url_key " \
                          "(set_temp_url_key = true lets the store set a free one)"
        free = [h for h, v in keys.items() if not v]
        if not free:
            return False, "the account's Temp-URL-Key and -Key-2 are both set to other keys"
        resp = self.http.request("POST", "", op="set the account's Temp-URL key", headers={free[0]: mine})
        resp.close()
        if resp.status_code // 100 == 2:
            return True, f"set as the account's {free[0][len('X-Account-Meta-'):]}"
        return False, f"the account has no such Temp-URL key and setting it was refused ({resp.status_code})"

    def close(self) -> None:
        """Drop the kept-alive connections."""
        self.http.close()

    def __repr__(self) -> str:
        return f"SwiftDriver({self.name!r}, auth_url={self.auth_url!r}, user={self.user!r}, " \
               f"container={self.container!r})"

    def describe(self) -> dict[str, Any]:
        """Where the images are and how they are cut (no key, no token)."""
        return {
            "auth_url": self.auth_url, "auth_version": self.auth_version, "user": self.user,
            "storage_url": self.auth.known_storage_url, "container": self.container,
            "segment_container": self.segment_container,
            "container_seed": self.seed, "segment_size": self.first, "max_segment_size": self.largest,
            "large_object_threshold": self.threshold, "max_segments": self._parts_for(255),
            "max_object_size": self.max_object_size(), "presign": self.presign, "presign_reason": self.presign_reason,
            "create_window": self.timing.window, "writer_lease": self.timing.lease,
        }

    # ------------------------------------------------------------ names
    def place(self, image_id: str) -> Place:
        """Where the image of this id lives (its container and segments container)."""
        suffix = f"_{image_id[:self.seed]}" if self.seed else ""
        return Place(self.container + suffix, self.segment_container + suffix)

    def location_for(self, image_id: str) -> Location:
        """``swift://AUTH_HOST/CONTAINER/ID?store=NAME`` (the host part of glance_store's swift URIs)."""
        validate_image_id(image_id)
        return Location("swift", self.host, (self.place(image_id).container, image_id), store=self.name)

    def owns(self, location: Location) -> bool:
        """A swift location of one of this store's containers, at its auth or storage host or an alias."""
        if location.scheme != "swift" or len(location.path) != 2:
            return False
        container, obj = location.path
        hosts = {self.host, *self.aliases}
        if self.auth.known_storage_url:
            hosts.add(urlsplit(self.auth.known_storage_url).netloc)
        try:
            validate_image_id(obj)
        except InvalidLocation:
            return False
        return location.host in hosts and self.place(obj).container == container

    def _resolve(self, location: Location) -> tuple[Place, str]:
        if not self.owns(location):
            raise InvalidLocation(f"location {location} is not in this swift store (container {self.container!r})",
                                  store=self.name)
        obj = location.path[1]
        return self.place(obj), obj

    def ensure(self, place: Place) -> None:
        """Make sure both containers exist (creating them if allowed); checked once per process."""
        for container in (place.container, place.segments):
            if container in self._ready:
                continue
            resp = self.http.request("HEAD", quote_path(container), op=f"HEAD container {container!r}")
            resp.close()
            if resp.status_code == 404:
                if not self.create_container:
                    raise ConfigError(f"container {container!r} does not exist and create_container is false",
                                      key=f"stores.{self.name}.container")
                resp = self.http.request("PUT", quote_path(container), op=f"create container {container!r}")
                resp.close()
                if resp.status_code not in (201, 202):
                    raise self.http.error(resp, f"create container {container!r}")
            elif resp.status_code // 100 != 2:
                raise self.http.error(resp, f"HEAD container {container!r}")
            with self._ready_lock:
                self._ready.add(container)

    # ------------------------------------------------------------ metadata
    def meta_headers(self, metadata: Mapping[str, str]) -> dict[str, str]:
        """The facade's metadata as object headers."""
        return {f"X-Object-Meta-Image-{enc_key(k)}": quote(v, safe="") for k, v in metadata.items()}

    def read_meta(self, headers: Mapping[str, str]) -> dict[str, str]:
        """The facade's metadata back from object headers."""
        return {dec_key(h[len(META_PREFIX):]): unquote(v) for h, v in headers.items()
                if h.lower().startswith(META_PREFIX)}

    def head(self, place: Place, obj: str, *, newest: bool = False) -> Response:
        """HEAD of the image object (``X-Newest`` if asked); NotFound if there is none."""
        resp = self.http.request("HEAD", quote_path(place.container, obj), op=f"HEAD {obj!r}",
                                 headers={"X-Newest": "true"} if newest else None)
        resp.close()
        if resp.status_code == 404:
            raise NotFound("no such image", store=self.name, image=obj)
        if resp.status_code // 100 != 2:
            raise self.http.error(resp, f"HEAD {obj!r}", image=obj)
        return resp

    def published(self, place: Place, obj: str) -> bool:
        """Whether an image of this id exists (newest copy), for the claim protocol."""
        try:
            self.head(place, obj, newest=True)
        except NotFound:
            return False
        return True

    # ------------------------------------------------------------ data
    def open_writer(self, image_id: str, size: int | None) -> SwiftWriter:
        """Start an upload (heartbeat and claim first); AlreadyExists early if the id is taken."""
        validate_image_id(image_id)
        place = self.place(image_id)
        self.ensure(place)
        if self.published(place, image_id):
            raise AlreadyExists("an image with this id exists", store=self.name, image=image_id)
        return SwiftWriter(self, image_id, size)

    def list_images(self) -> Iterator[str]:
        """Every object of the image container(s) (with ``seed``, each ``CONTAINER_<prefix>``):
        segments, claims and heartbeats live in the segments containers."""
        if self.seed:
            containers = [row["name"] for row in self.listing("", prefix=f"{self.container}_")
                          if not row["name"].startswith(self.segment_container)]
        else:
            containers = [self.container]
        for container in containers:
            for row in self.listing(container):
                yield row["name"]

    def stat(self, location: Location) -> Stored:
        """Size, metadata and version (timestamp and ETag) of the object."""
        place, obj = self._resolve(location)
        resp = self.head(place, obj)
        size = int(resp.headers.get("Content-Length", "0"))
        stamp = resp.headers.get("X-Timestamp", "")
        version = f"{stamp}:{resp.headers.get('Etag', '').strip(chr(34))}"
        try:
            written: float | None = float(stamp)
        except ValueError:
            written = None
        return Stored(size, self.read_meta(resp.headers), version, written)

    def update_metadata(self, location: Location, changes: Mapping[str, str]) -> None:
        """POST the object's metadata: a POST replaces all of it, so every metadata header the
        HEAD gave is sent again (a DLO's manifest header too), with the changed keys."""
        place, obj = self._resolve(location)
        resp = self.head(place, obj, newest=True)
        keep = {k: v for k, v in resp.headers.items()
                if k.lower().startswith("x-object-meta-") or k.lower() == "x-object-manifest"}
        sent = {**{k.lower(): v for k, v in keep.items()},
                **{k.lower(): v for k, v in self.meta_headers(changes).items()}}
        done = self.http.request("POST", quote_path(place.container, obj), op=f"POST metadata of {obj!r}",
                                 headers=sent)
        done.close()
        if done.status_code == 404:
            raise NotFound("no such image", store=self.name, image=obj)
        if done.status_code // 100 != 2:
            raise self.http.error(done, f"POST metadata of {obj!r}", image=obj)

    def layout(self, place: Place, obj: str) -> tuple[int, list[Piece], bool]:
        """The image's size, the objects that hold its bytes in order, and whether it is plain."""
        resp = self.head(place, obj)
        size = int(resp.headers.get("Content-Length", "0"))
        whole = [Piece(quote_path(place.container, obj), 0, size)]
        if resp.headers.get("X-Static-Large-Object", "").lower() == "true":
            got = self.http.request("GET", quote_path(place.container, obj), op=f"GET manifest of {obj!r}",
                                    params={"multipart-manifest": "get"})
            if got.status_code != 200:
                raise self.http.error(got, f"GET manifest of {obj!r}", image=obj)
            try:
                entries = got.json()
            except ValueError:
                entries = None
            pieces = pieces_of_manifest(entries, size) if isinstance(entries, list) else None
            return size, pieces or whole, False
        manifest = resp.headers.get("X-Object-Manifest")
        if manifest:
            container, _, prefix = unquote(manifest).partition("/")
            pieces, start = [], 0
            for row in self.listing(container, prefix):
                pieces.append(Piece(quote_path(container, row["name"]), start, int(row["bytes"])))
                start += int(row["bytes"])
            return size, pieces if start == size and pieces else whole, False
        return size, whole, True

    def open_reader(self, location: Location, offset: int, length: int) -> SwiftReader:
        """Ranged GETs of the image's segments (or of the object), ``concurrency`` ahead."""
        place, obj = self._resolve(location)
        size, pieces, _ = self.layout(place, obj)
        start = min(offset, size)
        return SwiftReader(self, obj, pieces, start, max(0, min(length, size - start)))

    def delete(self, location: Location) -> DeleteOutcome:
        """Delete the object, then exactly the segments it owns (its writer's, in our container)."""
        place, obj = self._resolve(location)
        resp = self.head(place, obj)
        owned: list[str] = []
        if resp.headers.get("X-Static-Large-Object", "").lower() == "true":
            writer = writer_of(resp.headers)
            got = self.http.request("GET", quote_path(place.container, obj), op=f"GET manifest of {obj!r}",
                                    params={"multipart-manifest": "get"})
            if got.status_code != 200:
                raise self.http.error(got, f"GET manifest of {obj!r}", image=obj)
            mine = f"/{place.segments}/{obj}/{writer}/"
            owned = [e["name"][len(f"/{place.segments}/"):] for e in got.json()
                     if writer and isinstance(e, dict) and str(e.get("name", "")).startswith(mine)]
            segments_in = place.segments
        elif resp.headers.get("X-Object-Manifest"):
            container, _, prefix = unquote(resp.headers["X-Object-Manifest"]).partition("/")
            segments_in = container
            if container == place.container and prefix == f"{obj}-":  # glance_store's own layout
                owned = [row["name"] for row in self.listing(container, prefix)]
        else:
            segments_in = place.segments
        gone = self.http.request("DELETE", quote_path(place.container, obj), op=f"DELETE {obj!r}")
        gone.close()
        if gone.status_code == 404:
            raise NotFound("no such image", store=self.name, image=obj)
        if gone.status_code // 100 != 2:
            raise self.http.error(gone, f"DELETE {obj!r}", image=obj)
        if owned:
            self.delete_objects(segments_in, owned, image=obj)
        return DeleteOutcome.DELETED

    def delete_objects(self, container: str, names: list[str], *, image: str | None = None) -> int:
        """Delete objects of one container (missing ones are fine): bulk delete when the
        cluster has it, else parallel DELETEs. Returns how many existed."""
        if not names:
            return 0
        if self.bulk_delete and len(names) > 1:
            return sum(self._bulk_delete(container, names[i:i + 1000], image) for i in range(0, len(names), 1000))
        pool = ThreadParts(self.concurrency, name="imagestore-swift-delete")
        try:
            pending = [pool.run(self._delete_one, container, n, image) for n in names]
            return sum(p.wait() for p in pending)
        finally:
            pool.close()

    def _delete_one(self, container: str, name: str, image: str | None) -> int:
        resp = self.http.request("DELETE", quote_path(container, name), op=f"DELETE segment of {image!r}")
        resp.close()
        if resp.status_code == 404:
            return 0
        if resp.status_code // 100 != 2:
            raise self.http.error(resp, f"DELETE segment of {image!r}", image=image)
        return 1

    def _bulk_delete(self, container: str, names: list[str], image: str | None) -> int:
        body = "\n".join(quote(f"/{container}/{n}") for n in names).encode()
        resp = self.http.request("POST", "", op=f"bulk delete of segments of {image!r}", params={"bulk-delete": "1"},
                                 headers={"Content-Type": "text/plain", "Accept": "application/json"}, data=body)
        if resp.status_code != 200:
            raise self.http.error(resp, f"bulk delete of segments of {image!r}", image=image)
        try:
            result = resp.json()
        except ValueError as exc:
            raise Transient(f"bulk delete of segments of {image!r}: unreadable answer") from exc
        errors = [e for e in result.get("Errors") or [] if not str(e[1]).startswith("404")]
        status = str(result.get("Response Status", "200"))
        if errors or not status.startswith(("200", "400")):
            first = errors[0] if errors else status
            raise Transient(f"bulk delete of segments of {image!r}: {len(errors)} failed ({first})")
        return int(result.get("Number Deleted", 0))

    def listing(self, container: str, prefix: str = "") -> Iterator[dict[str, Any]]:
        """Every object row of a container listing under ``prefix``, page by page."""
        marker = ""
        while True:
            params = {"format": "json", "prefix": prefix, "marker": marker, "limit": "10000"}
            resp = self.http.request("GET", quote_path(container), op=f"list {container!r}", params=params)
            if resp.status_code == 404:
                resp.close()
                return
            if resp.status_code // 100 != 2:
                raise self.http.error(resp, f"list {container!r}")
            rows = resp.json() if resp.status_code == 200 else []
            for row in rows:
                if "name" in row:
                    yield row
            if len(rows) < 10000:
                return
            marker = rows[-1]["name"]

    # ------------------------------------------------------------ clones
    def plan_clone(self, location: Location, target: Driver) -> ClonePlan:
        """``server_copy`` into a swift store of the same account (each segment copied in Swift).

        The storage URLs decide: another host or path prefix is ``different_endpoint``,
        the same endpoint with another account (last path segment) ``different_account``.
        """
        if not isinstance(target, SwiftDriver):
            return ClonePlan(None, f"target store {target.name!r} is not a swift store", CloneRefusal.DIFFERENT_BACKEND)
        place, obj = self._resolve(location)
        try:
            here, there = self.auth.storage_url, target.auth.storage_url
        except (Transient, PermissionDenied) as exc:
            return ClonePlan(None, f"cannot authenticate to compare the accounts: {exc}", CloneRefusal.UNREACHABLE)
        if here != there:
            code = CloneRefusal.DIFFERENT_ACCOUNT if _endpoint(here) == _endpoint(there) \
                else CloneRefusal.DIFFERENT_ENDPOINT
            what = "accounts" if code is CloneRefusal.DIFFERENT_ACCOUNT else "endpoints"
            return ClonePlan(None, f"different Swift {what} ({here} vs {there})", code)
        size, pieces, plain = self.layout(place, obj)
        if not plain and len(pieces) == 1 and size > target.max_file_size:
            return ClonePlan(None, "a manifest with ranges or nested manifests cannot be copied piece by piece",
                             CloneRefusal.NO_NATIVE_CLONE)
        what = "the object" if plain or len(pieces) == 1 else f"each of its {len(pieces)} segments"
        return ClonePlan("server_copy", f"same Swift account {here}: server-side copy of {what}")

    def clone(self, location: Location, target: Driver, request: CloneRequest) -> Location:
        """Copy every segment (or the object) inside Swift into the target's own, then publish."""
        if request.mode != "server_copy" or not isinstance(target, SwiftDriver):
            raise Unsupported(f"the swift driver clones only with mode 'server_copy', not {request.mode!r}",
                              store=self.name)
        place, obj = self._resolve(location)
        validate_image_id(request.name)
        dest = target.place(request.name)
        target.ensure(dest)
        if target.published(dest, request.name):
            raise AlreadyExists("the clone target name is taken", store=target.name, image=request.name)
        _, pieces, _ = self.layout(place, obj)
        return SwiftCopy(target, request.name).run(pieces, request.metadata)

    # ------------------------------------------------------------ locate
    def locate(self, location: Location, ttl: float | None = None) -> DirectAccess:
        """A TempURL (GET, the configured digest) valid ``ttl`` seconds (default ``presign_ttl``)."""
        place, obj = self._resolve(location)
        if not self.presign or self.temp_url_key is None:
            raise Unsupported(f"no TempURLs: {self.presign_reason}", store=self.name, image=obj)
        self.head(place, obj)
        base = urlsplit(self.auth.storage_url)
        expires = int(self.http.server_time() + (ttl if ttl is not None else self.presign_ttl))
        path = f"{base.path}/{quote_path(place.container, obj)}"
        signed = generate_temp_url(path, expires, self.temp_url_key.reveal(), "GET", absolute=True,
                                   digest=self.temp_url_digest)
        return DirectAccess(kind="url", url=f"{base.scheme}://{base.netloc}{signed}",
                            expires_at=datetime.fromtimestamp(expires, UTC))

    # ------------------------------------------------------------ sweep
    def sweep(self, older_than: float, deadline: float | None = None) -> SweepReport:
        """Remove dead writers' segments and heartbeats (heartbeat expired, not referenced by
        the published image, newest part older than ``older_than``) and lapsed claims."""
        return Sweeper(self).sweep(older_than, deadline)

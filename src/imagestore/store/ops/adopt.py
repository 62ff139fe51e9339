"""``Store.adopt``: register bits a consumer wrote straight into the backend (Nova's direct
snapshot, a volume uploaded into the images pool, a file placed in the root) after one pass that
hashes and inspects them; the shared :func:`~.finish.finish` checks and publishes."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from ...spi.contract import Adoption
from ...errors import Unsupported
from ...location import Location, validate_image_id
from ...engine.pipeline import check_options, write_stream
from ...engine.progress import Progress
from ...engine.reader import ImageReader
from ...results import ImageInfo
from ..args import with_algorithms
from .. import reserved
from ..state import StoreState
from .finish import finish

__all__ = ["adopt"]

log = logging.getLogger("imagestore")


class _Discard:
    """A writer that keeps nothing: adopt streams the bits through hashing and inspection only."""

    def write(self, data: memoryview) -> None:
        pass

    def commit(self, metadata: Mapping[str, str]) -> Location:  # pragma: no cover - never called
        raise NotImplementedError

    def abort(self) -> None:
        pass


def adopt(state: StoreState, native_ref: Location | str, *, format: str | None = None,
          expected: Mapping[str, str] | None = None, checksums: Sequence[str] | None = None,
          progress: Progress | None = None) -> ImageInfo:
    """Make the bits behind ``native_ref`` an image of this store (see :meth:`imagestore.Store.adopt`);
    an image the policy (or ``format``/``expected``) refuses is left exactly as it was."""
    state.require_write(None)
    loc = _native_location(state, native_ref)
    check_options(store=state.name, image=loc.image, format=format, progress=progress)
    if not state.caps.adopt:
        raise Unsupported("this store cannot adopt images written outside imagestore", store=state.name,
                          image=loc.image)
    settings = with_algorithms(state.settings, checksums, expected, store=state.name, image=loc.image)
    adoption: Adoption = state.call("adopt", lambda: state.driver.adopt(loc), loc.image, retry=False)
    try:
        src = adoption.location
        limit = state.limit()
        limit.check(adoption.size, "adopted image", store=state.name, image=loc.image)

        def opener(at: int, n: int) -> Any:
            return state.call("open", lambda: state.driver.open_reader(src, at, n), loc.image)

        reader = ImageReader(opener, offset=0, size=adoption.size, chunk_size=settings.chunk_size,
                             expected=None, progress=None, store=state.name, image=loc.image,
                             policy=settings.retry)
        with reader:
            outcome = write_stream(_Discard(), reader, settings=settings, size=adoption.size, limit=limit,
                                   progress=progress, store=state.name, image=loc.image)

        def publish(meta: Mapping[str, str]) -> Location:
            return state.call("adopt", lambda: adoption.commit(meta), loc.image, retry=False)

        return finish(state, outcome, publish, image=loc.image, settings=settings, format=format,
                      expected=expected, verb="adopted")
    except BaseException:
        try:
            adoption.abort()
        except Exception as exc:  # noqa: BLE001 - the refusal is what the caller must see
            log.warning("store %s: undoing the adoption of %s failed: %s", state.name, loc.image, exc)
        raise


def _native_location(state: StoreState, ref: Location | str) -> Location:
    """A consumer's reference (location, glance URI, absolute path) as a location of this store."""
    if isinstance(ref, str) and ref.startswith("/"):
        ref = Location.from_glance("file://" + ref)
    loc = state.location(ref)
    validate_image_id(loc.image)
    reserved.refuse(loc.image, state.name)
    return loc

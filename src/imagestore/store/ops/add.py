"""``Store.add``: check the arguments, take an upload slot, stream the source through the one
pipeline into the driver's writer, then :func:`~.finish.finish`; any failure aborts the writer."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

from ...config import StoreSettings
from ...errors import AlreadyExists, InvalidArgument, NoSpace, NotFound, Unsupported
from ...engine.limits import IdleWatch
from ...location import Location, validate_image_id
from ...engine.pipeline import Limit, Source, check_options, check_source, write_stream
from ...engine.progress import Progress
from ...observe import phase
from ...results import ImageInfo
from ..args import with_algorithms
from .. import reserved
from ..guard import GuardedWriter
from ..state import StoreState
from .finish import finish
from .sweep import auto_sweep

__all__ = ["add", "store_stream"]


def add(state: StoreState, image_id: str, data: Source, size: int | None = None, *, format: str | None = None,
        expected: Mapping[str, str] | None = None, checksums: Sequence[str] | None = None,
        progress: Progress | None = None) -> ImageInfo:
    """Store ``data`` as ``image_id`` (see :meth:`imagestore.Store.add`); nothing remains on error."""
    validate_image_id(image_id)
    reserved.refuse(image_id, state.name)
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
        raise InvalidArgument(f"size must be a non-negative int or None, not {size!r}", store=state.name,
                              image=image_id)
    check_source(data, store=state.name, image=image_id)
    check_options(store=state.name, image=image_id, format=format, progress=progress)
    state.require_write(image_id)
    settings = with_algorithms(state.settings, checksums, expected, store=state.name, image=image_id)
    limit = state.limit()
    if size is not None:
        limit.check(size, "declared size", store=state.name, image=image_id)
    elif not state.caps.unknown_size:
        raise Unsupported("this store needs the size of an upload in advance", store=state.name, image=image_id)
    return store_stream(state, image_id, data, size, settings, limit, format=format, expected=expected,
                        progress=progress)


def store_stream(state: StoreState, image_id: str, data: Source, size: int | None, settings: StoreSettings,
                 limit: Limit, *, format: str | None, expected: Mapping[str, str] | None = None,
                 progress: Progress | None = None, extra: Mapping[str, str] | None = None) -> ImageInfo:
    """An add whose arguments are checked: an upload slot, the free-space check, then the upload;
    ``extra`` metadata is stored beside the image's own (a raw base records its source)."""
    with state.gate.slot(store=state.name, image=image_id):
        if size:
            _check_free_space(state, size, image_id)
        auto_sweep(state)
        return _write(state, image_id, data, size, settings, limit, format=format, expected=expected,
                      progress=progress, extra=extra)


def _check_free_space(state: StoreState, size: int, image: str) -> None:
    """NoSpace before the first byte when the backend reports less room than declared."""
    free = state.call("free space", state.driver.free_space, image)
    if free is not None and size > free:
        raise NoSpace(f"the upload of {size} bytes does not fit: the backend has {free} bytes free",
                      store=state.name, image=image)


def _write(state: StoreState, image_id: str, data: Source, size: int | None, settings: StoreSettings,
           limit: Limit, *, format: str | None, expected: Mapping[str, str] | None,
           progress: Progress | None, extra: Mapping[str, str] | None) -> ImageInfo:
    """The upload itself: one pass through the pipeline into the writer, then finish and publish."""
    with phase("open_writer"):
        raw = state.call("start upload", lambda: state.driver.open_writer(image_id, size), image_id)
    writer = GuardedWriter(raw, state.name, image_id)
    watch = IdleWatch(settings.idle_timeout, writer.abort)
    try:
        try:
            with phase("write"):
                outcome = write_stream(writer, data, settings=settings, size=size, limit=limit,
                                       progress=progress, store=state.name, image=image_id, watch=watch)
        finally:
            watch.close()

        def publish(meta: Mapping[str, str]) -> Location:
            with phase("commit"), _publishing(state, image_id):
                return writer.commit(meta)

        return finish(state, outcome, publish, image=image_id, settings=settings, format=format,
                      expected=expected, verb="added", extra=extra)
    except BaseException:
        writer.abort()
        raise


@contextmanager
def _publishing(state: StoreState, image_id: str) -> Iterator[None]:
    """Around a commit: for a backend without atomic create, serialise commits in this
    process and refuse an id that is taken (the backend itself would overwrite)."""
    if state.caps.atomic_create:
        yield
        return
    with state.publish_lock:
        try:
            state.call("stat", lambda: state.driver.stat(state.driver.location_for(image_id)), image_id)
        except NotFound:
            pass
        else:
            raise AlreadyExists("an image with this id exists", store=state.name, image=image_id)
        yield

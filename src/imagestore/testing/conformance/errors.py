"""Errors: bad ids and foreign locations refused, no secret in any output, and every backend fault a clear ImageStoreError."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

import pytest

import imagestore
from imagestore import (
    BackendError,
    BackendUnavailable,
    ImageStoreError,
    InvalidLocation,
    NoSpace,
    NotFound,
    Store,
    Unsupported,
)

from ..backends.base import Backend
from ..payloads import chunks, payload
from .base import MiB, SuiteBase
from .faults import FAULTS, POINTS, inject


class ErrorTests(SuiteBase):
    """Refusals, redaction and backend faults."""

    @pytest.mark.parametrize("bad", ["", "../escape", "/abs", "a/b", ".hidden", "x" * 300, "sp ace",
                                     "nul\x00", "..", "ok/../../etc"])
    def test_bad_ids_refused(self, backend: Backend, store: Store, bad: str) -> None:
        with pytest.raises(InvalidLocation):
            store.add(bad, b"data", 4)
        assert backend.leftovers() == []
    def test_foreign_locations_refused(self, store: Store, image_id: str) -> None:
        info = store.add(image_id, b"data", 4)
        loc = info.location
        foreign = [
            loc.with_store("elsewhere"),
            imagestore.Location("file", "", ("etc", "passwd"), store.name),
            imagestore.Location("file", "", ("etc", "passwd")),
            imagestore.Location("memory", "other-namespace", (image_id,)),
            imagestore.Location("rbd", "0000", ("pool", image_id, "snap")),
        ]
        for bad in foreign:
            with pytest.raises(InvalidLocation):
                store.stat(bad)
        for text in ["file:///etc/passwd?store=" + store.name, "s3://key:secret@host/b/k",
                     f"{loc.scheme}://{loc.host}/%2e%2e/x", "non sense", "ftp://x/y"]:
            with pytest.raises(InvalidLocation) as err:
                store.stat(text)
            assert "secret" not in str(err.value)
    def test_no_credentials_in_logs_or_reprs(self, backend: Backend, store: Store, image_id: str,
                                             caplog: Any) -> None:
        secret_options = sorted(k for k, o in store._driver.OPTIONS.items() if o.secret)
        secrets = backend.secrets()
        if secret_options:
            assert secrets, f"the backend authenticates with {secret_options}: the test must know their values"
        caplog.set_level(logging.DEBUG, logger="imagestore")
        info = store.add(image_id, b"abc", 3)
        store.stat(info.location)
        with pytest.raises(ImageStoreError) as err:
            store.add(image_id, b"abc", 3)
        with pytest.raises(NotFound) as missing:
            store.stat(image_id + "-missing")
        texts = [repr(store), repr(store._driver), repr(info), str(info.location), repr(store.capabilities),
                 caplog.text, str(err.value), str(missing.value), repr(store.describe()),
                 repr(store.locate(info.location)) if store.capabilities.direct_access else ""]
        for secret in secrets:
            assert len(secret) >= 8, "a secret this short proves nothing"
            for text in texts:
                assert secret not in text, text
        parts = urlsplit(str(info.location))
        assert parts.username is None and parts.password is None
    @pytest.mark.parametrize("fault", sorted(FAULTS))
    @pytest.mark.parametrize("point", POINTS)
    def test_backend_faults_are_clear_errors(self, backend: Backend, image_id: str, point: str,
                                             fault: str) -> None:
        """A fault at any driver call ends in one ImageStoreError of the right class; nothing is lost
        and nothing half-written remains."""
        store = backend.make(retries=1, retry_backoff=0)
        sibling = backend.make("sibling", sibling=True, retries=1, retry_backoff=0)
        data = payload(2 * MiB, seed=20)
        existing = store.add(image_id, data, len(data))
        injector = inject(store, point, FAULTS[fault])

        def attempt() -> object:
            if point in ("open_writer", "write", "commit"):
                return store.add(image_id + "-new", chunks(payload(3 * MiB, seed=21), MiB))
            if point in ("open_reader", "read", "stat"):
                return store.get(existing.location)
            if point == "delete":
                return store.delete(existing.location)
            if point == "locate":
                return store.locate(existing.location)
            if point == "plan_clone":
                return store.can_clone(existing.location, sibling)
            if point == "clone":
                return store.clone(existing.location, sibling, name=image_id + "-clone")
            return store.sweep(0)

        if point == "locate" and not backend.has("direct_access"):
            with pytest.raises(Unsupported):
                attempt()
            assert injector.fired == 0
        elif point == "clone" and backend.native_clone_mode is None:
            assert attempt().mode == "stream"  # type: ignore[attr-defined]
            assert injector.fired == 0
        else:
            self._check_fault(backend, store, sibling, image_id, point, fault, injector, attempt, existing, data)
    def _check_fault(self, backend: Backend, store: Store, sibling: Store, image_id: str, point: str, fault: str,
                     injector: Any, attempt: Any, existing: imagestore.ImageInfo, data: bytes) -> None:
        expected: type[ImageStoreError] = {"transient": BackendUnavailable, "eio": BackendError,
                                           "enospc": NoSpace, "bug": BackendError}[fault]
        with pytest.raises(ImageStoreError) as err:
            attempt()
        assert type(err.value) is expected or isinstance(err.value, expected), repr(err.value)
        assert injector.fired >= 1
        assert store.name in str(err.value)
        if fault == "transient":
            assert injector.fired == 1 + (point not in ("write", "commit", "clone")), \
                "idempotent calls are retried (retries=1), streaming writes and clones are not"
        # nothing lost, nothing half-written
        injector.budget = 0
        assert store.get(existing.location) == data
        for name in (image_id + "-new", image_id + "-clone"):
            with pytest.raises(NotFound):
                store.stat(name)
            with pytest.raises(NotFound):
                sibling.stat(name)
        assert backend.leftovers() == []

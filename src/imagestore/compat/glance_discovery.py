"""``GET /v2/info/stores/detail`` of an unmodified Glance, taught about ``imagestore`` backends.

Glance describes each backend by a table of the store types it knows (file,
rbd, swift, s3, cinder, http) and fails the whole call (500) on any other type.
When the glance_store driver is loaded inside Glance it wraps that one method
once per process: Glance's own code still answers for its own types (its policy
check included), and each ``imagestore`` backend gets ``type``, ``weight`` and
the driver's :meth:`glance_detail` as ``properties``, in Glance's order. Nothing
happens outside Glance's API process, and a Glance whose discovery code looks
different is left as it is (logged once).
"""

from __future__ import annotations

import functools
import logging
import sys
import threading
from typing import Any

__all__ = ["install"]

log = logging.getLogger("imagestore.glance")

ENTRY_POINT = "imagestore"
_MARK = "_imagestore_detail"
_lock = threading.Lock()


class _OthersOnly:
    """Glance's controller as its own detail code sees it, listing only the non-imagestore backends."""

    def __init__(self, controller: Any, stores: list[dict[str, Any]]) -> None:
        self._controller = controller
        self._stores = stores

    def get_stores(self, req: Any) -> dict[str, Any]:
        return {"stores": self._stores}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._controller, name)


def _imagestore_entry(listed: dict[str, Any], conf: Any) -> dict[str, Any]:
    """One imagestore backend as ``stores/detail`` shows it."""
    from glance_store import exceptions, multi_backend  # Glance's process: glance_store is there

    backend_id = listed["id"]
    try:
        store = multi_backend.get_store_from_store_identifier(backend_id)
    except exceptions.GlanceStoreException:  # not registered: its configuration failed (logged at start)
        store = None
    detail = store.glance_detail() if hasattr(store, "glance_detail") else {"available": False}
    entry = {**listed, "type": ENTRY_POINT, "properties": detail, "weight": getattr(conf, backend_id).weight}
    if detail.get("read_only"):
        entry["read-only"] = "true"  # as Glance marks its read-only (http) backends
    return entry


def _detail(original: Any, controller: Any, req: Any) -> dict[str, Any]:
    """Glance's answer for its own types plus the imagestore backends, in Glance's order."""
    from oslo_config import cfg

    conf = cfg.CONF
    types = dict(conf.enabled_backends or {})
    listed = controller.get_stores(req)["stores"]
    ours = {s["id"] for s in listed if types.get(s["id"]) == ENTRY_POINT}
    if not ours:
        return original(controller, req)  # type: ignore[no-any-return]
    others = [s for s in listed if s["id"] not in ours]
    described = {s["id"]: s for s in original(_OthersOnly(controller, others), req)["stores"]}  # policy check
    return {"stores": [_imagestore_entry(s, conf) if s["id"] in ours else described[s["id"]]
                       for s in listed if s["id"] in ours or s["id"] in described]}


def install() -> bool:
    """Wrap Glance's ``InfoController.get_stores_detail`` (once) inside Glance's API process (where
    ``glance.api`` is imported already); False elsewhere, where importing Glance would register its
    options in the caller's global configuration."""
    if "glance.api" not in sys.modules:
        return False
    with _lock:
        try:
            from glance.api.v2 import discovery
        except ImportError:
            return False
        controller = getattr(discovery, "InfoController", None)
        original = getattr(controller, "get_stores_detail", None)
        if controller is None or original is None:
            log.warning("Glance's discovery has no InfoController.get_stores_detail: "
                        "stores/detail does not describe imagestore backends")
            return False
        if getattr(original, _MARK, False):
            return True

        @functools.wraps(original)
        def get_stores_detail(self: Any, req: Any) -> dict[str, Any]:
            return _detail(original, self, req)

        setattr(get_stores_detail, _MARK, True)
        controller.get_stores_detail = get_stores_detail
        return True

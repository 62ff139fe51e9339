"""``imagestore stores``: the configured stores, their drivers and capabilities."""

from __future__ import annotations

from typing import Any

from ..errors import ImageStoreError
from .common import Context, Handler, emit

__all__ = ["COMMANDS", "register"]


def register(sub: Any) -> None:
    """Add the ``stores`` command to the CLI's subparsers."""
    sub.add_parser("stores", help="configured stores and their capabilities")


def cmd_stores(ctx: Context) -> None:
    """List every configured store; one unreachable backend is reported, not fatal."""
    out: dict[str, Any] = {"default": ctx.stores.default_name, "stores": {}}
    lines = []
    for name in ctx.stores:
        mark = "*" if name == ctx.stores.default_name else " "
        try:
            store = ctx.stores[name]
        except ImageStoreError as exc:  # one unreachable backend does not hide the others
            out["stores"][name] = {"driver": ctx.stores.driver_name(name), "error": type(exc).__name__,
                                   "message": str(exc)}
            lines.append(f"{mark} {name:12} {ctx.stores.driver_name(name):7} unavailable: {exc}")
            continue
        facts = store.describe()
        caps = facts["capabilities"]
        out["stores"][name] = {"driver": facts["scheme"], **facts["backend"], "capabilities": caps}
        flags = ",".join(k for k, v in caps.items() if v is True)
        lines.append(f"{mark} {name:12} {store.scheme:7} {flags}")
    emit(ctx, out, "\n".join(lines))


COMMANDS: dict[str, Handler] = {"stores": cmd_stores}

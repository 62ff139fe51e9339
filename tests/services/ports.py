"""Free TCP ports on 127.0.0.1 for the services the tests start (shared with the harness)."""

from __future__ import annotations

from imagestore.testing.ports import free_port, free_ports

__all__ = ["free_port", "free_ports"]

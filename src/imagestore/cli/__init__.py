"""The ``imagestore`` command: the library's operations from a shell.

Every command accepts any location string it printed, with the same
configuration and without ``--store``. With ``--json`` a command prints one
JSON object on stdout; errors print one line on stderr (JSON with ``--json``)
and exit 2 for usage and configuration errors, 1 for everything else.
"""

from __future__ import annotations

from .bench import bench_argv
from .main import main

__all__ = ["bench_argv", "main"]

"""The source checkout beside the harness: its ``scripts/`` start Ceph, Swift, Glance and the XFS mount.

A wheel carries no ``scripts/``; only the parts that start those services need a checkout, and they say
so by name (:func:`script`). ``IMAGESTORE_SOURCE`` points an installed harness at a checkout.
"""

from __future__ import annotations

import os
from pathlib import Path

SOURCE_ENV = "IMAGESTORE_SOURCE"
#: the tree this package sits in when it runs from a checkout (benchmarks/env/checkout.py)
_BESIDE = Path(__file__).resolve().parents[2]


class NeedsCheckout(RuntimeError):
    """A part of the harness that starts a service through the checkout's scripts, run without one."""


def source_tree() -> Path | None:
    """The checkout whose ``scripts/`` the harness uses: ``$IMAGESTORE_SOURCE``, else the tree beside it."""
    given = os.environ.get(SOURCE_ENV)
    for root in ([Path(given)] if given else [_BESIDE]):
        if (root / "scripts" / "ceph-start.sh").is_file():
            return root
    return None


#: the checkout's ``scripts/`` directory (a path that does not exist when there is no checkout)
REPO = source_tree() or _BESIDE
SCRIPTS = REPO / "scripts"


def need_checkout(part: str, what: str = "scripts/") -> str:
    """The one sentence saying that ``part`` needs ``what`` from imagestore's source checkout."""
    return (f"{part} needs {what} of imagestore's source checkout, which an installed imagestore does not "
            f"carry: run from a checkout (pip install -e '.[bench]') or set {SOURCE_ENV}=/path/to/checkout")


def script(name: str, part: str) -> Path:
    """``scripts/NAME`` of the checkout; :class:`NeedsCheckout` naming ``part`` when there is none."""
    path = SCRIPTS / name
    if not path.is_file():
        raise NeedsCheckout(need_checkout(part, f"scripts/{name}"))
    return path

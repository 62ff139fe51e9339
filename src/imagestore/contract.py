"""Deprecated: moved to :mod:`imagestore.spi.contract`; this re-export goes in the next release."""

from .spi.contract import *  # noqa: F401,F403
from .spi.contract import __all__  # noqa: F401

"""Deprecated: moved to :mod:`imagestore.spi.capabilities`; this re-export goes in the next release."""

from .spi.capabilities import *  # noqa: F401,F403
from .spi.capabilities import __all__  # noqa: F401

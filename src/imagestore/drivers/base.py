"""Deprecated: moved to :mod:`imagestore.spi.driver`; this re-export goes in the next release."""

from ..spi.driver import *  # noqa: F401,F403
from ..spi.driver import __all__  # noqa: F401

"""The S3 driver (``imagestore.drivers.s3:S3Driver``): images in one bucket of an S3 endpoint.

:mod:`.backend` holds the driver class; :mod:`.core` its limits, key layout and the
protocol its :mod:`.reader`, :mod:`.writer`, :mod:`.lease`, :mod:`.copier` and
:mod:`.sweeper` use of it; :mod:`.client` the boto3 client and its error translation.
"""

from .backend import S3Driver
from .core import MAX_OBJECT, MAX_PART, MAX_PARTS, MAX_PRESIGN, MIN_PART

__all__ = ["MAX_OBJECT", "MAX_PART", "MAX_PARTS", "MAX_PRESIGN", "MIN_PART", "S3Driver"]

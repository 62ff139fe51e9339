"""imagestore: store virtual-machine images in file, S3, Swift or Ceph RBD backends,
and add, read, clone, locate and delete them in-process.

Only the names below are public; everything else may change without notice.
"""

from __future__ import annotations

from .capabilities import Capabilities
from .contract import SweepReport
from .errors import (
    AlreadyExists,
    BackendError,
    BackendUnavailable,
    ChecksumMismatch,
    ConfigError,
    DriverNotInstalled,
    ImageStoreError,
    ImageTooLarge,
    InUse,
    InvalidLocation,
    NoSpace,
    NotFound,
    PermissionDenied,
    SizeMismatch,
    UnsafeImage,
    Unsupported,
)
from .formats import FormatPolicy, FormatVerdict, inspect
from .location import DirectAccess, Location
from .reader import ImageReader
from .results import CloneCheck, CloneResult, DeleteOutcome, ImageInfo
from .store import Store
from .stores import Stores, open_store

__version__ = "0.1.0"

__all__ = [
    "AlreadyExists",
    "BackendError",
    "BackendUnavailable",
    "Capabilities",
    "ChecksumMismatch",
    "CloneCheck",
    "CloneResult",
    "ConfigError",
    "DeleteOutcome",
    "DirectAccess",
    "DriverNotInstalled",
    "FormatPolicy",
    "FormatVerdict",
    "ImageInfo",
    "ImageReader",
    "ImageStoreError",
    "ImageTooLarge",
    "InUse",
    "InvalidLocation",
    "Location",
    "NoSpace",
    "NotFound",
    "PermissionDenied",
    "SizeMismatch",
    "Store",
    "Stores",
    "SweepReport",
    "UnsafeImage",
    "Unsupported",
    "inspect",
    "open_store",
]

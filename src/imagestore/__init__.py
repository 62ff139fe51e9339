"""imagestore: store virtual-machine images in file, S3, Swift or Ceph RBD backends,
and add, read, clone, locate and delete them in-process.

Only the names below are public; everything else may change without notice.
"""

from __future__ import annotations

from .cache import CacheEntry, EvictReport, ImageCache, RevalidateReport, VerifyReport
from .spi.capabilities import Capabilities
from .errors import (
    AlreadyExists,
    BackendError,
    BackendUnavailable,
    Busy,
    ChecksumMismatch,
    ConfigError,
    DriverNotInstalled,
    ImageStoreError,
    ImageTooLarge,
    InUse,
    InvalidArgument,
    InvalidLocation,
    NoSpace,
    NotFound,
    PermissionDenied,
    SizeMismatch,
    UnsafeImage,
    Unsupported,
    UploadTimeout,
)
from .formats import FormatPolicy, FormatVerdict, inspect
from .location import DirectAccess, Location
from .engine.reader import ImageReader
from .results import (
    CLONE_REASONS,
    CloneCheck,
    CloneRefusal,
    CloneResult,
    DeleteOutcome,
    ImageInfo,
    Replica,
    ScrubReport,
    Scrubbed,
    SweepReport,
)
from .store import Store, Stores, open_store, replicate

__version__ = "0.8.0"

__all__ = [
    "CLONE_REASONS",
    "AlreadyExists",
    "BackendError",
    "BackendUnavailable",
    "Busy",
    "CacheEntry",
    "Capabilities",
    "ChecksumMismatch",
    "CloneCheck",
    "CloneRefusal",
    "CloneResult",
    "ConfigError",
    "DeleteOutcome",
    "DirectAccess",
    "DriverNotInstalled",
    "EvictReport",
    "FormatPolicy",
    "FormatVerdict",
    "ImageCache",
    "ImageInfo",
    "ImageReader",
    "ImageStoreError",
    "ImageTooLarge",
    "InUse",
    "InvalidArgument",
    "InvalidLocation",
    "Location",
    "NoSpace",
    "NotFound",
    "PermissionDenied",
    "Replica",
    "RevalidateReport",
    "ScrubReport",
    "Scrubbed",
    "SizeMismatch",
    "Store",
    "Stores",
    "SweepReport",
    "UnsafeImage",
    "Unsupported",
    "UploadTimeout",
    "VerifyReport",
    "inspect",
    "open_store",
    "replicate",
]

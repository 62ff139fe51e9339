"""The S3 driver's boto3 client and the one translation of botocore failures.

Every S3 request of a store goes through :meth:`S3Client.call`, which turns what
botocore raises into what the facade understands: ``Transient`` for what is worth
retrying (connection errors, timeouts, 5xx, ``SlowDown``), ``NotFound``,
``PermissionDenied``, ``NoSpace``, ``ImageTooLarge``, ``BackendError`` for the rest,
and :class:`PreconditionFailed` for the 412 that conditional writes answer. botocore's
own retries are off: the facade retries whole idempotent calls and the part uploader
retries parts, so each request is retried by exactly one layer.
"""

from __future__ import annotations

import errno
import io
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

try:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import (
        ClientError,
        HTTPClientError,
        NoCredentialsError,
        ParamValidationError,
        PartialCredentialsError,
        ReadTimeoutError,
        ResponseStreamingError,
        SSLError,
    )
    from botocore.exceptions import ConnectionError as BotoConnectionError
    from botocore.exceptions import IncompleteReadError as BotoIncompleteRead
except ImportError as exc:  # reported by the store registry as DriverNotInstalled
    raise ImportError(f"the s3 driver needs boto3 ({exc}): pip install 'imagestore[s3]'") from exc

from ...errors import (
    BackendError,
    ConfigError,
    ImageTooLarge,
    NoSpace,
    NotFound,
    PermissionDenied,
    Transient,
)

__all__ = ["PreconditionFailed", "S3Client", "ViewBody", "error_code", "server_time"]

_NOT_FOUND = {"NoSuchKey", "NotFound", "NoSuchUpload", "NoSuchBucket", "404"}
_DENIED = {"AccessDenied", "SignatureDoesNotMatch", "InvalidAccessKeyId", "AllAccessDisabled", "InvalidToken",
           "ExpiredToken", "AccountProblem", "403", "UserSuspended"}
_FULL = {"QuotaExceeded", "UserQuotaExceeded", "BucketQuotaExceeded"}
_RETRY = {"SlowDown", "RequestTimeout", "InternalError", "ServiceUnavailable", "Throttling", "ThrottlingException",
          "RequestLimitExceeded", "TooManyRequests", "OperationAborted", "ConditionalRequestConflict",
          "RequestTimeTooSkewed", "500", "502", "503", "504"}
_UNREACHABLE = {errno.ETIMEDOUT, errno.ECONNRESET, errno.ECONNREFUSED, errno.ECONNABORTED, errno.EHOSTUNREACH,
                errno.ENETUNREACH, errno.EPIPE}


class PreconditionFailed(Exception):
    """A conditional request (``If-None-Match: *``, ``If-Match``) was refused with 412."""


def error_code(exc: ClientError) -> tuple[int, str]:
    """(HTTP status, S3 error code) of a ClientError; HEAD errors carry the status as code."""
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    return status, str(exc.response.get("Error", {}).get("Code") or status)


def server_time(resp: dict[str, Any]) -> datetime:
    """The server's time from a response's Date header (this machine's clock if there is none):
    ages of objects are measured against it, never against a clock that may be skewed."""
    date = resp.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
    try:
        return parsedate_to_datetime(date) if date else datetime.now(UTC)
    except (TypeError, ValueError):
        return datetime.now(UTC)


def translate(exc: BaseException, what: str, *, store: str, image: str | None) -> BaseException:
    """The exception the facade should see for ``exc`` raised by botocore during ``what``."""
    if isinstance(exc, ClientError):
        status, code = error_code(exc)
        message = str(exc.response.get("Error", {}).get("Message") or "")
        text = f"{what}: {code}" + (f" ({message})" if message and message != code else "")
        if status == 412 or code == "PreconditionFailed":
            return PreconditionFailed(text)
        if code in _FULL:
            return NoSpace(f"{what}: the backend is full ({code})", store=store, image=image)
        if status == 404 or code in _NOT_FOUND:
            return NotFound(text, store=store, image=image)
        if status == 403 or code in _DENIED:
            return PermissionDenied(text, store=store, image=image)
        if code == "EntityTooLarge":
            return ImageTooLarge(text, store=store, image=image)
        if status >= 500 or status == 429 or code in _RETRY:
            return Transient(text)
        return BackendError(f"{text}, HTTP {status}", store=store, image=image)
    if isinstance(exc, SSLError):
        return BackendError(f"{what}: TLS failed: {exc}", store=store, image=image)
    if isinstance(exc, (BotoConnectionError, HTTPClientError, ReadTimeoutError, ResponseStreamingError,
                        BotoIncompleteRead)):
        return Transient(f"{what}: {type(exc).__name__}: {exc}")
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return ConfigError(f"no S3 credentials ({exc}): set access_key and secret_key or configure the AWS "
                           "credential chain", store=store)
    if isinstance(exc, ParamValidationError):
        return BackendError(f"{what}: {exc}", store=store, image=image)
    if isinstance(exc, OSError) and (exc.errno in _UNREACHABLE or isinstance(exc, ConnectionError)):
        return Transient(f"{what}: {type(exc).__name__}: {exc}")
    return exc


class S3Client:
    """One store's boto3 client (thread-safe, shared by every upload and read of the store)."""

    def __init__(self, store: str, *, endpoint: str | None, region: str, access_key: str | None,
                 secret_key: str | None, verify: bool | str, addressing_style: str, connect_timeout: float,
                 read_timeout: float, pool: int, checksum_calculation: str, checksum_validation: str) -> None:
        self.store = store
        config = Config(
            signature_version="s3v4",
            s3={"addressing_style": addressing_style},
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retries={"mode": "standard", "total_max_attempts": 1},
            max_pool_connections=pool,
            request_checksum_calculation=checksum_calculation,
            response_checksum_validation=checksum_validation,
        )
        session = boto3.session.Session()
        self.raw: Any = session.client("s3", endpoint_url=endpoint, region_name=region, aws_access_key_id=access_key,
                                       aws_secret_access_key=secret_key, verify=verify, config=config)

    def call(self, method: str, what: str, image: str | None = None, **params: Any) -> Any:
        """``client.<method>(**params)`` with every botocore failure translated (see :func:`translate`)."""
        try:
            return getattr(self.raw, method)(**params)
        except Exception as exc:
            error = translate(exc, what, store=self.store, image=image)
            if error is exc:
                raise
            raise error from exc

    def presign(self, bucket: str, key: str, expires: int) -> str:
        """A presigned GET URL of one object (computed locally, no request)."""
        url: str = self.raw.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key},
                                                   ExpiresIn=expires)
        return url

    def close(self) -> None:
        """Close the client's connection pool."""
        close = getattr(self.raw, "close", None)
        if close is not None:
            close()


class ViewBody(io.RawIOBase):
    """A request body over a part buffer, read in place (no copy of the part), seekable for resends."""

    def __init__(self, view: memoryview) -> None:
        super().__init__()
        self._view = view
        self._pos = 0

    def __len__(self) -> int:
        return len(self._view)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        n = min(len(b), len(self._view) - self._pos)
        b[:n] = self._view[self._pos:self._pos + n]
        self._pos += n
        return n

    def read(self, size: int = -1) -> bytes:
        end = len(self._view) if size is None or size < 0 else min(len(self._view), self._pos + size)
        out = bytes(self._view[self._pos:end])
        self._pos = end
        return out

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: len(self._view)}[whence]
        self._pos = max(0, min(len(self._view), base + offset))
        return self._pos

    def tell(self) -> int:
        return self._pos

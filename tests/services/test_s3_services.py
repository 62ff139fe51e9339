"""The real S3 servers and the fault proxy that imagestore's S3 tests run on.

Three parts:

* proof that both servers (moto's standalone server, radosgw 16.2) are real S3
  over HTTP: buckets, ranged reads, multipart, copies, presigned URLs;
* the measured behaviours the S3 driver's design depends on, asserted per server
  (``EXPECTED`` tables): conditional writes, authentication, permissions,
  Content-MD5, metadata size, ETags;
* the fault proxy, on a small stdlib HTTP server (exact byte-level checks) and in
  front of both S3 servers with boto3 (mid-body drop, 503 storm and retries,
  mid-request drop, lost responses, stalls, request counting).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import http.client
import io
import os
import socket
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    HTTPClientError,
    IncompleteReadError,
    ReadTimeoutError,
    ResponseStreamingError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from .faultproxy import FaultProxy, FaultProxyFactory
from .s3 import Radosgw, S3Server

MiB = 1 << 20
NO_RETRY: dict[str, Any] = {"retries": {"total_max_attempts": 1}}
CLOSED = 0  # "status" of a request the server answered by closing the connection


def outcome(fn: Callable[..., Any], **kwargs: Any) -> tuple[int, str]:
    """(HTTP status, S3 error code) of one call; ("", 200) style success is (2xx, "")."""
    try:
        resp = fn(**kwargs)
    except ClientError as exc:
        return exc.response["ResponseMetadata"]["HTTPStatusCode"], exc.response["Error"].get("Code", "")
    return resp["ResponseMetadata"]["HTTPStatusCode"], ""


def body_of(client: Any, bucket: str, key: str, **kwargs: Any) -> bytes:
    data: bytes = client.get_object(Bucket=bucket, Key=key, **kwargs)["Body"].read()
    return data


def multipart_etag(parts: list[bytes]) -> str:
    return hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest() + f"-{len(parts)}"


def add_header(client: Any, operation: str, name: str, value: str) -> None:
    """Send ``name: value`` on every ``operation`` call of this client (signed with it)."""

    def handler(request: Any, **_: Any) -> None:
        request.headers[name] = value

    client.meta.events.register(f"before-sign.s3.{operation}", handler)


# ====================================================================== both servers are real S3
def test_bucket_create_head_list(s3_server: S3Server, s3_bucket: str) -> None:
    s3 = s3_server.client()
    assert outcome(s3.head_bucket, Bucket=s3_bucket) == (200, "")
    assert s3_bucket in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert outcome(s3.head_bucket, Bucket=f"missing-{uuid.uuid4().hex[:8]}") == (404, "404")


def test_put_get_with_range(s3_server: S3Server, s3_bucket: str) -> None:
    s3 = s3_server.client()
    data = os.urandom(MiB + 123)
    n = len(data)
    put = s3.put_object(Bucket=s3_bucket, Key="img", Body=data)
    assert put["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
    assert body_of(s3, s3_bucket, "img") == data
    for header, first, last in [("bytes=10-19", 10, 19), ("bytes=-10", n - 10, n - 1),
                                (f"bytes={n - 5}-", n - 5, n - 1), (f"bytes={n - 3}-{n + 100}", n - 3, n - 1)]:
        resp = s3.get_object(Bucket=s3_bucket, Key="img", Range=header)
        assert resp["ResponseMetadata"]["HTTPStatusCode"] == 206, header
        assert resp["ContentRange"] == f"bytes {first}-{last}/{n}", header
        assert resp["Body"].read() == data[first:last + 1], header
    # a range that starts at the end: 416 on both (the driver must not ask for it)
    assert outcome(s3.get_object, Bucket=s3_bucket, Key="img", Range=f"bytes={n}-") == (416, "InvalidRange")
    s3.put_object(Bucket=s3_bucket, Key="empty", Body=b"")
    assert outcome(s3.get_object, Bucket=s3_bucket, Key="empty", Range="bytes=0-") == (416, "InvalidRange")
    assert outcome(s3.get_object, Bucket=s3_bucket, Key="nope") == (404, "NoSuchKey")
    assert outcome(s3.head_object, Bucket=s3_bucket, Key="nope") == (404, "404")
    assert outcome(s3.delete_object, Bucket=s3_bucket, Key="nope") == (204, "")


def test_multipart_upload_of_three_parts(s3_server: S3Server, s3_bucket: str) -> None:
    s3 = s3_server.client()
    parts = [os.urandom(5 * MiB), os.urandom(5 * MiB), os.urandom(MiB + 7)]
    up = s3.create_multipart_upload(Bucket=s3_bucket, Key="big", Metadata={"sha512": "abc"})
    etags = []
    for number, part in enumerate(parts, 1):
        resp = s3.upload_part(Bucket=s3_bucket, Key="big", UploadId=up["UploadId"], PartNumber=number, Body=part)
        assert resp["ETag"] == f'"{hashlib.md5(part).hexdigest()}"'
        etags.append({"ETag": resp["ETag"], "PartNumber": number})
    listed = s3.list_parts(Bucket=s3_bucket, Key="big", UploadId=up["UploadId"])["Parts"]
    assert [(p["PartNumber"], p["Size"]) for p in listed] == [(i + 1, len(p)) for i, p in enumerate(parts)]
    s3.complete_multipart_upload(Bucket=s3_bucket, Key="big", UploadId=up["UploadId"],
                                 MultipartUpload={"Parts": etags})
    head = s3.head_object(Bucket=s3_bucket, Key="big")
    assert head["ContentLength"] == sum(map(len, parts))
    assert head["ETag"] == f'"{multipart_etag(parts)}"'
    assert head["Metadata"] == {"sha512": "abc"}
    assert body_of(s3, s3_bucket, "big") == b"".join(parts)
    assert body_of(s3, s3_bucket, "big", Range=f"bytes={5 * MiB - 2}-{5 * MiB + 1}") == \
        parts[0][-2:] + parts[1][:2]


def test_parts_below_5_mib_are_refused_at_complete(s3_server: S3Server, s3_bucket: str) -> None:
    """Both enforce S3's 5 MiB minimum for every part but the last, at CompleteMultipartUpload."""
    s3 = s3_server.client()
    up = s3.create_multipart_upload(Bucket=s3_bucket, Key="small")
    parts = [{"ETag": s3.upload_part(Bucket=s3_bucket, Key="small", UploadId=up["UploadId"], PartNumber=n,
                                     Body=b"x" * 1000)["ETag"], "PartNumber": n} for n in (1, 2)]
    assert outcome(s3.complete_multipart_upload, Bucket=s3_bucket, Key="small", UploadId=up["UploadId"],
                   MultipartUpload={"Parts": parts}) == (400, "EntityTooSmall")
    # the upload survives a refused complete: the driver has to abort it
    assert [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", [])] == \
        [up["UploadId"]]


def test_list_and_abort_multipart_uploads(s3_server: S3Server, s3_bucket: str) -> None:
    s3 = s3_server.client()
    a = s3.create_multipart_upload(Bucket=s3_bucket, Key="tmp/a")["UploadId"]
    b = s3.create_multipart_upload(Bucket=s3_bucket, Key="tmp/b")["UploadId"]
    s3.upload_part(Bucket=s3_bucket, Key="tmp/a", UploadId=a, PartNumber=1, Body=b"part")
    listed = s3.list_multipart_uploads(Bucket=s3_bucket, Prefix="tmp/")["Uploads"]
    assert sorted((u["Key"], u["UploadId"]) for u in listed) == sorted([("tmp/a", a), ("tmp/b", b)])
    assert s3.list_multipart_uploads(Bucket=s3_bucket, Prefix="other/").get("Uploads", []) == []
    assert outcome(s3.abort_multipart_upload, Bucket=s3_bucket, Key="tmp/a", UploadId=a) == (204, "")
    assert [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=s3_bucket)["Uploads"]] == [b]
    assert outcome(s3.abort_multipart_upload, Bucket=s3_bucket, Key="tmp/a", UploadId=a) == (404, "NoSuchUpload")
    gone = outcome(s3.list_parts, Bucket=s3_bucket, Key="tmp/a", UploadId=a)
    assert gone == expected(s3_server).list_parts_after_abort
    assert s3.list_objects_v2(Bucket=s3_bucket).get("Contents", []) == []  # an upload is not an object


def test_copy_object_and_upload_part_copy(s3_server: S3Server, s3_bucket: str) -> None:
    s3 = s3_server.client()
    src = os.urandom(6 * MiB + 11)
    s3.put_object(Bucket=s3_bucket, Key="src", Body=src, Metadata={"format": "raw"})
    copied = s3.copy_object(Bucket=s3_bucket, Key="copy", CopySource={"Bucket": s3_bucket, "Key": "src"})
    quoted = expected(s3_server).copy_result_etag_quoted
    md5 = hashlib.md5(src).hexdigest()
    assert copied["CopyObjectResult"]["ETag"] == (f'"{md5}"' if quoted else md5)
    assert s3.head_object(Bucket=s3_bucket, Key="copy")["ETag"] == f'"{md5}"'  # HEAD quotes it on both
    head = s3.head_object(Bucket=s3_bucket, Key="copy")
    assert head["Metadata"] == {"format": "raw"}  # MetadataDirective COPY (the default)
    assert body_of(s3, s3_bucket, "copy") == src
    # a server-side copy in two ranged parts, in reverse order of the source
    up = s3.create_multipart_upload(Bucket=s3_bucket, Key="parts")["UploadId"]
    cut = 5 * MiB
    spans = [(1, f"bytes={len(src) - cut}-{len(src) - 1}"), (2, f"bytes=0-{len(src) - cut - 1}")]
    parts = []
    for number, span in spans:
        r = s3.upload_part_copy(Bucket=s3_bucket, Key="parts", UploadId=up, PartNumber=number,
                                CopySource={"Bucket": s3_bucket, "Key": "src"}, CopySourceRange=span)
        etag = r["CopyPartResult"]["ETag"]
        want = hashlib.md5(src[-cut:] if number == 1 else src[:-cut]).hexdigest()
        assert etag == (f'"{want}"' if quoted else want)
        parts.append({"ETag": etag, "PartNumber": number})  # accepted back as it came, by both
    s3.complete_multipart_upload(Bucket=s3_bucket, Key="parts", UploadId=up, MultipartUpload={"Parts": parts})
    assert body_of(s3, s3_bucket, "parts") == src[-cut:] + src[:-cut]
    assert s3.head_object(Bucket=s3_bucket, Key="parts")["ETag"] == f'"{multipart_etag([src[-cut:], src[:-cut]])}"'


def test_presigned_get_with_urllib(s3_server: S3Server, s3_bucket: str) -> None:
    s3 = s3_server.client()
    data = os.urandom(100_000)
    s3.put_object(Bucket=s3_bucket, Key="img", Body=data)
    url = s3.generate_presigned_url("get_object", Params={"Bucket": s3_bucket, "Key": "img"}, ExpiresIn=300)
    assert url.startswith(s3_server.endpoint + f"/{s3_bucket}/img?") and "X-Amz-Signature=" in url
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert resp.status == 200 and resp.read() == data
    req = urllib.request.Request(url, headers={"Range": "bytes=5-9"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 206 and resp.read() == data[5:10]
    # without any signature: private on both
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"{s3_server.endpoint}/{s3_bucket}/img", timeout=10)
    assert err.value.code == 403


# ====================================================================== measured differences
# What each server does, as measured with moto 5.2.1 and radosgw 16.2.15 (Debian 12).
# Each test asserts the row of the server it runs on, so a server upgrade that changes
# a behaviour fails here first.
@dataclass(frozen=True)
class Behaviour:
    complete_if_none_match_existing: tuple[int, str]  # CompleteMultipartUpload, If-None-Match: *, key exists
    complete_overwrites: bool
    copy_if_none_match_existing: tuple[int, str]
    wrong_secret: tuple[int, str]
    unknown_access_key: tuple[int, str]
    other_user_get: tuple[int, str]
    other_user_put: tuple[int, str]
    other_user_creates_same_bucket: tuple[int, str]
    bad_content_md5: tuple[int, str]
    tampered_presigned: int
    expired_presigned: int
    location_constraint_other_region: tuple[int, str]
    upload_part_after_abort: tuple[int, str]
    complete_response_etag_empty: bool
    metadata_refusals: frozenset[int]  # how a too large header block is refused (CLOSED: no response)
    metadata_single_value_max: tuple[int, int]  # bounds of the largest accepted single value
    keep_alive: bool  # False: "Connection: close" on every response, one connection per request
    list_parts_after_abort: tuple[int, str]
    copy_result_etag_quoted: bool  # the ETag of CopyObjectResult / CopyPartResult in quotes, as S3 sends it


EXPECTED = {
    "moto": Behaviour(
        complete_if_none_match_existing=(412, "PreconditionFailed"),
        complete_overwrites=False,
        copy_if_none_match_existing=(200, ""),
        wrong_secret=(200, ""),
        unknown_access_key=(200, ""),
        other_user_get=(200, ""),
        other_user_put=(200, ""),
        other_user_creates_same_bucket=(200, ""),
        bad_content_md5=(200, ""),
        tampered_presigned=200,
        expired_presigned=200,
        location_constraint_other_region=(200, ""),
        upload_part_after_abort=(500, "500"),
        complete_response_etag_empty=False,
        metadata_refusals=frozenset({431}),  # werkzeug: one header line over 64 KiB (or over 100 headers)
        metadata_single_value_max=(60_000, 65_536),
        keep_alive=False,  # werkzeug's development server
        list_parts_after_abort=(404, "NoSuchUpload"),
        copy_result_etag_quoted=True,
    ),
    "radosgw": Behaviour(
        complete_if_none_match_existing=(200, ""),
        complete_overwrites=True,
        copy_if_none_match_existing=(200, ""),
        wrong_secret=(403, "SignatureDoesNotMatch"),
        unknown_access_key=(403, "InvalidAccessKeyId"),
        other_user_get=(403, "AccessDenied"),
        other_user_put=(403, "AccessDenied"),
        other_user_creates_same_bucket=(409, "BucketAlreadyExists"),
        bad_content_md5=(400, "BadDigest"),
        tampered_presigned=403,
        expired_presigned=403,
        location_constraint_other_region=(400, "InvalidLocationConstraint"),
        upload_part_after_abort=(404, "NoSuchUpload"),
        complete_response_etag_empty=True,
        # beast: the whole request header block over ~16 KiB; a 400 without S3 error body, or, when
        # the refusal races the rest of the request, the connection closed before any response
        metadata_refusals=frozenset({400, CLOSED}),
        # radosgw's 16 KiB header budget less every other header of the request: botocore's
        # User-Agent grows with its version (11,874 bytes measured with a newer one)
        metadata_single_value_max=(11_000, 16_384),
        keep_alive=True,
        list_parts_after_abort=(404, "NoSuchKey"),
        copy_result_etag_quoted=False,
    ),
}


def expected(server: S3Server) -> Behaviour:
    return EXPECTED[server.name]


def test_if_none_match_on_put_object(s3_server: S3Server, s3_bucket: str) -> None:
    """Both honour ``If-None-Match: *`` on PutObject: 412 when the key exists, nothing written."""
    s3 = s3_server.client(**NO_RETRY)
    s3.put_object(Bucket=s3_bucket, Key="k", Body=b"first")
    assert outcome(s3.put_object, Bucket=s3_bucket, Key="k", Body=b"second", IfNoneMatch="*") == \
        (412, "PreconditionFailed")
    assert body_of(s3, s3_bucket, "k") == b"first"
    assert outcome(s3.put_object, Bucket=s3_bucket, Key="new", Body=b"x", IfNoneMatch="*") == (200, "")


def test_if_none_match_on_complete_multipart_upload(s3_server: S3Server, s3_bucket: str) -> None:
    """moto: 412 and the upload stays; radosgw 16.2: ignored, the object is silently replaced."""
    s3 = s3_server.client(**NO_RETRY)
    want = expected(s3_server)
    s3.put_object(Bucket=s3_bucket, Key="k", Body=b"first")
    up = s3.create_multipart_upload(Bucket=s3_bucket, Key="k")["UploadId"]
    etag = s3.upload_part(Bucket=s3_bucket, Key="k", UploadId=up, PartNumber=1, Body=b"second")["ETag"]
    got = outcome(s3.complete_multipart_upload, Bucket=s3_bucket, Key="k", UploadId=up, IfNoneMatch="*",
                  MultipartUpload={"Parts": [{"ETag": etag, "PartNumber": 1}]})
    assert got == want.complete_if_none_match_existing
    assert body_of(s3, s3_bucket, "k") == (b"second" if want.complete_overwrites else b"first")
    left = [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", [])]
    assert left == ([] if want.complete_overwrites else [up])
    # on a new key the condition holds on both
    up2 = s3.create_multipart_upload(Bucket=s3_bucket, Key="new")["UploadId"]
    etag2 = s3.upload_part(Bucket=s3_bucket, Key="new", UploadId=up2, PartNumber=1, Body=b"x")["ETag"]
    assert outcome(s3.complete_multipart_upload, Bucket=s3_bucket, Key="new", UploadId=up2, IfNoneMatch="*",
                   MultipartUpload={"Parts": [{"ETag": etag2, "PartNumber": 1}]}) == (200, "")


def test_if_none_match_on_copy_object(s3_server: S3Server, s3_bucket: str) -> None:
    """Neither server honours ``If-None-Match: *`` on CopyObject: the target is replaced."""
    s3 = s3_server.client(**NO_RETRY)
    s3.put_object(Bucket=s3_bucket, Key="src", Body=b"source")
    s3.put_object(Bucket=s3_bucket, Key="dst", Body=b"existing")
    add_header(s3, "CopyObject", "If-None-Match", "*")
    got = outcome(s3.copy_object, Bucket=s3_bucket, Key="dst", CopySource={"Bucket": s3_bucket, "Key": "src"})
    assert got == expected(s3_server).copy_if_none_match_existing
    assert body_of(s3, s3_bucket, "dst") == b"source"


def test_authentication(s3_server: S3Server, s3_bucket: str) -> None:
    """radosgw checks SigV4 signatures and access keys; moto accepts anything. Neither
    checks the region in the signature's scope."""
    want = expected(s3_server)
    s3_server.client().put_object(Bucket=s3_bucket, Key="k", Body=b"x")
    secret = s3_server.secret_key
    wrong = s3_server.client(secret_key=("y" if secret[0] == "x" else "x") + secret[1:], **NO_RETRY)  # never itself
    assert outcome(wrong.get_object, Bucket=s3_bucket, Key="k") == want.wrong_secret
    unknown = s3_server.client(access_key="NOSUCHACCESSKEY00000", **NO_RETRY)
    assert outcome(unknown.head_bucket, Bucket=s3_bucket)[0] == want.unknown_access_key[0]  # HEAD: no body
    assert outcome(unknown.get_object, Bucket=s3_bucket, Key="k") == want.unknown_access_key
    other_region = dataclasses.replace(s3_server, region="eu-west-1").client(**NO_RETRY)
    assert outcome(other_region.get_object, Bucket=s3_bucket, Key="k") == (200, "")


def test_second_user_is_another_account(s3_server: S3Server, s3_bucket: str) -> None:
    """radosgw's second user has no access to the first one's bucket; moto enforces nothing."""
    want = expected(s3_server)
    s3_server.client().put_object(Bucket=s3_bucket, Key="k", Body=b"x")
    alt = s3_server.client(alt=True, **NO_RETRY)
    assert outcome(alt.get_object, Bucket=s3_bucket, Key="k") == want.other_user_get
    assert outcome(alt.put_object, Bucket=s3_bucket, Key="alt", Body=b"y") == want.other_user_put
    assert outcome(alt.create_bucket, Bucket=s3_bucket) == want.other_user_creates_same_bucket
    # the owner re-creating its own bucket is fine on both
    assert outcome(s3_server.client().create_bucket, Bucket=s3_bucket) == (200, "")


def test_content_md5_is_checked_by_radosgw_only(s3_server: S3Server, s3_bucket: str) -> None:
    s3 = s3_server.client(**NO_RETRY)
    wrong = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    got = outcome(s3.put_object, Bucket=s3_bucket, Key="k", Body=b"data", ContentMD5=wrong)
    assert got == expected(s3_server).bad_content_md5
    stored = outcome(s3.head_object, Bucket=s3_bucket, Key="k")
    assert stored == ((200, "") if got[0] == 200 else (404, "404"))
    right = base64.b64encode(hashlib.md5(b"data").digest()).decode()
    assert outcome(s3.put_object, Bucket=s3_bucket, Key="k2", Body=b"data", ContentMD5=right) == (200, "")


def test_presigned_url_tampered_or_expired(s3_server: S3Server, s3_bucket: str) -> None:
    want = expected(s3_server)
    s3 = s3_server.client()
    s3.put_object(Bucket=s3_bucket, Key="k", Body=b"x")

    def status(url: str) -> int:
        try:
            with urllib.request.urlopen(url, timeout=10) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as exc:
            return exc.code

    url = s3.generate_presigned_url("get_object", Params={"Bucket": s3_bucket, "Key": "k"}, ExpiresIn=1)
    sig = url.index("X-Amz-Signature=") + len("X-Amz-Signature=")
    tampered = url[:sig] + ("0" if url[sig] != "0" else "1") + url[sig + 1:]
    assert status(tampered) == want.tampered_presigned
    time.sleep(2.1)  # X-Amz-Date has 1 s resolution: 2.1 s is past the 1 s expiry for sure
    assert status(url) == want.expired_presigned


def test_location_constraint(s3_server: S3Server) -> None:
    """With region us-east-1 the driver must not send a LocationConstraint: radosgw's
    zonegroup ("default") refuses another region's name; moto accepts any."""
    s3 = s3_server.client(**NO_RETRY)
    bucket = f"imagestore-lc-{uuid.uuid4().hex[:10]}"
    got = outcome(s3.create_bucket, Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    try:
        assert got == expected(s3_server).location_constraint_other_region
    finally:
        if got[0] == 200:
            s3.delete_bucket(Bucket=bucket)


def test_upload_part_after_abort(s3_server: S3Server, s3_bucket: str) -> None:
    s3 = s3_server.client(**NO_RETRY)
    up = s3.create_multipart_upload(Bucket=s3_bucket, Key="k")["UploadId"]
    s3.abort_multipart_upload(Bucket=s3_bucket, Key="k", UploadId=up)
    got = outcome(s3.upload_part, Bucket=s3_bucket, Key="k", UploadId=up, PartNumber=1, Body=b"late")
    assert got == expected(s3_server).upload_part_after_abort


def test_complete_multipart_response_etag(s3_server: S3Server, s3_bucket: str) -> None:
    """radosgw 16.2 answers CompleteMultipartUpload with an empty <ETag/>; HEAD has the right one."""
    s3 = s3_server.client()
    parts = [os.urandom(5 * MiB), b"tail"]
    up = s3.create_multipart_upload(Bucket=s3_bucket, Key="k")["UploadId"]
    done = [{"ETag": s3.upload_part(Bucket=s3_bucket, Key="k", UploadId=up, PartNumber=n, Body=p)["ETag"],
             "PartNumber": n} for n, p in enumerate(parts, 1)]
    resp = s3.complete_multipart_upload(Bucket=s3_bucket, Key="k", UploadId=up, MultipartUpload={"Parts": done})
    if expected(s3_server).complete_response_etag_empty:
        assert resp.get("ETag", "") == ""
    else:
        assert resp["ETag"] == f'"{multipart_etag(parts)}"'
    assert s3.head_object(Bucket=s3_bucket, Key="k")["ETag"] == f'"{multipart_etag(parts)}"'


def test_user_metadata_size_limit(s3_server: S3Server, s3_bucket: str) -> None:
    """Neither enforces S3's 2 KiB user-metadata limit (400 MetadataTooLarge on AWS): the only
    limit is the HTTP header size of each server, measured here by bisection."""
    want = expected(s3_server)
    s3 = s3_server.client(**NO_RETRY)
    big = {"sha512": "a" * 128, "note": "n" * 8000}  # 8 KiB: 4x what AWS allows
    s3.put_object(Bucket=s3_bucket, Key="m", Body=b"", Metadata=big)
    assert s3.head_object(Bucket=s3_bucket, Key="m")["Metadata"] == big
    s3.put_object(Bucket=s3_bucket, Key="m", Body=b"", Metadata={"MixedCase": "v"})
    assert s3.head_object(Bucket=s3_bucket, Key="m")["Metadata"] == {"mixedcase": "v"}  # names: lower case

    refusals: set[int] = set()

    def accepted(n: int) -> bool:
        try:
            got = outcome(s3.put_object, Bucket=s3_bucket, Key="m", Body=b"", Metadata={"v": "x" * n})
        except ConnectionClosedError:
            got = (CLOSED, "")
        if got[0] != 200:
            refusals.add(got[0])
        return got[0] == 200

    lo, hi = 8000, 70_000
    assert accepted(lo) and not accepted(hi)
    while lo + 1 < hi:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if accepted(mid) else (lo, mid)
    low, high = want.metadata_single_value_max
    assert low <= lo < high, f"largest accepted single metadata value: {lo} bytes"
    assert refusals and refusals <= want.metadata_refusals, refusals


def test_radosgw_swift_credentials(radosgw: Radosgw) -> None:
    """The Swift subuser of the radosgw fixture works (v1 auth) and sees the S3 user's buckets."""
    from swiftclient import client as swift

    bucket = f"imagestore-swift-{uuid.uuid4().hex[:8]}"
    s3 = radosgw.client()
    s3.create_bucket(Bucket=bucket)
    try:
        conn = swift.Connection(authurl=radosgw.swift_auth_url, user=radosgw.swift_user, key=radosgw.swift_key,
                                retries=0, timeout=10)
        conn.put_object(bucket, "obj", contents=b"from swift")
        assert body_of(s3, bucket, "obj") == b"from swift"
        assert bucket in [c["name"] for c in conn.get_account()[1]]
        with pytest.raises(swift.ClientException) as err:
            swift.Connection(authurl=radosgw.swift_auth_url, user=radosgw.swift_user, key="wrong",
                             retries=0, timeout=10).get_account()
        assert err.value.http_status == 401
    finally:
        s3.delete_object(Bucket=bucket, Key="obj")
        s3.delete_bucket(Bucket=bucket)
    assert radosgw.cluster.kind == "v2"
    assert '"user_id": "imagestore-alt"' in radosgw.admin("user", "info", f"--uid={radosgw.alt_user}")


# ====================================================================== fault proxy on a stdlib server
@dataclass
class Seen:
    method: str
    path: str
    received: int  # body bytes the server got
    complete: bool  # the whole declared body arrived


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Upstream

    def log_message(self, *args: Any) -> None:
        pass

    def _read_body(self) -> tuple[int, bool]:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            got = 0
            while True:
                line = self.rfile.readline()
                if not line:
                    return got, False
                size = int(line.split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b""):
                        pass
                    return got, True
                chunk = self.rfile.read(size + 2)
                got += max(0, len(chunk) - 2)
                if len(chunk) < size + 2:
                    return got, False
        want = int(self.headers.get("Content-Length") or 0)
        got = 0
        while got < want:
            data = self.rfile.read1(min(65536, want - got))
            if not data:
                break
            got += len(data)
        return got, got == want

    def _answer(self, body: bytes, status: int = 200) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self) -> None:
        size = int(self.path.rsplit("/", 1)[-1]) if self.path.rsplit("/", 1)[-1].isdigit() else 10
        self.server.record(Seen("GET", self.path, 0, True))
        self._answer(self.server.payload[:size])

    def do_HEAD(self) -> None:
        self.server.record(Seen("HEAD", self.path, 0, True))
        self._answer(b"x" * 10)

    def do_PUT(self) -> None:
        try:
            got, complete = self._read_body()
        except OSError:
            got, complete = -1, False
        self.server.record(Seen("PUT", self.path, got, complete))
        if complete:
            self._answer(str(got).encode())

    do_POST = do_PUT


class _Upstream(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.payload = os.urandom(4 * MiB)
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        self._received = threading.Condition(self._lock)

    def record(self, seen: Seen) -> None:
        with self._received:
            self.seen.append(seen)
            self._received.notify_all()

    def wait_for(self, n: int, timeout: float = 10) -> list[Seen]:
        """The first ``n`` requests the server saw, once it has seen them."""
        with self._received:
            assert self._received.wait_for(lambda: len(self.seen) >= n, timeout), self.seen
            return list(self.seen[:n])

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # resets made by the proxy on purpose


@pytest.fixture
def upstream() -> Iterator[_Upstream]:
    server = _Upstream()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _conn(proxy: FaultProxy, timeout: float = 10) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=timeout)


def test_proxy_counts_requests_on_keep_alive(upstream: _Upstream, fault_proxy: FaultProxyFactory) -> None:
    proxy = fault_proxy("127.0.0.1", upstream.server_address[1])
    c = _conn(proxy)
    c.request("GET", "/obj/1000")
    assert c.getresponse().read() == upstream.payload[:1000]
    c.request("PUT", "/obj/a", body=b"y" * 70_000)
    assert c.getresponse().read() == b"70000"
    c.request("PUT", "/obj/b", body=iter([b"abc", b"", b"defgh" * 1000]), encode_chunked=True)
    assert c.getresponse().read() == b"5003"
    c.request("HEAD", "/obj/h")
    r = c.getresponse()
    assert r.getheader("Content-Length") == "10" and r.read() == b""
    c.request("GET", "/obj/0")
    assert c.getresponse().read() == b""
    c.close()
    c2 = _conn(proxy)
    c2.request("GET", "/again/5")
    assert c2.getresponse().read() == upstream.payload[:5]
    c2.close()
    assert proxy.connections == 2 and proxy.requests == 6
    assert [(r.connection, r.method, r.target, r.status, r.fault) for r in proxy.log] == [
        (1, "GET", "/obj/1000", 200, None), (1, "PUT", "/obj/a", 200, None), (1, "PUT", "/obj/b", 200, None),
        (1, "HEAD", "/obj/h", 200, None), (1, "GET", "/obj/0", 200, None), (2, "GET", "/again/5", 200, None)]
    assert proxy.log[2].headers["transfer-encoding"] == "chunked"
    assert len(upstream.wait_for(6)) == 6
    proxy.reset_counters()
    assert (proxy.connections, proxy.requests, proxy.log) == (0, 0, [])


def test_proxy_storm_answers_itself(upstream: _Upstream, fault_proxy: FaultProxyFactory) -> None:
    proxy = fault_proxy("127.0.0.1", upstream.server_address[1])
    proxy.storm(2)
    proxy.storm(1, status=500)
    for code, s3code in [(503, "SlowDown"), (503, "SlowDown"), (500, "InternalError")]:
        c = _conn(proxy)
        c.request("PUT", "/x", body=b"z" * 1000)
        r = c.getresponse()
        body = r.read()
        assert (r.status, r.version, r.getheader("Connection")) == (code, 11, "close")
        assert r.getheader("Content-Length") == str(len(body))
        assert f"<Code>{s3code}</Code>".encode() in body and body.startswith(b"<?xml")
        assert r.will_close
        c.close()
    assert proxy.pending_faults == 0
    c = _conn(proxy)
    c.request("PUT", "/x", body=b"z" * 1000)
    assert c.getresponse().read() == b"1000"
    c.close()
    assert [(r.status, r.fault) for r in proxy.log] == [(503, "storm"), (503, "storm"), (500, "storm"), (200, None)]
    assert [s.path for s in upstream.wait_for(1)] == ["/x"] and len(upstream.seen) == 1  # storms never forwarded


def test_proxy_drop_response_mid_body(upstream: _Upstream, fault_proxy: FaultProxyFactory) -> None:
    proxy = fault_proxy("127.0.0.1", upstream.server_address[1])
    proxy.drop_response(after=100_000, how="close")
    c = _conn(proxy)
    c.request("GET", "/small/1000")  # not longer than the cut: passes, the fault stays armed
    assert len(c.getresponse().read()) == 1000
    c.request("GET", "/big/300000")
    r = c.getresponse()
    assert r.status == 200 and r.getheader("Content-Length") == "300000"
    with pytest.raises(http.client.IncompleteRead) as err:
        r.read()
    assert err.value.partial == upstream.payload[:100_000]  # "close": exactly the bytes before the cut
    c.close()
    proxy.drop_response(after=50_000)  # "reset"
    c = _conn(proxy)
    c.request("GET", "/big/300000")
    r = c.getresponse()
    got = bytearray()
    with pytest.raises((ConnectionResetError, http.client.IncompleteRead)):
        while chunk := r.read(8192):
            got += chunk
        raise AssertionError("the body ended cleanly")
    assert len(got) <= 50_000 and bytes(got) == upstream.payload[:len(got)]
    c.close()
    assert [(r.target, r.fault) for r in proxy.log] == [
        ("/small/1000", None), ("/big/300000", "drop_response"), ("/big/300000", "drop_response")]


def test_proxy_drop_request_mid_body(upstream: _Upstream, fault_proxy: FaultProxyFactory) -> None:
    proxy = fault_proxy("127.0.0.1", upstream.server_address[1])
    proxy.drop_request(after=20_000, how="close", match=lambda r: r.path == "/up")
    c = _conn(proxy)
    c.request("PUT", "/other", body=b"a" * 50_000)  # does not match
    assert c.getresponse().read() == b"50000"
    with pytest.raises((ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected)):
        c.request("PUT", "/up", body=b"b" * 1_000_000)
        c.getresponse()
    c.close()
    seen = upstream.wait_for(2)
    assert (seen[1].path, seen[1].received, seen[1].complete) == ("/up", 20_000, False)  # "close": exactly
    proxy.drop_request(after=30_000)  # "reset": the server gets at most that much
    c = _conn(proxy)
    with pytest.raises((ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected)):
        c.request("PUT", "/up2", body=b"c" * 1_000_000)
        c.getresponse()
    c.close()
    seen = upstream.wait_for(3)
    assert seen[2].path == "/up2" and seen[2].received <= 30_000 and not seen[2].complete
    assert [(r.target, r.status, r.fault) for r in proxy.log] == [
        ("/other", 200, None), ("/up", None, "drop_request"), ("/up2", None, "drop_request")]


def test_proxy_lose_response(upstream: _Upstream, fault_proxy: FaultProxyFactory) -> None:
    """The server handles the request completely; the client only sees the connection die."""
    proxy = fault_proxy("127.0.0.1", upstream.server_address[1])
    proxy.lose_response()
    c = _conn(proxy)
    c.request("PUT", "/k", body=b"q" * 4096)
    with pytest.raises((ConnectionResetError, http.client.RemoteDisconnected)):
        c.getresponse()
    c.close()
    assert [(s.path, s.received, s.complete) for s in upstream.wait_for(1)] == [("/k", 4096, True)]
    assert [(r.status, r.fault) for r in proxy.log] == [(200, "lose_response")]


def test_proxy_stall_and_throttle(upstream: _Upstream, fault_proxy: FaultProxyFactory) -> None:
    proxy = fault_proxy("127.0.0.1", upstream.server_address[1])
    proxy.stall(5.0)
    c = _conn(proxy, timeout=0.3)
    t0 = time.monotonic()
    c.request("GET", "/s/10")
    with pytest.raises(TimeoutError):
        c.getresponse()
    assert 0.25 < time.monotonic() - t0 < 4
    c.close()
    proxy.stall(1.0, after=1000)  # mid-body: the head and 1000 bytes come at once, the rest later
    c = _conn(proxy)
    t0 = time.monotonic()
    c.request("GET", "/s/5000")
    r = c.getresponse()
    assert r.read(1000) == upstream.payload[:1000]
    t1 = time.monotonic()
    assert r.read() == upstream.payload[1000:5000]
    t2 = time.monotonic()
    assert t2 - t0 >= 1.0 and t2 - t1 >= 0.5, (t1 - t0, t2 - t0)
    proxy.throttle(200_000, direction="response")
    t0 = time.monotonic()
    c.request("GET", "/t/200000")
    assert c.getresponse().read() == upstream.payload[:200_000]
    assert 0.9 <= time.monotonic() - t0 < 5  # 200 kB at 200 kB/s
    proxy.passthrough()
    t0 = time.monotonic()
    c.request("GET", "/t/200000")
    assert len(c.getresponse().read()) == 200_000 and time.monotonic() - t0 < 0.8
    c.close()


def test_proxy_upstream_down_resets_the_client(fault_proxy: FaultProxyFactory) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]  # nothing listens once closed
    proxy = fault_proxy(f"http://127.0.0.1:{dead_port}")
    c = _conn(proxy)
    with pytest.raises((ConnectionResetError, http.client.RemoteDisconnected, BrokenPipeError)):
        c.request("GET", "/x")
        c.getresponse()
    c.close()
    assert proxy.upstream_failures == 1 and proxy.requests == 1


def test_proxy_relays_other_protocols_untouched(fault_proxy: FaultProxyFactory) -> None:
    """A connection that does not start like HTTP (here: TLS-like bytes) is relayed as is."""
    with socket.create_server(("127.0.0.1", 0)) as listener:

        def echo() -> None:
            conn, _ = listener.accept()
            with conn:
                while data := conn.recv(65536):
                    conn.sendall(data.upper())

        thread = threading.Thread(target=echo, daemon=True)
        thread.start()
        proxy = fault_proxy(listener.getsockname())
        proxy.storm(None)  # armed for every HTTP request: must not touch this connection
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as c:
            c.sendall(b"\x16\x03\x01\x00\x05hello")
            got = b""
            while len(got) < 10:
                got += c.recv(100)
            assert got == b"\x16\x03\x01\x00\x05HELLO"
        thread.join(5)
    assert (proxy.connections, proxy.requests, proxy.pending_faults) == (1, 0, 1)


def test_proxy_close_ends_open_connections(upstream: _Upstream) -> None:
    proxy = FaultProxy("127.0.0.1", upstream.server_address[1]).start()
    proxy.stall(30)
    c = _conn(proxy, timeout=10)
    c.request("GET", "/s/10")
    time.sleep(0.2)
    t0 = time.monotonic()
    proxy.close()
    with pytest.raises((ConnectionResetError, http.client.RemoteDisconnected)):
        c.getresponse()
    assert time.monotonic() - t0 < 5 and proxy.errors == []
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", proxy.port), timeout=2)


# ====================================================================== fault proxy in front of S3
def test_mid_body_drop_seen_by_boto3_get(s3_server: S3Server, s3_bucket: str, fault_proxy: FaultProxyFactory) -> None:
    data = os.urandom(2 * MiB)
    s3_server.client().put_object(Bucket=s3_bucket, Key="img", Body=data)
    proxy = fault_proxy(s3_server)
    s3 = s3_server.client(endpoint=proxy.endpoint, **NO_RETRY)
    proxy.drop_response(after=700_000, how="close", match=lambda r: r.method == "GET")
    resp = s3.get_object(Bucket=s3_bucket, Key="img")
    assert resp["ContentLength"] == len(data)
    got = bytearray()
    with pytest.raises((ResponseStreamingError, IncompleteReadError)):
        for chunk in resp["Body"].iter_chunks(65536):
            got += chunk
    assert bytes(got) == data[:700_000]  # exactly up to the cut
    # the reader resumes where it stopped, with a ranged GET on a new connection
    rest = s3.get_object(Bucket=s3_bucket, Key="img", Range=f"bytes={len(got)}-")
    assert bytes(got) + rest["Body"].read() == data
    # "reset": an error too, with at most the bytes before the cut
    proxy.drop_response(after=300_000, match=lambda r: r.method == "GET")
    got = bytearray()
    with pytest.raises((ResponseStreamingError, IncompleteReadError)):
        for chunk in s3.get_object(Bucket=s3_bucket, Key="img")["Body"].iter_chunks(65536):
            got += chunk
    assert len(got) <= 300_000 and bytes(got) == data[:len(got)]
    assert [(r.method, r.status, r.fault) for r in proxy.log] == [
        ("GET", 200, "drop_response"), ("GET", 206, None), ("GET", 200, "drop_response")]
    # radosgw keeps the ranged GET's connection alive for the third GET; moto closes each one
    assert proxy.connections == (2 if expected(s3_server).keep_alive else 3)


def test_503_storm_retried_by_boto3(s3_server: S3Server, s3_bucket: str, fault_proxy: FaultProxyFactory,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from botocore.retries import standard

    proxy = fault_proxy(s3_server)
    # standard mode with 4 attempts: three 503 SlowDown answers, then success. Its backoff
    # (random, up to 4 s here) is set to 0 so the test is fast; the retry decisions are boto3's.
    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, context: 0)
    s3 = s3_server.client(endpoint=proxy.endpoint, retries={"mode": "standard", "total_max_attempts": 4})
    proxy.storm(3)
    s3.put_object(Bucket=s3_bucket, Key="k", Body=b"after the storm")
    assert [(r.method, r.status, r.fault) for r in proxy.log] == [("PUT", 503, "storm")] * 3 + [("PUT", 200, None)]
    assert proxy.connections == 4  # every storm answer closes its connection
    assert body_of(s3, s3_bucket, "k") == b"after the storm"
    # a storm longer than the attempts surfaces as SlowDown
    proxy.reset_counters()
    short = s3_server.client(endpoint=proxy.endpoint, retries={"mode": "standard", "total_max_attempts": 2})
    proxy.storm(3, match=lambda r: r.method == "GET")
    assert outcome(short.get_object, Bucket=s3_bucket, Key="k") == (503, "SlowDown")
    assert proxy.requests == 2 and proxy.pending_faults == 1
    proxy.passthrough()
    # boto3's default (legacy) mode retries a 500 InternalError too (real backoff: < 1 s for one retry)
    proxy.reset_counters()
    legacy = s3_server.client(endpoint=proxy.endpoint)
    proxy.storm(1, status=500)
    assert body_of(legacy, s3_bucket, "k") == b"after the storm"
    assert [(r.status, r.fault) for r in proxy.log] == [(500, "storm"), (200, None)]


def test_mid_request_drop_leaves_no_object(s3_server: S3Server, s3_bucket: str, fault_proxy: FaultProxyFactory) -> None:
    """A PUT cut after 100 kB fails on the client and stores nothing; a retry stores it all."""
    data = os.urandom(MiB)
    proxy = fault_proxy(s3_server)
    s3 = s3_server.client(endpoint=proxy.endpoint, **NO_RETRY)
    proxy.drop_request(after=100_000)
    with pytest.raises((HTTPClientError, BotoConnectionError)):
        s3.put_object(Bucket=s3_bucket, Key="k", Body=data)
    assert outcome(s3.head_object, Bucket=s3_bucket, Key="k") == (404, "404")
    # boto3 sends every PutObject body after "Expect: 100-continue": the proxy relays the 100
    retrying = s3_server.client(endpoint=proxy.endpoint, retries={"mode": "legacy", "total_max_attempts": 2})
    proxy.drop_request(after=100_000)
    retrying.put_object(Bucket=s3_bucket, Key="k", Body=io.BytesIO(data))
    assert body_of(s3, s3_bucket, "k") == data
    puts = [r for r in proxy.log if r.method == "PUT"]
    assert [(r.fault, r.status, r.headers.get("expect")) for r in puts] == [
        ("drop_request", None, "100-continue"), ("drop_request", None, "100-continue"), (None, 200, "100-continue")]


def test_lost_complete_response_is_retried(s3_server: S3Server, s3_bucket: str, fault_proxy: FaultProxyFactory) -> None:
    """Both servers answer a repeated CompleteMultipartUpload (boto3's retry after the first
    answer was lost) with 200, and the object is complete."""
    proxy = fault_proxy(s3_server)
    s3 = s3_server.client(endpoint=proxy.endpoint, retries={"mode": "legacy", "total_max_attempts": 2})
    up = s3.create_multipart_upload(Bucket=s3_bucket, Key="k")["UploadId"]
    etag = s3.upload_part(Bucket=s3_bucket, Key="k", UploadId=up, PartNumber=1, Body=b"only part")["ETag"]
    proxy.lose_response(match=lambda r: r.method == "POST" and "uploadId=" in r.query)
    assert outcome(s3.complete_multipart_upload, Bucket=s3_bucket, Key="k", UploadId=up,
                   MultipartUpload={"Parts": [{"ETag": etag, "PartNumber": 1}]}) == (200, "")
    completes = [(r.status, r.fault) for r in proxy.log if r.method == "POST" and "uploadId=" in r.query]
    assert completes == [(200, "lose_response"), (200, None)]
    assert body_of(s3, s3_bucket, "k") == b"only part"


def test_stall_hits_boto3_read_timeout(s3_server: S3Server, s3_bucket: str, fault_proxy: FaultProxyFactory) -> None:
    s3_server.client().put_object(Bucket=s3_bucket, Key="k", Body=b"slow")
    proxy = fault_proxy(s3_server)
    s3 = s3_server.client(endpoint=proxy.endpoint, read_timeout=0.5, **NO_RETRY)
    proxy.stall(5.0)
    t0 = time.monotonic()
    with pytest.raises(ReadTimeoutError):
        s3.get_object(Bucket=s3_bucket, Key="k")
    assert time.monotonic() - t0 < 4
    assert body_of(s3, s3_bucket, "k") == b"slow"


def test_requests_counted_through_proxy(s3_server: S3Server, s3_bucket: str, fault_proxy: FaultProxyFactory) -> None:
    proxy = fault_proxy(s3_server)
    s3 = s3_server.client(endpoint=proxy.endpoint, **NO_RETRY)
    for i in range(5):
        s3.put_object(Bucket=s3_bucket, Key=f"k{i}", Body=b"x" * i)
    s3.list_objects_v2(Bucket=s3_bucket)
    s3.head_object(Bucket=s3_bucket, Key="k1")
    s3.delete_object(Bucket=s3_bucket, Key="k1")
    # boto3 keeps its connection alive; moto closes it after every response
    assert proxy.connections == (1 if expected(s3_server).keep_alive else 8)
    assert proxy.requests == 8
    assert [(r.method, r.status) for r in proxy.log] == [("PUT", 200)] * 5 + [("GET", 200), ("HEAD", 200),
                                                                            ("DELETE", 204)]
    assert proxy.log[0].path == f"/{s3_bucket}/k0" and proxy.log[5].query.startswith("list-type=2")


def test_proxy_strip_header_makes_moto_ignore_if_none_match(moto_server: S3Server,
                                                            fault_proxy: FaultProxyFactory) -> None:
    """``strip_header`` removes a request header on its way: a conditional PutObject through it
    overwrites (what an endpoint that ignores If-None-Match does); ``passthrough`` ends it."""
    from botocore.exceptions import ClientError

    from tests.services.s3 import temporary_bucket

    proxy = fault_proxy(moto_server)
    client = moto_server.client(endpoint=proxy.endpoint)
    with temporary_bucket(moto_server, "imagestore-strip") as bucket:
        client.put_object(Bucket=bucket, Key="k", Body=b"1", IfNoneMatch="*")
        proxy.strip_header("If-None-Match")
        client.put_object(Bucket=bucket, Key="k", Body=b"2", IfNoneMatch="*")
        assert client.get_object(Bucket=bucket, Key="k")["Body"].read() == b"2"
        assert proxy.log[1].headers.get("if-none-match") == "*"  # seen by the proxy, not forwarded
        proxy.passthrough()
        with pytest.raises(ClientError) as refused:
            client.put_object(Bucket=bucket, Key="k", Body=b"3", IfNoneMatch="*")
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412

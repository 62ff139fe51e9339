"""Location strings: canonical round trip, refusal of credentials, glance_store forms."""

from __future__ import annotations

from datetime import UTC

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imagestore import InvalidLocation, Location

segment = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1,
                  max_size=20).filter(lambda s: s not in (".", ".."))


@settings(deadline=None)  # no wall-clock limit per example: a loaded machine is no failure
@given(scheme=st.sampled_from(["file", "memory", "rbd", "s3", "swift", "http", "https"]),
       host=st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=20),
       path=st.lists(segment, min_size=1, max_size=5),
       store=st.one_of(st.none(), st.from_regex(r"[A-Za-z][A-Za-z0-9_-]{0,10}", fullmatch=True)))
def test_canonical_roundtrip(scheme: str, host: str, path: list[str], store: str | None) -> None:
    loc = Location(scheme, host, tuple(path), store)
    assert Location.parse(str(loc)) == loc


@pytest.mark.parametrize("uri", [
    "s3://AKIA:secret@host/bucket/key",
    "file://user:pw@/x",
    "9ftp://host/x", "s3+https://host/b/k",
    "rbd+x://a/b/c/d",
    "file:///a/../b",
    "file:///a/./b",
    "file:///a//b",
    "memory://ns/x?store=a&other=b",
    "memory://ns/x?token=abc",
    "memory://ns/x#frag",
    "memory://ns/x?store=1bad",
    "memory://ns/",
])
def test_parse_refuses(uri: str) -> None:
    with pytest.raises(InvalidLocation) as err:
        Location.parse(uri)
    assert "secret" not in str(err.value) and "pw" not in str(err.value)


def test_image_property() -> None:
    assert Location.parse("rbd://fsid/images/abc/snap").image == "abc"
    assert Location.parse("file:///var/lib/x/abc").image == "abc"


@pytest.mark.parametrize(("uri", "expected"), [
    ("file:///var/lib/glance/images/abc", Location("file", "", ("var", "lib", "glance", "images", "abc"))),
    ("filesystem:///var/lib/glance/images/abc", Location("file", "", ("var", "lib", "glance", "images", "abc"))),
    ("rbd://6f1c-fsid/images/abc/snap", Location("rbd", "6f1c-fsid", ("images", "abc", "snap"))),
    ("rbd://fs%2Fid/po%20ol/abc/snap", Location("rbd", "fs/id", ("po ol", "abc", "snap"))),
    ("rbd://abc", Location("rbd", "", ("abc",))),
    ("s3://AKIA:se/cr@et@s3.example.com/bucket/dir/key", Location("s3", "s3.example.com", ("bucket", "dir", "key"))),
    ("s3+https://AKIA:secret@s3.example.com:8443/bucket/key", Location("s3", "s3.example.com:8443", ("bucket", "key"))),
    ("s3://s3.example.com/bucket/key", Location("s3", "s3.example.com", ("bucket", "key"))),
    ("swift+https://acct:user:key@auth.example.com/v3/images/abc",
     Location("swift", "auth.example.com", ("images", "abc"))),
    ("swift+config://ref1/images/abc", Location("swift", "ref1", ("images", "abc"))),
    ("swift://user:key@auth:8080/v1/AUTH_x/images/abc", Location("swift", "auth:8080", ("images", "abc"))),
    ("https://user:pw@cdn.example.com/images/abc.qcow2", Location("https", "cdn.example.com", ("images", "abc.qcow2"))),
])
def test_from_glance(uri: str, expected: Location) -> None:
    loc = Location.from_glance(uri)
    assert loc == expected
    text = str(loc)
    for secret in ("secret", "se/cr@et", ":key@", "pw", "AKIA"):
        assert secret not in text
    assert Location.from_glance(uri, store="ceph").store == "ceph"


@pytest.mark.parametrize("uri", ["rbd://a/b", "rbd://a/b/c/d/e", "rbd://fsid//img/snap", "s3://host/bucket",
                                 "swift://u:k@auth/onlyone", "file://relative/path", "gopher://x/y", "nope",
                                 "http:///nohost"])
def test_from_glance_refuses(uri: str) -> None:
    with pytest.raises(InvalidLocation):
        Location.from_glance(uri)


def test_direct_access_repr_shows_its_kind_and_hides_signed_urls() -> None:
    from datetime import datetime

    from imagestore import DirectAccess

    assert repr(DirectAccess("path", path="/srv/x")) == "DirectAccess(kind='path', path='/srv/x')"
    signed = DirectAccess("url", url="https://h/x?signature=TOKEN", expires_at=datetime(2030, 1, 1, tzinfo=UTC))
    assert "TOKEN" not in repr(signed) and "2030-01-01" in repr(signed)
    assert signed.to_dict()["url"].endswith("TOKEN")  # the consumer gets it

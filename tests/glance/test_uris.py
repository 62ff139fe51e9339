"""glance_store URI forms of imagestore locations, per backend scheme (no glance_store needed).

The forms are those glance_store's own drivers write and Nova's and Cinder's
parsers read; each is checked against what those parsers would take, and
against imagestore's own reading of glance URIs (Location.from_glance).
"""

from __future__ import annotations

from urllib.parse import unquote, urlparse

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imagestore import InvalidLocation, Location
from imagestore.compat.uris import FORMS, form_for, glance_uri, is_secure, url_prefix

FSID = "92bf1d38-5a7c-4a8e-9f3b-0c2f4f1e8d11"
IMAGE = "3f2c1e0a-8b7d-4c6e-9a5f-1d2b3c4e5f60"


def nova_parse_rbd(url: str) -> list[str]:
    """Nova's (and Cinder's) rbd parser: rbd://, unquote, four non-empty parts."""
    prefix = "rbd://"
    assert url.startswith(prefix)
    pieces = [unquote(p) for p in url[len(prefix):].split("/")]
    assert "" not in pieces and len(pieces) == 4, url
    return pieces


@pytest.mark.parametrize(("location", "secure", "uri"), [
    (Location("file", "", ("var", "lib", "glance", "images", IMAGE), "fast"), False,
     f"file:///var/lib/glance/images/{IMAGE}"),
    (Location("rbd", FSID, ("images", IMAGE, "snap"), "ceph"), False, f"rbd://{FSID}/images/{IMAGE}/snap"),
    (Location("rbd", "", (IMAGE,), "ceph"), False, f"rbd://{IMAGE}"),
    (Location("s3", "s3.example.com:8080", ("glance", IMAGE), "objects"), False,
     f"s3://s3.example.com:8080/glance/{IMAGE}"),
    (Location("s3", "s3.example.com", ("glance", IMAGE), "objects"), True, f"s3+https://s3.example.com/glance/{IMAGE}"),
    (Location("swift", "swift.example.com", ("glance", IMAGE), "sw"), True,
     f"swift+https://swift.example.com/glance/{IMAGE}"),
    (Location("swift", "127.0.0.1:8080", ("glance", IMAGE), "sw"), False,
     f"swift+http://127.0.0.1:8080/glance/{IMAGE}"),
])
def test_each_scheme_writes_glance_stores_form(location: Location, secure: bool, uri: str) -> None:
    written = glance_uri(location, secure=secure)
    assert written == uri
    assert "?" not in written and "@" not in written  # never imagestore's ?store=, never credentials
    assert urlparse(written).scheme in form_for(location.scheme).schemes
    assert Location.from_glance(written) == location.with_store(None)  # and imagestore reads it back


def test_rbd_uri_passes_novas_cloneable_parse() -> None:
    uri = glance_uri(Location("rbd", FSID, ("images", IMAGE, "snap")))
    assert nova_parse_rbd(uri) == [FSID, "images", IMAGE, "snap"]


@settings(deadline=None)  # no wall-clock limit per example: a loaded machine is no failure
@given(pool=st.from_regex(r"[A-Za-z0-9][A-Za-z0-9 ._/:@-]{0,20}", fullmatch=True))
def test_rbd_parts_are_quoted_so_every_parser_sees_four(pool: str) -> None:
    uri = glance_uri(Location("rbd", FSID, (pool, IMAGE, "snap")))
    assert nova_parse_rbd(uri) == [FSID, pool, IMAGE, "snap"]
    assert Location.from_glance(uri) == Location("rbd", FSID, (pool, IMAGE, "snap"))


@pytest.mark.parametrize("location", [
    Location("file", "", ("srv", "im%41ges", IMAGE)),
    Location("file", "", ("srv", "what?", IMAGE)),
    Location("file", "", ("srv", "a#b", IMAGE)),
    Location("file", "host", ("srv", IMAGE)),
    Location("rbd", FSID, ("images", IMAGE)),
    Location("rbd", "", ("images", IMAGE, "snap")),
    Location("s3", "", ("bucket", IMAGE)),
    Location("s3", "host", (IMAGE,)),
    Location("swift", "host", (IMAGE,)),
])
def test_locations_glance_cannot_carry_are_refused(location: Location) -> None:
    with pytest.raises(InvalidLocation):
        glance_uri(location)


def test_a_driver_without_a_form_is_refused_naming_the_forms() -> None:
    with pytest.raises(InvalidLocation, match="'memory' has no glance_store URI form .*file, rbd, s3, swift"):
        form_for("memory")
    assert set(FORMS) == {"file", "rbd", "s3", "swift"}


def test_schemes_include_every_form_glance_store_registers() -> None:
    assert form_for("file").schemes == ("file", "filesystem")
    assert form_for("rbd").schemes == ("rbd",)
    assert form_for("s3").schemes == ("s3", "s3+http", "s3+https")
    assert form_for("swift").schemes[:3] == ("swift", "swift+http", "swift+https")


@pytest.mark.parametrize(("location_for", "secure", "prefix"), [
    (lambda i: Location("file", "", ("srv", "images", i)), False, "file:///srv/images/"),
    (lambda i: Location("rbd", FSID, ("images", i, "snap")), False, f"rbd://{FSID}/images/"),
    (lambda i: Location("s3", "host:9000", ("bucket", i)), True, "s3+https://host:9000/bucket/"),
    (lambda i: Location("swift", "host", ("glance", i)), True, "swift+https://host/glance/"),
])
def test_url_prefix_ends_at_a_slash(location_for, secure: bool, prefix: str) -> None:  # type: ignore[no-untyped-def]
    assert url_prefix(location_for, secure=secure) == prefix
    assert glance_uri(location_for(IMAGE), secure=secure).startswith(prefix)
    sibling = prefix.rstrip("/") + "2/" + IMAGE  # /srv/images2/... is not /srv/images/...
    assert not sibling.startswith(prefix)


def test_url_prefix_of_a_store_whose_container_depends_on_the_image_id() -> None:
    def seeded(image_id: str) -> Location:  # Swift's container seed: glance_<first 2 characters>
        return Location("swift", "auth.example.com", (f"glance_{image_id[:2]}", image_id))

    prefix = url_prefix(seeded, secure=True)
    assert prefix == "swift+https://auth.example.com/"
    for image_id in ("00aa", "7f00", "ffee", IMAGE):
        assert glance_uri(seeded(image_id), secure=True).startswith(prefix)


@pytest.mark.parametrize(("facts", "host", "secure"), [
    ({"endpoint": "https://s3.example.com"}, None, True),
    ({"endpoint": "http://127.0.0.1:9000"}, "127.0.0.1:9000", False),
    ({"auth_url": "HTTPS://keystone/v3"}, None, True),
    ({"auth_url": "http://auth:5000/v3", "storage_url": "https://proxy/v1/AUTH_x"}, "auth:5000", False),
    ({"auth_url": "http://auth:5000/v3", "storage_url": "https://proxy/v1/AUTH_x"}, "proxy", True),
    ({"auth_url": "https://auth/v3", "storage_url": None}, "auth", True),
    ({"root": "/srv"}, "", False),
    ({}, None, False),
])
def test_is_secure_reads_the_endpoint_the_locations_name(facts: dict[str, str], host: str | None,
                                                         secure: bool) -> None:
    assert is_secure(facts, host) is secure

"""FormatPolicy: allowed formats, declared-vs-detected, raw-only clones."""

from __future__ import annotations

import pytest

from imagestore.errors import ConfigError, UnsafeImage
from imagestore.formats import BANNED_BY_DEFAULT, KNOWN_FORMATS, FormatPolicy, FormatVerdict

QCOW2 = FormatVerdict("qcow2", True, (), 1 << 20)
GPT_RAW = FormatVerdict("raw", True, (), 1 << 20, "gpt")
BAD = FormatVerdict("qcow2", False, ("qcow2 image has a backing file '/etc/passwd'",), 1 << 20)


def test_known_formats() -> None:
    assert {"raw", "qcow2", "qed", "vmdk", "vhd", "vhdx", "vdi", "iso", "luks"} == KNOWN_FORMATS


def test_default_policy_accepts_every_safe_known_format_but_the_banned() -> None:
    assert {"qed"} == BANNED_BY_DEFAULT
    for fmt in KNOWN_FORMATS - BANNED_BY_DEFAULT:
        FormatPolicy().check(FormatVerdict(fmt, True, (), 1))
    with pytest.raises(UnsafeImage) as err:
        FormatPolicy().check(FormatVerdict("qed", True, (), 1))
    assert "not allowed" in str(err.value)


def test_a_banned_format_can_be_allowed_explicitly() -> None:
    FormatPolicy(allowed_formats=frozenset({"qed", "raw"})).check(FormatVerdict("qed", True, (), 1))


def test_unsafe_verdict_is_rejected_with_its_reasons() -> None:
    with pytest.raises(UnsafeImage) as err:
        FormatPolicy().check(BAD, store="local", image="img-1")
    assert err.value.reasons == BAD.reasons
    assert err.value.format == "qcow2"
    assert (err.value.store, err.value.image) == ("local", "img-1")
    assert "/etc/passwd" in str(err.value) and "img-1" in str(err.value)


def test_format_not_allowed() -> None:
    policy = FormatPolicy(allowed_formats=frozenset({"raw", "iso"}))
    policy.check(GPT_RAW)
    with pytest.raises(UnsafeImage, match="not allowed"):
        policy.check(QCOW2)


def test_allowed_formats_are_normalised_and_validated() -> None:
    assert FormatPolicy(allowed_formats=frozenset({"RAW", " Qcow2"})).allowed_formats == {"raw", "qcow2"}
    with pytest.raises(ConfigError, match="gpt"):
        FormatPolicy(allowed_formats=frozenset({"gpt"}))


def test_declared_format_must_match_case_insensitively() -> None:
    FormatPolicy().check(QCOW2, declared="QCOW2")
    with pytest.raises(UnsafeImage, match="does not match"):
        FormatPolicy().check(QCOW2, declared="raw")


def test_declared_raw_accepts_a_partitioned_raw_disk() -> None:
    FormatPolicy().check(GPT_RAW, declared="raw")
    FormatPolicy().check(FormatVerdict("raw", True, (), 1, "mbr"), declared="Raw")


def test_unknown_declared_format_is_named() -> None:
    with pytest.raises(UnsafeImage, match="'ploop'"):
        FormatPolicy().check(QCOW2, declared="ploop")


def test_undetermined_format_is_rejected() -> None:
    with pytest.raises(UnsafeImage, match="could not be determined"):
        FormatPolicy().check(FormatVerdict(None, True, (), None))


def test_all_reasons_are_reported_together() -> None:
    policy = FormatPolicy(allowed_formats=frozenset({"raw"}))
    with pytest.raises(UnsafeImage) as err:
        policy.check(BAD, declared="vmdk")
    assert len(err.value.reasons) == 3


def test_clone_requires_raw_only_when_configured() -> None:
    FormatPolicy().check_clone("qcow2")
    strict = FormatPolicy(cow_requires_raw=True)
    strict.check_clone("raw")
    strict.check_clone("RAW")
    for fmt in ("qcow2", None):
        with pytest.raises(UnsafeImage, match="raw images only") as err:
            strict.check_clone(fmt, store="ceph", image="x")
        assert err.value.store == "ceph"


def test_check_clone_applies_allowed_formats_to_every_native_mode() -> None:
    raw_only = FormatPolicy(allowed_formats=frozenset({"raw"}))
    raw_only.check_clone("raw", cow=False)
    for fmt in ("qcow2", None):
        for cow in (True, False):
            with pytest.raises(UnsafeImage) as err:
                raw_only.check_clone(fmt, cow=cow, store="vms", image="x")
            assert "not allowed" in str(err.value)
    FormatPolicy(cow_requires_raw=True).check_clone("qcow2", cow=False)  # server-side copy is not cow

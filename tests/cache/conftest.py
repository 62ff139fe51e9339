"""Fixtures shared with the conformance suite (qemu-img images)."""

from tests.conformance.conftest import qcow2_plain, qcow2_with_backing  # noqa: F401

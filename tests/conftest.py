"""Shared pytest set-up: service fixtures and the require-services switch."""

pytest_plugins = ["tests.services.xfs", "tests.services.ceph"]

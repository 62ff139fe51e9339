"""The store's ``connect_timeout`` and ``io_timeout`` become librados' ``client_mount_timeout`` and
mon/OSD op timeouts (whole seconds, rounded up); the driver's ``op_timeout`` overrides ``io_timeout``."""

from __future__ import annotations

from typing import Any

import pytest

from imagestore import Store
from imagestore.config import StoreSettings
from tests.services.ceph import CephCluster

KEYS = ("client_mount_timeout", "rados_mon_op_timeout", "rados_osd_op_timeout")


@pytest.mark.parametrize("options,expected", [({}, ["3", "8", "8"]), ({"op_timeout": 20}, ["3", "20", "20"])])
def test_the_stores_timeouts_reach_librados(ceph_v1: CephCluster, options: dict[str, Any],
                                            expected: list[str]) -> None:
    driver = ceph_v1.driver("images", connect_timeout=None, **options)  # the store's, not the fixture's
    store = Store(driver, StoreSettings(connect_timeout=3, io_timeout=7.5))  # opened: connected
    try:
        assert [driver.cluster.conf_get(key) for key in KEYS] == expected
    finally:
        store.close()

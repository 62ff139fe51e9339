"""Tests of the Ceph RBD driver and its ctypes shim against real clusters."""

"""Tests of the Swift driver against a real Swift all-in-one (SAIO)."""

"""Differential test against oslo.utils' format inspector (a test-only dependency).

Both must detect the same format on every benign image; where imagestore
decides differently the reason is written down in EXPECTED_DISAGREEMENTS.
"""

from __future__ import annotations

import pytest
from oslo_utils.imageutils import format_inspector

from imagestore.formats import inspect

from .conftest import BENIGN, Sample

#: Benign images oslo names differently, and why imagestore is right to.
EXPECTED_DISAGREEMENTS: dict[str, str] = {
    "vhd-fixed": "oslo only reads a VHD footer at offset 0; a fixed VHD has its only footer "
                 "at the end, so oslo calls it raw",
    "vhd-fixed-gpt": "same as vhd-fixed; oslo sees the GPT of the content instead",
    "iso-hybrid-mbr": "oslo reports two formats (iso + gpt) and refuses; imagestore treats "
                      "isohybrid partition tables as part of the ISO",
    "iso-hybrid-gpt": "same as iso-hybrid-mbr",
}


def oslo_format(path: str) -> str:
    """oslo's answer, mapped to imagestore's names ("gpt" disks are raw)."""
    try:
        found = format_inspector.detect_file_format(path)
    except format_inspector.ImageFormatError as exc:
        return f"error: {exc}"
    name = str(found)
    return "raw" if name == "gpt" else name


@pytest.mark.parametrize("name", BENIGN)
def test_same_format_as_oslo(corpus: dict[str, Sample], name: str) -> None:
    ours = inspect(corpus[name].path).format
    theirs = oslo_format(str(corpus[name].path))
    if name in EXPECTED_DISAGREEMENTS:
        assert ours != theirs, f"oslo now agrees on {name}: drop the expected disagreement"
    else:
        assert ours == theirs


@pytest.mark.parametrize("name", ["qcow2-backing", "qcow2-data-file", "vmdk-monolithic-flat",
                                  "vmdk-two-gb-sparse", "qed-backing"])
def test_oslo_also_rejects_what_we_reject(corpus: dict[str, Sample], name: str) -> None:
    path = str(corpus[name].path)
    assert not inspect(path).safe
    found = format_inspector.detect_file_format(path)
    with pytest.raises((format_inspector.SafetyCheckFailed, format_inspector.ImageFormatError)):
        found.safety_check()

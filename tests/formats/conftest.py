"""Fixtures for the format tests: a corpus of real images made with qemu-img.

qemu-img (Debian package ``qemu-utils``) is required: without it these tests
fail with a message saying so, they never skip.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from . import builders

SECRET = ["--object", "secret,id=sec0,data=imagestore-test"]


@dataclass(frozen=True)
class Sample:
    """One corpus image and what imagestore must say about it."""

    name: str
    path: Path
    format: str
    safe: bool
    partition_table: str | None = None
    qemu_size: int | None = None  # qemu-img's virtual size, when qemu can read it

    def data(self) -> bytes:
        return self.path.read_bytes()


def qemu_img() -> str:
    """Path of qemu-img, or fail the test run with instructions."""
    found = shutil.which("qemu-img")
    if not found:
        pytest.fail("qemu-img not found: the format tests need it "
                    "(Debian/Ubuntu: apt-get install qemu-utils)", pytrace=False)
    return found


def _run(*args: str, cwd: Path) -> None:
    # LUKS key-slot benchmarking sometimes fails ("Unable to get accurate CPU
    # usage") on fast or busy machines: retry a few times.
    for _attempt in range(8):
        done = subprocess.run([qemu_img(), *args], cwd=cwd, capture_output=True, text=True)
        if done.returncode == 0:
            return
    pytest.fail(f"qemu-img {' '.join(args)} failed: {done.stderr.strip()}", pytrace=False)


QEMU_DRIVER = {"vhd": "vpc", "iso": "raw"}


def _qemu_size(path: Path, fmt: str) -> int | None:
    """Virtual size qemu-img reports when told the format (None if it cannot open it)."""
    driver = QEMU_DRIVER.get(fmt, fmt)
    out = subprocess.run([qemu_img(), "info", "-f", driver, "--output=json", str(path)],
                         capture_output=True, check=False, text=True)
    if out.returncode:
        return None
    return int(json.loads(out.stdout)["virtual-size"])


def payload() -> bytes:
    """Deterministic guest data: random, zero and patterned stretches."""
    rng = random.Random(7)
    return rng.randbytes(300_000) + bytes(200_000) + b"imagestore" * 10_000


# name -> (qemu-img arguments or builder, expected format, safe, partition table)
QEMU_BENIGN: dict[str, tuple[list[str], str]] = {
    "qcow2-v2": (["convert", "-O", "qcow2", "-o", "compat=0.10", "src.raw"], "qcow2"),
    "qcow2-v3": (["convert", "-O", "qcow2", "src.raw"], "qcow2"),
    "qcow2-empty": (["create", "-f", "qcow2"], "qcow2"),
    "qcow2-compressed": (["convert", "-c", "-O", "qcow2", "src.raw"], "qcow2"),
    "qcow2-zstd": (["convert", "-c", "-O", "qcow2", "-o", "compression_type=zstd", "src.raw"], "qcow2"),
    "qcow2-4k-clusters": (["convert", "-O", "qcow2", "-o", "cluster_size=4096", "src.raw"], "qcow2"),
    "qcow2-extended-l2": (["convert", "-O", "qcow2", "-o", "extended_l2=on", "src.raw"], "qcow2"),
    "qcow2-encrypted": (["create", *SECRET, "-f", "qcow2", "-o",
                         "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=50"], "qcow2"),
    "qed": (["convert", "-O", "qed", "src.raw"], "qed"),
    "qed-empty": (["create", "-f", "qed"], "qed"),
    "vmdk-sparse": (["convert", "-O", "vmdk", "src.raw"], "vmdk"),
    "vmdk-sparse-empty": (["create", "-f", "vmdk"], "vmdk"),
    "vmdk-stream": (["convert", "-O", "vmdk", "-o", "subformat=streamOptimized", "src.raw"], "vmdk"),
    "vhd-dynamic": (["convert", "-O", "vpc", "src.raw"], "vhd"),
    "vhd-dynamic-empty": (["create", "-f", "vpc"], "vhd"),
    "vhd-fixed": (["convert", "-O", "vpc", "-o", "subformat=fixed", "src.raw"], "vhd"),
    "vhdx": (["convert", "-O", "vhdx", "-o", "log_size=1M,block_size=1M", "src.raw"], "vhdx"),
    "vhdx-empty": (["create", "-f", "vhdx", "-o", "log_size=1M,block_size=1M"], "vhdx"),
    "vdi": (["convert", "-O", "vdi", "src.raw"], "vdi"),
    "vdi-static": (["convert", "-O", "vdi", "-o", "static=on", "src.raw"], "vdi"),
    "vdi-empty": (["create", "-f", "vdi"], "vdi"),
    "luks": (["create", *SECRET, "-f", "luks", "-o", "key-secret=sec0,iter-time=50"], "luks"),
    "vhd-fixed-gpt": (["convert", "-O", "vpc", "-o", "subformat=fixed", "gpt.raw"], "vhd"),
    "qcow2-of-gpt-disk": (["convert", "-O", "qcow2", "gpt.raw"], "qcow2"),
}

QEMU_UNSAFE: dict[str, tuple[list[str], str]] = {
    "qcow2-backing": (["create", "-f", "qcow2", "-b", "src.raw", "-F", "raw"], "qcow2"),
    "qcow2-data-file": (["create", "-f", "qcow2", "-o", "data_file=ext.data"], "qcow2"),
    "qcow2-data-file-raw": (["create", "-f", "qcow2", "-o", "data_file=extraw.data,data_file_raw=on"], "qcow2"),
    "qed-backing": (["create", "-f", "qed", "-b", "src.raw", "-F", "raw"], "qed"),
    "vmdk-monolithic-flat": (["create", "-f", "vmdk", "-o", "subformat=monolithicFlat"], "vmdk"),
    "vmdk-two-gb-sparse": (["create", "-f", "vmdk", "-o", "subformat=twoGbMaxExtentSparse"], "vmdk"),
    "vmdk-backing": (["create", "-f", "vmdk", "-b", "vmdk-sparse.img", "-F", "vmdk"], "vmdk"),
}


HANDMADE = ("raw", "raw-empty", "raw-tiny", "gpt-disk", "mbr-disk", "iso", "iso-hybrid-mbr",
            "iso-hybrid-gpt")
#: Every corpus image name, for parametrisation.
CORPUS = (*HANDMADE, *QEMU_BENIGN, *QEMU_UNSAFE, "vmdk-two-gb-extent")
BENIGN = (*HANDMADE, *QEMU_BENIGN)


def _build(workdir: Path) -> dict[str, Sample]:
    qemu_img()
    samples: dict[str, Sample] = {}
    src = payload()
    (workdir / "src.raw").write_bytes(src)
    (workdir / "gpt.raw").write_bytes(builders.gpt_disk(1 << 20))

    def add(name: str, data: bytes, fmt: str, safe: bool, table: str | None = None) -> None:
        path = workdir / f"{name}.img"
        path.write_bytes(data)
        samples[name] = Sample(name, path, fmt, safe, table, _qemu_size(path, fmt))

    add("raw", src, "raw", True)
    add("raw-empty", b"", "raw", True)
    add("raw-tiny", b"x" * 100, "raw", True)
    add("gpt-disk", bytes(builders.gpt_disk(1 << 20)), "raw", True, "gpt")
    add("mbr-disk", builders.mbr_disk(1 << 20), "raw", True, "mbr")
    iso = builders.iso_image(64)
    add("iso", iso, "iso", True)
    add("iso-hybrid-mbr", builders.iso_image(64, builders.mbr([(0x17, 0, 256)])), "iso", True, "mbr")
    hybrid_gpt = builders.gpt_disk(256 * 1024)
    hybrid_gpt[32768 : 32768 + 2 * 2048] = iso[32768 : 32768 + 2 * 2048]
    add("iso-hybrid-gpt", bytes(hybrid_gpt), "iso", True, "gpt")

    for table, safe in ((QEMU_BENIGN, True), (QEMU_UNSAFE, False)):
        for name, (args, fmt) in table.items():
            path = workdir / f"{name}.img"
            if args[0] == "convert":
                _run(*args, str(path), cwd=workdir)
            else:
                _run(*args, str(path), "1M", cwd=workdir)
            part = "gpt" if name == "vhd-fixed-gpt" else None
            qsize = None if fmt == "luks" else _qemu_size(path, fmt)
            samples[name] = Sample(name, path, fmt, safe, part, qsize)
    extent = workdir / "vmdk-two-gb-sparse-s001.img"
    samples["vmdk-two-gb-extent"] = Sample("vmdk-two-gb-extent", extent, "vmdk", False)
    return samples


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Sample]:
    """Every corpus image, built once per test session."""
    return _build(tmp_path_factory.mktemp("images"))

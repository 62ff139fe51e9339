"""What a consumer does with an accepted image: ``qemu-img info`` and ``qemu-img convert``
(as Nova and Cinder do) read nothing outside the image, shown with strace. The control:
the images imagestore refuses do make the same commands read a host file."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.services.require import unavailable

from .conftest import Attack, qemu_img

#: name -> (qemu-img create/convert arguments, qemu driver name)
ACCEPTED = {
    "raw": (None, "raw"),
    "qcow2": (["convert", "-O", "qcow2"], "qcow2"),
    "qcow2-compressed": (["convert", "-c", "-O", "qcow2"], "qcow2"),
    "qcow2-v2": (["convert", "-O", "qcow2", "-o", "compat=0.10"], "qcow2"),
    "vmdk-sparse": (["convert", "-O", "vmdk"], "vmdk"),
    "vmdk-stream": (["convert", "-O", "vmdk", "-o", "subformat=streamOptimized"], "vmdk"),
    "vhd": (["convert", "-O", "vpc"], "vpc"),
    "vhd-fixed": (["convert", "-O", "vpc", "-o", "subformat=fixed"], "vpc"),
    "vhdx": (["convert", "-O", "vhdx", "-o", "log_size=1M,block_size=1M"], "vhdx"),
    "vdi": (["convert", "-O", "vdi"], "vdi"),
}
SYSTEM = ("/lib/", "/lib64/", "/usr/", "/proc/", "/sys/", "/dev/", "/etc/ld.so.", "/etc/gnutls/", "/etc/localtime")
_PATH = re.compile(r'^\d+\s+(\w+)\((?:AT_FDCWD|\d+)?,?\s*"([^"]*)"')


def strace() -> str:
    found = shutil.which("strace")
    if found is None:
        unavailable("strace", "apt install strace")
    return str(found)


def files_touched(cmd: list[str], workdir: Path) -> set[str]:
    """Every path the command (and its children) opened, stat'ed or checked, strace says."""
    log = workdir / "strace.log"
    subprocess.run([strace(), "-f", "-qq", "-e", "trace=%file", "-o", str(log), *cmd], cwd=workdir,
                   capture_output=True, timeout=120)
    paths = set()
    for line in log.read_text().splitlines():
        m = _PATH.match(line)
        if m and m.group(1) != "execve" and m.group(2):
            paths.add(m.group(2))
    return paths


def outside(paths: set[str], own: set[str]) -> set[str]:
    return {p for p in paths if p not in own and not p.startswith(SYSTEM)}


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("src")
    data = bytearray(3 << 20)
    data[:1 << 20] = bytes(range(256)) * 4096
    (d / "src.raw").write_bytes(bytes(data))
    return d / "src.raw"


@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_accepted_images_make_qemu_img_read_nothing_outside_them(attack: Attack, source: Path, tmp_path: Path,
                                                                 name: str) -> None:
    args, driver = ACCEPTED[name]
    made = tmp_path / f"{name}.img"
    if args is None:
        shutil.copy(source, made)
    else:
        qemu_img(*args, str(source), str(made), cwd=tmp_path)
    info = attack.store.add(name, str(made), made.stat().st_size)
    access = attack.store.locate(info.location)
    assert access.kind == "path" and access.path is not None
    image = access.path
    out = tmp_path / "out.raw"
    own = {image, str(out), "out.raw"}
    for cmd in ([shutil.which("qemu-img") or "qemu-img", "info", "--backing-chain", "--output=json", "-f", driver,
                 image],
                [shutil.which("qemu-img") or "qemu-img", "convert", "-f", driver, "-O", "raw", image, str(out)]):
        assert outside(files_touched(cmd, tmp_path), own) == set(), cmd
    assert out.read_bytes()[:len(source.read_bytes())] == source.read_bytes()
    assert attack.canary_intact()


@pytest.mark.parametrize("name, driver", [("backing.qcow2", "qcow2"), ("flat-etc.vmdk", "vmdk")])
def test_control_refused_images_do_make_qemu_img_read_a_host_file(hostile: dict[str, bytes], tmp_path: Path,
                                                                  name: str, driver: str) -> None:
    """The detector above is not blind: the refused images make qemu-img open /etc/passwd."""
    path = tmp_path / name
    path.write_bytes(hostile[name])
    cmd = [shutil.which("qemu-img") or "qemu-img", "convert", "-f", driver, "-O", "raw", str(path),
           str(tmp_path / "out.raw")]
    assert "/etc/passwd" in outside(files_touched(cmd, tmp_path), {str(path), str(tmp_path / "out.raw")})

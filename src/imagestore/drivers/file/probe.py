"""What a file store's filesystem can do, probed on unnamed ``O_TMPFILE`` files (nothing is
left in ROOT): whether it is writable, reflinks (``FICLONE``), or copies in the kernel."""

from __future__ import annotations

import errno
import fcntl
import os

from .core import FICLONE, tmpfile

__all__ = ["native_mode", "probe_root"]


def native_mode(src_dir: int, dst_dir: int) -> str | None:
    """Which in-kernel copy works from files of one root to files of another (mounts included):
    ``cow`` (FICLONE), ``server_copy`` (copy_file_range) or None; tried on unnamed files."""
    a = b = -1
    try:
        a, b = tmpfile(src_dir), tmpfile(dst_dir)
        os.write(a, b"imagestore clone probe\n")
        try:
            fcntl.ioctl(b, FICLONE, a)
            return "cow"
        except OSError:
            pass
        os.lseek(a, 0, os.SEEK_SET)
        return "server_copy" if os.copy_file_range(a, b, 1, 0, 0) == 1 else None
    except OSError:
        return None
    finally:
        for fd in (a, b):
            if fd >= 0:
                os.close(fd)


def probe_root(root_fd: int) -> tuple[bool, bool]:
    """``(writable, reflink)`` of the directory: two unnamed O_TMPFILE files, removed on close."""
    a = b = -1
    try:
        try:
            a = os.open(".", os.O_TMPFILE | os.O_RDWR | os.O_CLOEXEC, 0o600, dir_fd=root_fd)
        except OSError as exc:
            if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
                return False, False
            return True, False  # no O_TMPFILE here: assume writable, no reflink
        b = os.open(".", os.O_TMPFILE | os.O_RDWR | os.O_CLOEXEC, 0o600, dir_fd=root_fd)
        os.write(a, b"imagestore reflink probe\n")
        try:
            fcntl.ioctl(b, FICLONE, a)
        except OSError:
            return True, False
        return True, True
    finally:
        for fd in (a, b):
            if fd >= 0:
                os.close(fd)

"""The CLI: JSON output shapes, exit codes, locations accepted without --store."""

from __future__ import annotations

import json
import os
from pathlib import Path

import blake3
import pytest

from imagestore.cli import main


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f"""
default = "a"
[stores.a]
driver = "file"
root = "{tmp_path / 'a'}"
[stores.b]
driver = "file"
root = "{tmp_path / 'b'}"
""")
    monkeypatch.setenv("IMAGESTORE_CONFIG", str(cfg))
    return cfg


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_add_stat_clone_locate_get_rm(config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "disk.raw"
    src.write_bytes(os.urandom(300_000))
    code, out, _ = run(capsys, "--json", "add", "img1", str(src))
    assert code == 0
    added = json.loads(out)
    assert set(added) == {"location", "store", "size", "checksums", "format", "virtual_size", "integrity", "block_table"}
    assert added["store"] == "a" and added["size"] == 300_000 and added["format"] == "raw"
    assert added["integrity"] == blake3.blake3(src.read_bytes()).hexdigest()
    loc = added["location"]
    code, out, _ = run(capsys, "--json", "stat", loc)
    assert json.loads(out) == added
    code, out, _ = run(capsys, "--json", "clone", loc, "--to", "b", "--name", "img2")
    cloned = json.loads(out)
    assert code == 0 and set(cloned) == {"location", "mode", "depth", "converted", "base"}
    assert cloned["mode"] == "server_copy" and cloned["depth"] == 0
    code, out, _ = run(capsys, "--json", "locate", cloned["location"])  # no --store needed
    assert json.loads(out) == {"kind": "path", "path": str(tmp_path / "b" / "img2")}
    dest = tmp_path / "out.raw"
    code, _, _ = run(capsys, "get", cloned["location"], "-o", str(dest))
    assert code == 0 and dest.read_bytes() == src.read_bytes()
    part = tmp_path / "part.raw"
    code, out, _ = run(capsys, "get", loc, "--offset", "10", "--length", "5", "-o", str(part))
    assert code == 0 and part.read_bytes() == src.read_bytes()[10:15]
    code, out, _ = run(capsys, "--json", "rm", cloned["location"])
    assert json.loads(out) == {"outcome": "deleted"}
    code, _, err = run(capsys, "--json", "rm", cloned["location"])
    assert code == 1 and json.loads(err)["error"] == "NotFound"


def test_stdin_add_and_bare_ids(config: Path, capsys: pytest.CaptureFixture[str],
                                monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import sys

    class In:
        buffer = io.BytesIO(b"from stdin")

    monkeypatch.setattr(sys, "stdin", In)
    code, out, _ = run(capsys, "--json", "--store", "b", "add", "s1")
    assert code == 0 and json.loads(out)["store"] == "b"
    code, out, _ = run(capsys, "--json", "--store", "b", "stat", "s1")
    assert json.loads(out)["size"] == 10


@pytest.mark.parametrize(("args", "code", "error"), [
    (["nope"], 2, "UsageError"),
    (["add"], 2, "UsageError"),
    (["stat", "rbd://f/p/i/s"], 2, "InvalidLocation"),
    (["stat", "s3://AK:SECRETKEY@h/b/k"], 2, "InvalidLocation"),
    (["--store", "zz", "stat", "x"], 2, "ConfigError"),
    (["stat", "missing"], 1, "NotFound"),
    (["add", "../x", "/etc/hostname"], 2, "InvalidLocation"),
    (["add", "x", "/no/such/file"], 2, "UsageError"),
    (["clone", "missing", "--mode", "cow"], 1, "NotFound"),
])
def test_errors(config: Path, capsys: pytest.CaptureFixture[str], args: list[str], code: int, error: str) -> None:
    got, out, err = run(capsys, "--json", *args)
    assert got == code and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1
    payload = json.loads(lines[0])
    assert payload["error"] == error and payload["message"]
    assert "SECRETKEY" not in err


def test_bad_config_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[stores.a]\ndriver = "file"\nroot = "/x"\nbogus = 1\n')
    code, _, err = run(capsys, "--config", str(cfg), "stores")
    assert code == 2 and "stores.a.bogus" in err and len(err.strip().splitlines()) == 1


def test_stores_lists_capabilities(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--json", "stores")
    data = json.loads(out)
    assert data["default"] == "a" and set(data["stores"]) == {"a", "b"}
    assert data["stores"]["a"]["capabilities"]["atomic_create"] is True


def test_inspect_command(config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import subprocess

    evil = tmp_path / "evil.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-u", "-b", "/etc/passwd", "-F", "raw",
                    str(evil), "16M"], check=True)
    code, out, _ = run(capsys, "--json", "inspect", str(evil))
    verdict = json.loads(out)
    assert code == 1 and set(verdict) == {"format", "safe", "reasons", "virtual_size"}
    assert verdict["format"] == "qcow2" and verdict["safe"] is False and verdict["virtual_size"] == 16 << 20
    assert any("backing" in r for r in verdict["reasons"])
    raw = tmp_path / "disk.raw"
    raw.write_bytes(b"\0" * 65536)
    code, out, _ = run(capsys, "--json", "inspect", str(raw))
    assert code == 0 and json.loads(out) == {"format": "raw", "safe": True, "reasons": [], "virtual_size": 65536}
    # inspect stores nothing: it does not even open the configured stores (their roots are not made)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_sweep_command(config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import time

    run(capsys, "add", "seed", str(config))
    tmp = tmp_path / "a" / ".tmp"
    dead = tmp / "img.1.dead"
    dead.write_bytes(b"z" * 10_000)
    old = time.time() - 7200
    os.utime(dead, (old, old))
    code, out, _ = run(capsys, "--json", "sweep", "--older-than", "3h")
    assert code == 0 and json.loads(out)["removed"] == 0 and dead.exists()
    code, out, _ = run(capsys, "--json", "sweep", "--older-than", "1h", "--all")
    report = json.loads(out)
    assert code == 0 and report["removed"] == 1 and report["bytes_freed"] >= 10_000 and not dead.exists()
    assert set(report["stores"]) == {"a", "b"}
    code, _, err = run(capsys, "--json", "sweep", "--older-than", "soon")
    assert code == 2 and json.loads(err)["error"] == "ConfigError" and "--older-than" in err


def test_backend_faults_never_print_a_traceback(config: Path, capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A driver's Transient (after retries), OSError or bug: one line, exit 1."""
    import errno

    from imagestore.drivers.file import FileDriver
    from imagestore.errors import Transient

    run(capsys, "add", "img", str(config))
    for exc, name in ((Transient("timed out"), "BackendUnavailable"), (OSError(errno.EIO, "I/O"), "BackendError"),
                      (KeyError("bug"), "BackendError")):
        def fail(self: object, *args: object, exc: BaseException = exc) -> None:
            raise exc

        monkeypatch.setattr(FileDriver, "stat", fail)
        for mode in ([], ["--json"]):
            code, out, err = run(capsys, *mode, "stat", "img")
            assert code == 1 and out == "" and "Traceback" not in err
            [line] = err.strip().splitlines()
            assert name in line if mode else line.startswith("imagestore: error:")


def test_scrub_command_reports_a_corrupt_image_and_exits_1(config: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "disk.raw"
    src.write_bytes(os.urandom(200_000))
    for name in ("good", "rotten"):
        assert run(capsys, "add", name, str(src))[0] == 0
    code, out, _ = run(capsys, "--json", "scrub")
    assert code == 0 and json.loads(out)["corrupt"] == [] and json.loads(out)["checked"] == 2
    with open(tmp_path / "a" / "rotten", "r+b") as fh:  # bit rot in the file store
        fh.seek(123_456)
        fh.write(bytes([fh.read(1)[0] ^ 1]))
    code, out, _ = run(capsys, "--json", "scrub", "--rate", "1000")
    report = json.loads(out)
    assert code == 1 and report["corrupt"] == ["rotten"] and report["last"] == "rotten"
    assert [(r["image"], r["status"], r["algorithm"]) for r in report["images"]] == [
        ("good", "ok", "blake3"), ("rotten", "corrupt", "blake3")]
    assert (tmp_path / "a" / "rotten").exists()  # reported, never deleted
    code, out, _ = run(capsys, "scrub", "--start-after", "good")
    assert code == 1 and "rotten: corrupt" in out and "checked 1 images" in out
    code, _, err = run(capsys, "--json", "scrub", "--rate", "0")
    assert code == 2 and "--rate" in err


def test_scrub_command_backfills_unless_told_not_to(config: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "disk.raw"
    src.write_bytes(os.urandom(2 * 1024 * 1024 + 3))
    assert run(capsys, "add", "img", str(src))[0] == 0
    root = tmp_path / "a"
    for key in os.listxattr(root / "img"):  # as an earlier version stored it: no digest, no table
        if key.startswith("user.imagestore.integrity."):
            os.removexattr(root / "img", key)
    for name in os.listdir(root):
        if name.startswith("imagestore-blocks-"):
            os.unlink(root / name)
    code, out, _ = run(capsys, "--json", "scrub", "--no-backfill")
    report = json.loads(out)
    assert code == 0 and report["backfilled"] == [] and report["checked"] == 1
    assert report["images"][0]["detail"] == "lacks its digest and block table, not recorded: backfill is off"
    code, out, _ = run(capsys, "scrub", "--older-than", "1h")
    assert code == 0 and "checked 0 images (0 bytes)" in out and "1 skipped" in out
    code, out, _ = run(capsys, "scrub")
    assert code == 0 and "img: recorded its digest and block table" in out and "1 backfilled" in out
    code, out, _ = run(capsys, "--json", "stat", "img")
    assert json.loads(out)["integrity"] == blake3.blake3(src.read_bytes()).hexdigest()
    code, _, err = run(capsys, "scrub", "--older-than", "soon")
    assert code == 2 and "--older-than" in err

"""moto's standalone S3 server in a child process: started on 127.0.0.1 and a free port, waited
for, stopped. One starter for the tests and the benchmark harness (moto[server] must be installed
in the interpreter that runs it)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from .ports import free_port

__all__ = ["MOTO_START_TIMEOUT", "MotoProcess", "http_answers"]

MOTO_START_TIMEOUT = 60.0


def http_answers(endpoint: str) -> bool:
    """Whether an HTTP server answers a GET / there (any status counts)."""
    try:
        with urllib.request.urlopen(endpoint + "/", timeout=2) as resp:
            resp.read()
        return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


class MotoProcess:
    """``python -m moto.server`` on 127.0.0.1: started, waited for, stopped (terminate, then kill)."""

    def __init__(self, python: str = sys.executable, *, logdir: Path | None = None,
                 new_session: bool = False) -> None:
        self.python = python
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self._own_logdir = logdir is None
        self.logdir = Path(tempfile.mkdtemp(prefix="moto-", dir="/tmp")) if logdir is None else logdir
        self.log = self.logdir / "moto.log"
        self.start_seconds = 0.0
        self._new_session = new_session  # its own process group, for a watchdog that kills groups

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start on a free port; a lost race for the port is retried on another one."""
        failures = []
        for _ in range(3):
            self.port = free_port()
            t0 = time.monotonic()
            with open(self.log, "ab") as log:  # a file, not a pipe: a full pipe would block the server
                self.proc = subprocess.Popen(
                    [self.python, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=self._new_session)
            while time.monotonic() - t0 < MOTO_START_TIMEOUT:
                if self.proc.poll() is not None:
                    break
                if http_answers(self.endpoint):
                    self.start_seconds = time.monotonic() - t0
                    return
                time.sleep(0.05)
            tail = self.log.read_text(errors="replace")[-2000:]
            failures.append(f"port {self.port}: exit {self.proc.poll()}: {tail}")
            self.stop()
        raise RuntimeError("\n".join(failures))

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    def cleanup(self) -> None:
        """Stop the server and remove its log directory (if it made it)."""
        self.stop()
        if self._own_logdir:
            shutil.rmtree(self.logdir, ignore_errors=True)

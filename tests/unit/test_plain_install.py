"""``pip install imagestore`` with no extra: every module of ``imagestore`` and ``imagestore_bench``
imports, the tools that need an extra name it, and the harness runs from the installed wheel.

The only modules allowed not to import are the plugins of an optional backend (the s3, swift and
http drivers, the glance_store driver): the store registry turns their ImportError into
DriverNotInstalled, so it must name the extra to install.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: modules that are the plugin of an optional backend, and the extra their ImportError must name
PLUGINS = {"imagestore.drivers.s3": "s3", "imagestore.drivers.swift": "swift", "imagestore.drivers.http": "http",
           "imagestore.compat.glance_store_driver": "glance", "imagestore.compat.glance_store_errors": "glance",
           "imagestore.observe.prometheus": "metrics", "imagestore.observe.otel": "tracing",
           # the shipped conformance suite is pytest mixins and fixtures: it is pytest or nothing
           "imagestore.testing.conformance": "testing"}

WALK = textwrap.dedent("""
    import importlib, json, pkgutil, sys
    import imagestore, imagestore_bench
    failed = {}
    def note(name, exc):
        failed[name] = f"{type(exc).__name__}: {exc}"
    for pkg in (imagestore, imagestore_bench):
        for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + ".", onerror=lambda n: None):
            if m.name.rsplit(".", 1)[-1] == "__main__":  # runs the command: checked through the CLI below
                continue
            try:
                importlib.import_module(m.name)
            except BaseException as exc:
                note(m.name, exc)
    print(json.dumps(failed))
""")

TOOL = textwrap.dedent("""
    from imagestore.testing import fuzz
    for call in (fuzz.locations, lambda: fuzz.run(1)):
        try:
            call()
        except ImportError as exc:
            print(exc)
        else:
            print("ran without hypothesis")
""")


@pytest.fixture(scope="module")
def plain_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv (no system site packages) with the wheel and only the base dependencies."""
    tmp = tmp_path_factory.mktemp("plain")
    wheels = tmp / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(ROOT)],
                   check=True, capture_output=True, timeout=600)
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    py = venv / "bin" / "python"
    (wheel,) = wheels.glob("imagestore-*.whl")
    proc = subprocess.run([str(py), "-m", "pip", "install", "-q", str(wheel)], capture_output=True, text=True,
                          timeout=600)  # the base dependencies only (stevedore): no extra
    assert proc.returncode == 0, proc.stderr[-2000:]
    return venv


def _run(venv: Path, *argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "IMAGESTORE_SOURCE")}
    return subprocess.run([str(venv / "bin" / argv[0]), *argv[1:]], capture_output=True, text=True, timeout=600,
                          env=env, cwd=cwd or venv)


def test_only_the_base_dependencies_are_installed(plain_venv: Path) -> None:
    proc = _run(plain_venv, "python", "-c", "import importlib.util as u; print([m for m in ('hypothesis', "
                "'pytest', 'matplotlib', 'tqdm', 'boto3', 'swiftclient', 'fsspec', 'glance_store') if u.find_spec(m)])")
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", (proc.stdout, proc.stderr)


def test_every_module_imports_in_a_plain_install(plain_venv: Path) -> None:
    proc = _run(plain_venv, "python", "-c", WALK)
    assert proc.returncode == 0, proc.stderr[-3000:]
    failed = json.loads(proc.stdout)
    unexpected = {name: why for name, why in failed.items() if name not in PLUGINS}
    assert unexpected == {}, "modules that fail to import without an extra"
    for name, why in failed.items():
        assert why.startswith("ImportError: ") and f"pip install 'imagestore[{PLUGINS[name]}]'" in why, (name, why)


def test_a_tool_that_needs_hypothesis_names_the_testing_extra(plain_venv: Path) -> None:
    proc = _run(plain_venv, "python", "-c", TOOL)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 2 and all("pip install 'imagestore[testing]'" in line for line in lines), lines


def test_the_harness_runs_from_the_wheel(plain_venv: Path, tmp_path: Path) -> None:
    """``imagestore bench`` from the installed wheel (no source tree beside it): a quick run of the
    memory store writes its JSONL and report; what needs the checkout's scripts says so by name."""
    out = tmp_path / "out"
    proc = _run(plain_venv, "imagestore", "bench", "--quick", "--store", "memory", "--size", "1M",
                "--concurrency", "0", "--no-peer", "--no-xfs", "--quiet", "--out", str(out),
                "--workdir", str(tmp_path), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert any(r.get("kind") == "summary" and r.get("store") == "memory" for r in records), records[:5]
    assert "stores memory (memory)" in (out / "report.md").read_text()
    for argv in (["--with-services", "--services", "ceph"], ["--glance"]):
        proc = _run(plain_venv, "python", "-m", "imagestore_bench", "--quick", *argv, "--out", str(out), cwd=tmp_path)
        assert proc.returncode == 2, (argv, proc.stderr)
        assert "of imagestore's source checkout" in proc.stderr and argv[0] in proc.stderr, proc.stderr

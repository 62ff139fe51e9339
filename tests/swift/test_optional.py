"""Swift stays optional: without python-swiftclient imagestore imports and works, and a
Swift store fails with DriverNotInstalled naming the extra. Nothing but the Swift driver
modules imports swiftclient; keystoneauth1 is imported only for Keystone v3 stores."""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.services.require import unavailable

SRC = Path(__file__).resolve().parents[2] / "src" / "imagestore"
SWIFT = SRC / "drivers" / "swift"  # the Swift driver's package
SPEC = {"driver": "swift", "auth_url": "http://127.0.0.1:1/auth/v1.0", "user": "a:b", "key": {"env": "K"}}


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120,
                          env={"K": "some-key-value", "PATH": "/usr/bin:/bin"})


def test_without_swiftclient_a_swift_store_is_driver_not_installed() -> None:
    proc = _run(f"""
        import sys
        sys.modules["swiftclient"] = None  # as if python-swiftclient were not installed
        import imagestore, imagestore.drivers, imagestore.cli
        store = imagestore.open_store("memory://", "m")
        assert store.get(store.add("x", b"works", 5).location) == b"works"
        try:
            imagestore.open_store({SPEC!r}, "sw")
        except imagestore.DriverNotInstalled as exc:
            print(exc)
        else:
            raise SystemExit("no DriverNotInstalled")
    """)
    assert proc.returncode == 0, proc.stderr
    assert "pip install 'imagestore[swift]'" in proc.stdout and "swift" in proc.stdout


def _module_level_imports(tree: ast.Module) -> set[str]:
    """Modules imported when the file is imported (not those imported inside functions)."""
    found: set[str] = set()
    todo: list[ast.stmt] = list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            found.add(node.module or "")
        elif isinstance(node, (ast.If, ast.Try, ast.With)):
            todo += [n for n in ast.iter_child_nodes(node) if isinstance(n, ast.stmt)]
            for handler in getattr(node, "handlers", []):
                todo += handler.body
    return found


def test_only_the_swift_driver_modules_import_swiftclient_or_keystoneauth1() -> None:
    for path in SRC.rglob("*.py"):
        names = _module_level_imports(ast.parse(path.read_text()))
        optional = {n for n in names if n.split(".")[0] in ("swiftclient", "keystoneauth1")}
        if optional:
            assert SWIFT in path.parents, (path, optional)
    # keystoneauth1 is imported by the v3 code path only, never when the driver is imported
    assert "keystoneauth1" not in str(_module_level_imports(ast.parse((SWIFT / "auth.py").read_text())))


def test_every_other_module_imports_without_swiftclient() -> None:
    modules = sorted(
        "imagestore." + ".".join(p.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")
        for p in SRC.rglob("*.py") if SWIFT not in p.parents
    )
    proc = _run(f"""
        import importlib, sys
        sys.modules["swiftclient"] = None
        sys.modules["keystoneauth1"] = None
        failed = []
        for name in {modules!r}:
            try:
                importlib.import_module(name)
            except ImportError as exc:
                if "swiftclient" in str(exc) or "keystoneauth1" in str(exc):
                    failed.append((name, str(exc)))
        print(failed)
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_the_swift_extra_is_installed_for_the_swift_tests() -> None:
    """The other Swift tests are not even collected without it: say so."""
    if importlib.util.find_spec("swiftclient") is None:
        unavailable("python-swiftclient", "the Swift tests need it (pip install 'imagestore[swift]')")


def test_v1_stores_never_import_keystoneauth1_and_v3_without_it_names_the_extra() -> None:
    if importlib.util.find_spec("swiftclient") is None:
        unavailable("python-swiftclient", "the Swift driver needs it (pip install 'imagestore[swift]')")
    proc = _run("""
        import sys
        sys.modules["keystoneauth1"] = None
        from imagestore.config import Secret
        from imagestore.drivers.swift import SwiftDriver
        from imagestore.errors import DriverNotInstalled
        SwiftDriver("v1", auth_url="http://127.0.0.1:1/auth/v1.0", user="a:b", key=Secret("k"))
        try:
            SwiftDriver("v3", auth_url="http://127.0.0.1:1/v3", user="u", password=Secret("p"),
                        auth_version="3", project_name="p")
        except DriverNotInstalled as exc:
            print(exc)
    """)
    assert proc.returncode == 0, proc.stderr
    assert "keystoneauth1" in proc.stdout and "pip install 'imagestore[swift]'" in proc.stdout

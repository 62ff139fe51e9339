"""The package's layers, read from its imports: each room imports only the rooms beneath it.

drivers see the public vocabulary and the driver boundary (spi) only; spi sees the vocabulary;
the engine sees spi and the vocabulary, never the facade above it. A module that reaches up a
layer fails here, naming the import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import imagestore

SRC = Path(imagestore.__file__).parent
VOCABULARY = {"imagestore.errors", "imagestore.location", "imagestore.results"}


def _modules() -> dict[str, Path]:
    found = {}
    for path in SRC.rglob("*.py"):
        parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _imports(name: str, path: Path) -> set[str]:
    """The imagestore modules ``name`` imports (relative imports resolved), lazy ones included."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if node.module is None:  # from . import x: x may be a module
                out.update(f"{target}.{alias.name}" for alias in node.names)
            else:
                out.add(target)
        elif isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
    return {m for m in out if m == "imagestore" or m.startswith("imagestore.")}


MODULES = _modules()


def _allowed(importer: str, target: str, rooms: tuple[str, ...]) -> bool:
    if target in VOCABULARY or target.startswith(rooms):
        return True
    # a driver folder may import itself (backend -> core, reader...)
    parts = importer.split(".")
    return len(parts) > 3 and parts[1] == "drivers" and target.startswith(".".join(parts[:3]))


LAYERS = {
    "imagestore.drivers": ("imagestore.spi", "imagestore.drivers"),
    "imagestore.spi": ("imagestore.spi",),
    "imagestore.engine": ("imagestore.spi", "imagestore.engine", "imagestore.formats", "imagestore.config"),
    "imagestore.formats": ("imagestore.formats",),
}
# the deprecated aliases kept for one release re-export from their new home
SHIMS = {"imagestore.drivers.base", "imagestore.drivers.rbdlib"}


@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_a_layer_imports_only_what_is_beneath_it(layer: str) -> None:
    rooms = LAYERS[layer]
    wrong = [
        f"{name} imports {target}"
        for name, path in sorted(MODULES.items())
        if (name == layer or name.startswith(layer + ".")) and name not in SHIMS
        for target in sorted(_imports(name, path))
        if not _allowed(name, target, rooms)
    ]
    assert not wrong, "\n".join(wrong)


def test_a_driver_does_not_import_another_driver() -> None:
    wrong = []
    for name, path in MODULES.items():
        parts = name.split(".")
        if len(parts) < 3 or parts[1] != "drivers" or name in SHIMS:
            continue
        for target in _imports(name, path):
            tparts = target.split(".")
            if len(tparts) >= 3 and tparts[1] == "drivers" and tparts[2] != parts[2]:
                wrong.append(f"{name} imports {target}")
    assert not wrong, "\n".join(wrong)

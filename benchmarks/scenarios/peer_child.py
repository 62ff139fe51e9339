"""glance_store's own drivers, driven one command per line (run by ``peer.py`` in an interpreter with glance_store).

``python peer_child.py CONFIG_JSON``; then each stdin line is a JSON command and
each stdout line its JSON answer: ``{"op": "add", "id", "src", "size"}`` ->
``{"location"}``; ``{"op": "get", "location", "size"}`` -> ``{"bytes"}``;
``{"op": "delete", "location"}``. It imports nothing of imagestore. The upload
is handed over as Glance does: an object with only ``read(n)``.
"""

from __future__ import annotations

import json
import sys
import warnings
from typing import Any

warnings.filterwarnings("ignore")


class Upload:
    """What Glance hands a driver: an object with ``read(n)`` only."""

    def __init__(self, path: str) -> None:
        self.fh = open(path, "rb")  # noqa: SIM115 - closed by close()

    def read(self, n: int = -1) -> bytes:
        return self.fh.read(65536 if n is None or n < 0 else n)

    def close(self) -> None:
        self.fh.close()


DRIVERS = {"file": "glance_store._drivers.filesystem", "rbd": "glance_store._drivers.rbd",
           "s3": "glance_store._drivers.s3", "swift": "glance_store._drivers.swift.store"}


def make_store(cfg: dict[str, Any]) -> Any:
    import importlib

    from glance_store import multi_backend
    from oslo_config import cfg as oslo

    kind = cfg["kind"]
    conf = oslo.ConfigOpts()
    conf([], project="imagestore-bench-peer", default_config_files=[])
    conf.register_opt(oslo.DictOpt("enabled_backends"))
    conf.set_override("enabled_backends", {"peer": kind})
    multi_backend.register_store_opts(conf)
    for key, value in cfg["options"].items():
        conf.set_override(key, value, group="peer")
    module = importlib.import_module(DRIVERS[kind])
    cls = module.SingleTenantStore if kind == "swift" else module.Store
    store = cls(conf, backend="peer")
    store.configure(re_raise_bsc=True)
    return store, conf


def _where(gl: Any, store: Any, conf: Any, uri: str) -> Any:
    """The glance_store Location of ``uri`` in the peer backend (no global scheme map needed)."""
    return gl.Location(uri.split(":", 1)[0], store.get_store_location_class(), conf, uri=uri, backend="peer")


def main(argv: list[str]) -> int:
    from glance_store import location as gl

    cfg = json.loads(argv[0])
    try:
        store, conf = make_store(cfg)
    except Exception as exc:  # the parent reports it as a skip
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}), flush=True)
        return 1
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        cmd = json.loads(line)
        try:
            if cmd["op"] == "add":
                up = Upload(cmd["src"])
                try:
                    loc, size, _md5, _multihash, _meta = store.add(cmd["id"], up, cmd["size"], "sha512")
                finally:
                    up.close()
                if size != cmd["size"]:
                    raise AssertionError(f"stored {size} bytes, not {cmd['size']}")
                out: dict[str, Any] = {"location": loc}
            elif cmd["op"] == "get":
                where = _where(gl, store, conf, cmd["location"])
                it, _ = store.get(where)  # chunk_size here would mean "only this many bytes"
                n = 0
                for piece in it:
                    n += len(piece)
                if n != cmd["size"]:
                    raise AssertionError(f"read {n} bytes, not {cmd['size']}")
                out = {"bytes": n}
            elif cmd["op"] == "delete":
                store.delete(_where(gl, store, conf, cmd["location"]))
                out = {}
            else:
                out = {"error": f"unknown op {cmd['op']}"}
        except Exception as exc:
            out = {"error": f"{type(exc).__name__}: {exc}"}
        print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

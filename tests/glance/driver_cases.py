"""Unit tests of the glance_store driver against glance_store's own API and oslo.config.

They need glance_store and oslo.config, which only the Glance virtualenv has, so
they are plain ``unittest`` cases run there as one subprocess by
``test_driver.py`` (``python driver_cases.py RESULT.json``), which reports each
case as its own pytest test. Every case builds its own ``ConfigOpts``, except
the one that goes through ``glance_store.multi_backend``'s module functions,
which read glance_store's global ``CONF`` (as Glance itself does).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import unittest
from pathlib import Path
from typing import Any

from glance_store import exceptions, location, multi_backend
from glance_store._drivers import filesystem
from glance_store.capabilities import BitMasks
from oslo_config import cfg

from imagestore import Stores, errors
from imagestore.compat import glance_store_driver
from imagestore.compat.glance_store_errors import to_glance_store

MiB = 1 << 20


def _data(n: int, seed: int = 0) -> bytes:
    """``n`` bytes that are not all alike (so a range read proves its offset)."""
    block = hashlib.sha512(str(seed).encode()).digest()
    return (block * (n // len(block) + 1))[:n]


class Upload:
    """An upload as Glance hands it over: only ``read(n)``, returning at most 64 KiB at a time."""

    def __init__(self, data: bytes) -> None:
        self.stream = io.BytesIO(data)

    def read(self, n: int = -1) -> bytes:
        return self.stream.read(65536 if n < 0 else min(n, 65536))


class Verifier:
    """Glance's signature verifier, reduced to what a driver sees of it."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def update(self, data: bytes) -> None:
        self.chunks.append(bytes(data))


def _conf(backends: dict[str, str]) -> cfg.ConfigOpts:
    """A fresh oslo.config object with ``enabled_backends`` and every driver's options registered."""
    conf = cfg.ConfigOpts()
    conf([], project="glance-store-test", default_config_files=[])
    conf.register_opt(cfg.DictOpt("enabled_backends"))
    conf.set_override("enabled_backends", backends)
    multi_backend.register_store_opts(conf)
    return conf


class Case(unittest.TestCase):
    """A temporary directory with an imagestore TOML of stores ``fast``, ``slow`` and ``mem``."""

    def setUp(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="glance-driver-"))
        self.root = self.tmp / "fast"
        self.config = self.tmp / "imagestore.toml"
        self.config.write_text(
            'default = "slow"\n'
            f'[stores.fast]\ndriver = "file"\nroot = "{self.root}"\nmax_image_size = "8M"\n'
            f'[stores.slow]\ndriver = "file"\nroot = "{self.tmp / "slow"}"\n'
            '[stores.mem]\ndriver = "memory"\n'
        )

    def tearDown(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)

    def store(self, **options: Any) -> Any:
        """A driver for backend ``fast`` with ``options`` set in its section, configured."""
        conf = _conf({"fast": "imagestore"})
        for key, value in {"imagestore_config": str(self.config), "imagestore_store": "fast", **options}.items():
            conf.set_override(key, value, group="fast")
        store = glance_store_driver.Store(conf, backend="fast")
        store.configure(re_raise_bsc=True)
        return store

    def loc(self, store: Any, uri: str) -> Any:
        """The glance_store Location of ``uri`` in ``store``'s backend, through its StoreLocation."""
        return location.Location("file", glance_store_driver.StoreLocation, store.conf, uri=uri,
                                 backend=store.backend_group)

    def left(self) -> list[str]:
        """What the store root holds besides its (empty) temporary directory."""
        names = sorted(os.listdir(self.root))
        if ".tmp" in names and not os.listdir(self.root / ".tmp"):
            names.remove(".tmp")
        return names


class Configuration(Case):
    def test_options_are_registered_for_an_imagestore_backend(self) -> None:
        conf = _conf({"fast": "imagestore", "other": "file"})
        self.assertIsNone(conf.fast.imagestore_config)
        self.assertIsNone(conf.fast.imagestore_store)
        self.assertFalse(hasattr(conf.other, "imagestore_config"))
        glance_store_driver.Store(conf, backend="fast")
        self.assertEqual(conf.fast.weight, 0)  # glance's own multi-backend options, as for every driver
        self.assertIsNone(conf.fast.store_description)

    def test_schemes_prefix_and_capabilities_of_a_file_store(self) -> None:
        store = self.store()
        self.assertEqual(store.get_schemes(), ("imagestore", "file", "filesystem"))
        self.assertEqual(store.url_prefix, f"file://{self.root}/")
        for bit in (BitMasks.READ_RANDOM, BitMasks.WRITE_ACCESS, BitMasks.DRIVER_REUSABLE):
            self.assertTrue(store.is_capable(bit), bit)
        self.assertIs(store.get_store_location_class(), glance_store_driver.StoreLocation)

    def test_the_default_store_of_the_file_serves_when_no_name_is_given(self) -> None:
        store = self.store(imagestore_store=None)
        self.assertEqual(store.url_prefix, f"file://{self.tmp / 'slow'}/")

    def assert_bad(self, reason: str, **options: Any) -> None:
        with self.assertRaises(exceptions.BadStoreConfiguration) as caught:
            self.store(**options)
        self.assertIn(reason, str(caught.exception))
        self.assertIn("fast", str(caught.exception))

    def test_missing_config_path_names_the_option(self) -> None:
        self.assert_bad("imagestore_config is not set", imagestore_config=None)

    def test_config_file_that_does_not_exist_names_the_option(self) -> None:
        self.assert_bad("imagestore_config", imagestore_config=str(self.tmp / "nope.toml"))
        self.assert_bad("does not exist", imagestore_config=str(self.tmp / "nope.toml"))

    def test_invalid_toml_names_the_option(self) -> None:
        (self.tmp / "bad.toml").write_text("[stores.x\n")
        self.assert_bad("imagestore_config", imagestore_config=str(self.tmp / "bad.toml"))

    def test_invalid_store_table_names_the_key(self) -> None:
        (self.tmp / "bad.toml").write_text('[stores.fast]\ndriver = "file"\nroot = "relative"\n')
        self.assert_bad("stores.fast.root", imagestore_config=str(self.tmp / "bad.toml"))

    def test_unknown_store_name_names_the_option_and_the_stores(self) -> None:
        self.assert_bad("imagestore_store: no store named 'nope'", imagestore_store="nope")
        self.assert_bad("configured: fast, slow, mem", imagestore_store="nope")

    def test_a_store_without_a_glance_uri_form_is_refused(self) -> None:
        self.assert_bad("imagestore_store 'mem'", imagestore_store="mem")
        self.assert_bad("no glance_store URI form", imagestore_store="mem")

    def test_a_store_that_cannot_open_yet_is_opened_again_on_a_later_request(self) -> None:
        blocker = self.tmp / "file"
        blocker.write_text("a file where the root's parent should be")
        root = blocker / "r"
        (self.tmp / "late.toml").write_text(f'[stores.fast]\ndriver = "file"\nroot = "{root}"\n')
        store = self.store(imagestore_config=str(self.tmp / "late.toml"))  # start-up goes on
        self.assertTrue(store.is_capable(BitMasks.WRITE_ACCESS))  # not disabled for good
        with self.assertRaises(exceptions.TimeoutError) as caught:  # Glance: 503, image back to queued
            store.add("x1", Upload(b"data"), 4, "sha512")
        for part in ("cannot be opened", "'fast'", "x1", str(root)):
            self.assertIn(part, str(caught.exception))
        self.assertEqual(store.glance_detail()["available"], False)
        blocker.unlink()
        with self.assertLogs("imagestore.glance", "INFO") as logs:
            for _ in range(600):  # the next attempt comes after the backoff (about a second)
                try:
                    result = store.add("x1", Upload(b"data"), 4, "sha512")
                    break
                except exceptions.TimeoutError as exc:
                    self.assertIn("next attempt in", str(exc))
                    time.sleep(0.1)
            else:
                self.fail("the store was not opened again")
        self.assertEqual(result[0], f"file://{root}/x1")
        self.assertEqual(store.url_prefix, f"file://{root}/")
        self.assertEqual(sum("is open again after" in line for line in logs.output), 1)
        self.assertEqual(store.glance_detail()["available"], True)

    def test_a_bad_backend_disables_writes_and_says_why_on_reads(self) -> None:
        conf = _conf({"fast": "imagestore"})
        conf.set_override("imagestore_config", str(self.tmp / "nope.toml"), group="fast")
        store = glance_store_driver.Store(conf, backend="fast")
        self.assertEqual(store.get_schemes(), ("imagestore",))
        store.configure()  # as glance_store does at start-up: logs, keeps going
        self.assertFalse(store.is_capable(BitMasks.WRITE_ACCESS))
        with self.assertRaises(exceptions.StoreAddDisabled):
            store.add("x1", Upload(b"data"), 4, "sha512")
        with self.assertRaises(exceptions.BackendException) as caught:
            store.get(self.loc(store, f"file://{self.root}/x1"))
        self.assertIn("nope.toml", str(caught.exception))


class Detail(Case):
    def test_glance_detail_names_the_store_and_its_driver_and_no_secret(self) -> None:
        detail = self.store().glance_detail()
        self.assertEqual(detail, {"imagestore_store": "fast", "driver": "file", "read_only": False,
                                  "available": True, "url_prefix": f"file://{self.root}/"})

    def test_a_misconfigured_backend_is_read_only_in_its_detail(self) -> None:
        conf = _conf({"fast": "imagestore"})
        conf.set_override("imagestore_config", str(self.tmp / "nope.toml"), group="fast")
        store = glance_store_driver.Store(conf, backend="fast")
        store.configure()
        self.assertEqual(store.glance_detail(), {"imagestore_store": None, "driver": None, "read_only": True,
                                                 "available": False})


class Data(Case):
    def test_add_returns_glance_stores_tuple_computed_in_one_pass(self) -> None:
        store = self.store()
        data = _data(3 * MiB + 7)
        uri, size, md5, multihash, meta = store.add("c0ffee", Upload(data), len(data), "sha512")
        self.assertEqual(uri, f"file://{self.root}/c0ffee")
        self.assertEqual(size, len(data))
        self.assertEqual(md5, hashlib.md5(data).hexdigest())
        self.assertEqual(multihash, hashlib.sha512(data).hexdigest())
        self.assertEqual(meta, {"store": "fast"})
        self.assertEqual((self.root / "c0ffee").read_bytes(), data)

    def test_size_zero_means_unknown_and_other_hashing_algorithms_work(self) -> None:
        store = self.store()
        data = _data(MiB + 1, seed=1)
        for algo in ("sha256", "sha3_512", "md5"):
            _, size, md5, multihash, _ = store.add(f"img-{algo}", Upload(data), 0, algo)
            self.assertEqual(size, len(data))
            self.assertEqual(md5, hashlib.md5(data).hexdigest())
            self.assertEqual(multihash, hashlib.new(algo, data).hexdigest())

    def test_a_hashing_algorithm_imagestore_refuses_is_unknown(self) -> None:
        store = self.store()
        with self.assertRaises(exceptions.UnknownHashingAlgo):
            store.add("img", Upload(b"abc"), 3, "shake_128")
        self.assertEqual(self.left(), [])

    def test_back_compat_add_without_hashing_algo_returns_four_values(self) -> None:
        store = self.store()
        uri, size, md5, meta = store.add("old-style", Upload(b"hello"), 5)
        self.assertEqual((uri, size, md5, meta),
                         (f"file://{self.root}/old-style", 5, hashlib.md5(b"hello").hexdigest(), {"store": "fast"}))

    def test_the_verifier_sees_every_byte_in_order(self) -> None:
        store = self.store()
        data = _data(5 * MiB + 3, seed=2)
        verifier = Verifier()
        store.add("signed", Upload(data), len(data), "sha512", verifier=verifier)
        self.assertGreater(len(verifier.chunks), 1)
        self.assertEqual(b"".join(verifier.chunks), data)

    def test_duplicate_is_glance_stores_duplicate_and_keeps_the_first(self) -> None:
        store = self.store()
        store.add("dup", Upload(b"first"), 5, "sha512")
        with self.assertRaises(exceptions.Duplicate):
            store.add("dup", Upload(b"second"), 6, "sha512")
        self.assertEqual((self.root / "dup").read_bytes(), b"first")

    def test_a_size_other_than_declared_is_invalid_and_leaves_nothing(self) -> None:
        store = self.store()
        with self.assertRaises(exceptions.Invalid):
            store.add("short", Upload(b"12345"), 9, "sha512")
        self.assertEqual(self.left(), [])

    def test_over_max_image_size_is_storage_full_and_leaves_nothing(self) -> None:
        store = self.store()
        with self.assertRaises(exceptions.StorageFull) as caught:
            store.add("huge", Upload(_data(9 * MiB)), 0, "sha512")
        self.assertIn("max_image_size", str(caught.exception))
        self.assertEqual(self.left(), [])

    def test_an_unsafe_image_is_invalid_and_leaves_nothing(self) -> None:
        qemu_img = shutil.which("qemu-img")
        self.assertIsNotNone(qemu_img, "qemu-img is needed (apt install qemu-utils)")
        base, top = self.tmp / "base.raw", self.tmp / "top.qcow2"
        base.write_bytes(b"\0" * MiB)
        subprocess.run([str(qemu_img), "create", "-q", "-f", "qcow2", "-b", str(base), "-F", "raw", str(top)],
                       check=True)
        store = self.store()
        data = top.read_bytes()
        with self.assertRaises(exceptions.Invalid) as caught:
            store.add("unsafe", Upload(data), len(data), "sha512")
        self.assertIn("backing", str(caught.exception))
        self.assertEqual(self.left(), [])

    def test_an_error_of_the_upload_stream_reaches_glance_as_it_is(self) -> None:
        class TooLarge(Exception):  # as Glance's LimitingReader raises past image_size_cap
            pass

        class Capped(Upload):
            def read(self, n: int = -1) -> bytes:
                if self.stream.tell() >= MiB:
                    raise TooLarge("image_size_cap")
                return super().read(n)

        store = self.store()
        with self.assertRaises(TooLarge):
            store.add("capped", Capped(_data(2 * MiB)), 0, "sha512")
        self.assertEqual(self.left(), [])

    def test_get_whole_and_ranges(self) -> None:
        store = self.store()
        data = _data(2 * MiB + 5, seed=3)
        uri = store.add("ranged", Upload(data), len(data), "sha512")[0]
        chunks, size = store.get(self.loc(store, uri))
        self.assertEqual((b"".join(chunks), size), (data, len(data)))
        chunks, size = store.get(self.loc(store, uri), offset=MiB - 3, chunk_size=10)
        self.assertEqual((b"".join(chunks), size), (data[MiB - 3:MiB + 7], 10))
        chunks, size = store.get(self.loc(store, uri), offset=len(data) - 4)
        self.assertEqual((b"".join(chunks), size), (data[-4:], 4))
        self.assertEqual(store.get_size(self.loc(store, uri)), len(data))

    def test_a_whole_read_of_changed_bytes_fails(self) -> None:
        store = self.store()
        data = _data(MiB, seed=4)
        uri = store.add("rotten", Upload(data), len(data), "sha512")[0]
        with open(self.root / "rotten", "r+b") as fh:  # same size, other bytes: bit rot
            fh.seek(1000)
            fh.write(b"X")
        chunks, _ = store.get(self.loc(store, uri))
        with self.assertRaises(exceptions.BackendException) as caught:
            b"".join(chunks)
        self.assertIn("blake3", str(caught.exception))  # the integrity digest, not the slower sha512

    def test_missing_images_are_not_found(self) -> None:
        store = self.store()
        missing = self.loc(store, f"file://{self.root}/absent")
        with self.assertRaises(exceptions.NotFound):
            store.get(missing)
        with self.assertRaises(exceptions.NotFound):
            store.get_size(missing)
        with self.assertRaises(exceptions.NotFound):
            store.delete(missing)

    def test_a_uri_outside_the_root_is_refused(self) -> None:
        store = self.store()
        for uri in ("file:///etc/passwd", f"file://{self.root}/../slow/x", f"file://{self.root}2/x"):
            with self.assertRaises(exceptions.BadStoreUri, msg=uri):
                store.get(self.loc(store, uri))

    def test_delete(self) -> None:
        store = self.store()
        uri = store.add("gone", Upload(b"bye"), 3, "sha512")[0]
        store.delete(self.loc(store, uri))
        self.assertEqual(self.left(), [])
        with self.assertRaises(exceptions.NotFound):
            store.get_size(self.loc(store, uri))

    def test_store_location_parses_glance_forms(self) -> None:
        store = self.store()
        for uri in (f"file://{self.root}/a", f"filesystem://{self.root}/a"):
            self.assertEqual(self.loc(store, uri).store_location.get_uri(), uri)
        with self.assertRaises(exceptions.BadStoreUri):
            self.loc(store, "file://")
        uri = store.add("a", Upload(b"x"), 1, "sha512")[0]
        chunks, _ = store.get(self.loc(store, f"filesystem://{self.root}/a"))
        self.assertEqual((uri, b"".join(chunks)), (f"file://{self.root}/a", b"x"))


class Interchange(Case):
    """One directory served by glance_store's filesystem driver and by this driver, both ways."""

    def test_each_driver_reads_the_images_the_other_wrote(self) -> None:
        ours = self.store()
        conf = _conf({"legacy": "file"})
        conf.set_override("filesystem_store_datadir", str(self.root), group="legacy")
        theirs = filesystem.Store(conf, backend="legacy")
        theirs.configure(re_raise_bsc=True)
        old, new = _data(MiB + 11, seed=5), _data(MiB + 13, seed=6)
        old_uri = theirs.add("written-by-glance", Upload(old), len(old), "sha512")[0]
        new_uri = ours.add("written-by-imagestore", Upload(new), len(new), "sha512")[0]
        self.assertEqual(old_uri, f"file://{self.root}/written-by-glance")
        chunks, size = ours.get(self.loc(ours, old_uri))  # no checksum stored: read as it is
        self.assertEqual((b"".join(chunks), size), (old, len(old)))
        chunks, size = ours.get(self.loc(ours, old_uri), offset=5, chunk_size=3)
        self.assertEqual(b"".join(chunks), old[5:8])
        theirs_loc = location.Location("file", filesystem.StoreLocation, conf, uri=new_uri, backend="legacy")
        chunks, size = theirs.get(theirs_loc)
        self.assertEqual((b"".join(chunks), size), (new, len(new)))
        ours.delete(self.loc(ours, old_uri))
        theirs.delete(theirs_loc)
        # glance_store's driver knows nothing of block tables: the one beside the image it deleted
        # stays until an imagestore sweep finds its image gone
        (table,) = self.left()
        self.assertTrue(table.startswith("imagestore-blocks-") and table.endswith("-written-by-imagestore"), table)
        with Stores.from_file(self.config) as stores:
            self.assertEqual(stores["fast"].sweep(0).removed, 1)
        self.assertEqual(self.left(), [])


class MultiBackend(Case):
    """Through glance_store.multi_backend, as Glance calls it: global CONF, stevedore loading."""

    def test_glance_store_module_functions(self) -> None:
        conf = cfg.CONF
        conf([], project="glance-store-test", default_config_files=[])
        conf.register_opt(cfg.DictOpt("enabled_backends"))
        conf.set_override("enabled_backends", {"fast": "imagestore", "broken": "imagestore"})
        multi_backend.register_store_opts(conf)
        conf.set_override("default_backend", "fast", group="glance_store")
        conf.set_override("imagestore_config", str(self.config), group="fast")
        conf.set_override("imagestore_store", "fast", group="fast")
        conf.set_override("imagestore_config", str(self.config), group="broken")
        conf.set_override("imagestore_store", "nope", group="broken")
        self.assertEqual(multi_backend.create_multi_stores(conf), 4)  # fast: 3 schemes, broken: 1
        store = multi_backend.get_store_from_store_identifier("fast")
        self.assertIsInstance(store, glance_store_driver.Store)
        self.assertIs(multi_backend.get_store_from_store_identifier("fast"), store)  # DRIVER_REUSABLE
        self.assertFalse(multi_backend.get_store_from_store_identifier("broken").is_capable(BitMasks.WRITE_ACCESS))

        data = _data(MiB + 3, seed=7)
        uri, size, md5, multihash, meta = multi_backend.add_with_multihash(
            conf, "via-glance", Upload(data), len(data), "fast", "sha256")
        self.assertEqual((uri, size, md5, multihash, meta),
                         (f"file://{self.root}/via-glance", len(data), hashlib.md5(data).hexdigest(),
                          hashlib.sha256(data).hexdigest(), {"store": "fast"}))
        chunks, _ = multi_backend.get(uri, "fast", offset=1, chunk_size=4)
        self.assertEqual(b"".join(chunks), data[1:5])
        self.assertEqual(multi_backend.get_size_from_uri_and_backend(uri, "fast"), len(data))
        with self.assertRaises(exceptions.StoreAddDisabled):
            multi_backend.add_with_multihash(conf, "x", Upload(b"x"), 1, "broken", "sha512")
        multi_backend.delete(uri, "fast")
        with self.assertRaises(exceptions.NotFound):
            multi_backend.get(uri, "fast")


class ErrorMapping(unittest.TestCase):
    def test_each_imagestore_error_becomes_the_exception_glance_handles(self) -> None:
        table = [
            (errors.AlreadyExists("x"), "add", exceptions.Duplicate),
            (errors.NotFound("x"), "get", exceptions.NotFound),
            (errors.NoSpace("x"), "add", exceptions.StorageFull),
            (errors.ImageTooLarge("x"), "add", exceptions.StorageFull),
            (errors.UnsafeImage("x", reasons=["backing file"]), "add", exceptions.Invalid),
            (errors.SizeMismatch("x"), "add", exceptions.Invalid),
            (errors.PermissionDenied("x"), "add", exceptions.StorageWriteDenied),
            (errors.PermissionDenied("x"), "get", exceptions.Forbidden),
            (errors.PermissionDenied("x"), "delete", exceptions.Forbidden),
            (errors.InUse("x"), "delete", exceptions.InUseByStore),
            (errors.InvalidLocation("x"), "get", exceptions.BadStoreUri),
            (errors.BackendUnavailable("x"), "get", exceptions.RemoteServiceUnavailable),
            (errors.BackendUnavailable("x"), "add", exceptions.TimeoutError),
            (errors.Unsupported("x"), "get", exceptions.StoreRandomGetNotSupported),
            (errors.Unsupported("x"), "add", exceptions.BackendException),
            (errors.ChecksumMismatch("x", algorithm="a", expected="1", actual="2"), "get",
             exceptions.BackendException),
            (errors.BackendError("x"), "add", exceptions.BackendException),
            (errors.ConfigError("x"), "get", exceptions.BackendException),
        ]
        for name in ("Busy", "UploadTimeout"):  # the facade's "try again later" errors, where it has them
            if hasattr(errors, name):
                table.append((getattr(errors, name)("x"), "add", exceptions.TimeoutError))
        for error, op, expected in table:
            got = to_glance_store(error, op)
            self.assertIs(type(got), expected, (error, op))
            self.assertIn("x", str(got))

    def test_messages_are_imagestores_with_store_and_image(self) -> None:
        got = to_glance_store(errors.NotFound("no such image", store="fast", image="abc"), "get")
        self.assertEqual(str(got), "no such image (store 'fast', image 'abc')")


def main(out: str) -> int:
    """Run every case; write ``{test id: {"outcome", "detail"}}`` to ``out``."""
    results: dict[str, dict[str, str]] = {}

    class Recorder(unittest.TestResult):
        def addSuccess(self, test: unittest.TestCase) -> None:
            results[test.id()] = {"outcome": "passed", "detail": ""}

        def _failed(self, test: unittest.TestCase, err: Any, outcome: str) -> None:
            results[test.id()] = {"outcome": outcome, "detail": "".join(traceback.format_exception(*err))}

        def addFailure(self, test: unittest.TestCase, err: Any) -> None:
            self._failed(test, err, "failed")

        def addError(self, test: unittest.TestCase, err: Any) -> None:
            self._failed(test, err, "error")

        def addSkip(self, test: unittest.TestCase, reason: str) -> None:
            results[test.id()] = {"outcome": "skipped", "detail": reason}

    suite = unittest.defaultTestLoader.loadTestsFromModule(sys.modules[__name__])
    suite.run(Recorder())
    Path(out).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))

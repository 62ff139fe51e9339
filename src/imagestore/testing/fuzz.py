"""Properties for fuzzing with hypothesis: locations, configuration, the command line.

Each ``check_*`` function is one property: it takes generated input and raises
AssertionError when imagestore misbehaves. The tests wrap them with ``@given``
at CI size; :func:`run` runs them at any size for the benchmark and counts the
examples. The rules: a location round-trips and never prints a credential;
configuration errors are ConfigErrors naming a key and never echo a secret; the
command line exits 0, 1 or 2 with one line on error, never a traceback, never a
secret. hypothesis (the ``testing`` extra) is imported by the strategies and :func:`run`
only, so the ``check_*`` properties work without it.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, cast

from imagestore import ConfigError, ImageStoreError, InvalidLocation, Location, Stores
from imagestore.location import SCHEMES

__all__ = ["SECRET", "check_cli", "check_config", "check_glance_uri", "check_location_roundtrip",
           "check_parse_anything", "cli_argv", "configs", "glance_uris", "locations", "run"]

SECRET = "Sup3rS3cr3t-7f2c9a"
"""The secret every property plants; it must never come out of imagestore."""
SECRET_ENV = "IMAGESTORE_FUZZ_SECRET"
INSTALL_HINT = "pip install 'imagestore[testing]'"

if TYPE_CHECKING:
    from hypothesis import strategies as st


def _hypothesis() -> SimpleNamespace:
    """hypothesis' ``given``, ``settings``, ``HealthCheck`` and ``strategies``, imported on first use."""
    try:
        from hypothesis import HealthCheck, given, settings
        from hypothesis import strategies
    except ImportError as exc:
        raise ImportError(f"imagestore.testing.fuzz needs hypothesis ({exc}): {INSTALL_HINT}") from exc
    return SimpleNamespace(HealthCheck=HealthCheck, given=given, settings=settings, st=strategies)


@functools.cache
def _strategies() -> SimpleNamespace:
    """Every strategy of the properties, built once, when hypothesis is first needed."""
    st = _hypothesis().st
    seg = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=12).filter(
        lambda s: s not in (".", ".."))
    store = st.from_regex(r"[A-Za-z][A-Za-z0-9_-]{0,10}", fullmatch=True)
    hostchars = st.text(st.characters(codec="ascii", exclude_characters="\x00"), max_size=16)
    key = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,20}", fullmatch=True)
    values = (st.integers(-5, 1 << 40) | st.booleans() | st.floats(allow_nan=False, allow_infinity=False)
              | st.text(max_size=12) | st.just(SECRET) | st.lists(st.text(max_size=6), max_size=3)
              | st.just({"env": SECRET_ENV}) | st.just({"env": "IMAGESTORE_FUZZ_UNSET"})
              | st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2))
    return SimpleNamespace(
        st=st, seg=seg, store=store, hostchars=hostchars, key=key, values=values,
        secretish=st.text(st.sampled_from("abcXYZ019+/=:@_-"), min_size=1, max_size=24),
        keys=st.sampled_from(_CONFIG_KEYS), drivers=st.sampled_from(["file", "memory", "rbd", "s3", "swift", "http",
                                                                    "nosuch", SECRET]),
        locations=st.composite(_draw_location), glance_uris=st.composite(_draw_glance_uri),
        configs=st.composite(_draw_config))


def locations() -> st.SearchStrategy[Location]:
    """Any valid location: known or third-party scheme, any host and segments, any store."""
    return cast("st.SearchStrategy[Location]", _strategies().locations())


def _draw_location(draw: st.DrawFn) -> Location:
    s = _strategies()
    st = s.st
    scheme = draw(st.sampled_from(sorted(SCHEMES)) | st.from_regex(r"[a-z][a-z0-9-]{0,8}", fullmatch=True))
    return Location(scheme, draw(s.hostchars), tuple(draw(st.lists(s.seg, min_size=1, max_size=4))),
                    draw(st.none() | s.store))


def check_location_roundtrip(loc: Location) -> None:
    text = str(loc)
    assert Location.parse(text) == loc, (text, Location.parse(text))
    assert "@" not in text.split("?", 1)[0], text  # user information is never printed
    assert Location.parse(Location.parse(text)) == loc


def glance_uris() -> st.SearchStrategy[tuple[str, tuple[str, ...], str]]:
    """A glance_store URI that embeds :data:`SECRET` (salted), the segments it names, the secret."""
    return cast("st.SearchStrategy[tuple[str, tuple[str, ...], str]]", _strategies().glance_uris())


def _draw_glance_uri(draw: st.DrawFn) -> tuple[str, tuple[str, ...], str]:
    s = _strategies()
    st = s.st
    secret = SECRET + draw(s.secretish)
    user = draw(st.from_regex(r"[A-Za-z0-9_.-]{1,10}", fullmatch=True))
    host = draw(st.from_regex(r"[a-z0-9.-]{1,12}(:[0-9]{2,5})?", fullmatch=True))
    kind = draw(st.sampled_from(["s3", "s3+http", "s3+https", "swift", "swift+http", "swift+https", "http", "https"]))
    if kind.startswith("swift"):
        account = draw(st.none() | st.from_regex(r"[A-Za-z0-9_]{1,8}", fullmatch=True))
        auth = f"{account}:{user}" if account else user
        path = tuple(draw(st.lists(s.key, min_size=2, max_size=2)))
        extra = draw(st.sampled_from(["", "v1.0/", "auth/v1.0/"]))
        return f"{kind}://{auth}:{secret}@{host}/{extra}{'/'.join(path)}", path, secret
    path = tuple(draw(st.lists(s.key, min_size=2, max_size=3)))
    return f"{kind}://{user}:{secret}@{host}/{'/'.join(path)}", path, secret


def check_glance_uri(case: tuple[str, tuple[str, ...], str]) -> None:
    """Credentials are dropped; what the URI names is kept; nothing printed holds the secret."""
    from imagestore.store import parse_any

    uri, path, secret = case
    for parse in (Location.from_glance, parse_any):
        loc = parse(uri)
        shown = f"{loc} {loc!r} {loc.host} {loc.path}"
        assert SECRET not in shown and secret not in shown, shown
        assert loc.path[-len(path):] == path, (uri, loc)
    try:
        Location.parse(uri)
    except InvalidLocation as exc:
        assert SECRET not in str(exc), str(exc)
    else:
        raise AssertionError(f"Location.parse accepted credentials: {uri}")


def check_parse_anything(text: str) -> None:
    """Any string: a Location or InvalidLocation, for every parser, and never the secret echoed."""
    from imagestore.store import parse_any

    for parse in (Location.parse, Location.from_glance, parse_any):
        try:
            loc = parse(text)
        except InvalidLocation as exc:
            if SECRET in text:
                assert SECRET not in str(exc), (text, str(exc))
            continue
        if "@" + SECRET not in text and SECRET + "@" not in text and f":{SECRET}" not in text:
            continue
        assert SECRET not in f"{loc} {loc!r}", (text, str(loc))


# ---------------------------------------------------------------------- configuration
_CONFIG_KEYS = (["driver", "root", "max_image_size", "checksums", "allowed_formats", "cow_requires_raw",
                         "inspect", "verify_reads", "chunk_size", "concurrency", "retries", "retry_backoff",
                         "auto_sweep", "sweep_older_than", "max_concurrent_adds", "idle_timeout", "file_mode",
                         "pool", "conf", "user", "keyring", "endpoint", "bucket", "region", "access_key",
                         "secret_key", "key", "auth_url", "container", "namespace", "read_only", "bogus"])


def configs() -> st.SearchStrategy[dict[str, Any]]:
    """A configuration table, mostly well-formed, with hostile values in random keys."""
    return cast("st.SearchStrategy[dict[str, Any]]", _strategies().configs())


def _draw_config(draw: st.DrawFn) -> dict[str, Any]:
    s = _strategies()
    st = s.st
    stores = {}
    for _ in range(draw(st.integers(0, 3))):
        name = draw(s.store | st.text(max_size=6))
        table: dict[str, Any] = {"driver": draw(s.drivers | s.values)} if draw(st.booleans()) or True else {}
        if table["driver"] == "file" and draw(st.booleans()):
            table["root"] = "/nonexistent/imagestore-fuzz"
        for key in draw(st.lists(s.keys, max_size=5)):
            table[key] = draw(s.values)
        if draw(st.booleans()):
            table["secret_key"] = draw(st.sampled_from([SECRET, {"env": SECRET_ENV}]))
        stores[name] = table
    config: dict[str, Any] = {"stores": stores}
    if draw(st.booleans()):
        config["default"] = draw(st.sampled_from([*stores, "x", SECRET]) if stores else st.just("x"))
    if draw(st.integers(0, 9)) == 0:
        config[draw(st.text(max_size=5))] = draw(s.values)
    return config


def check_config(config: Mapping[str, Any]) -> None:
    """Loading succeeds or raises a ConfigError (or DriverNotInstalled) that names a key and
    never contains the secret."""
    os.environ[SECRET_ENV] = SECRET
    try:
        stores = Stores(config)
    except ConfigError as exc:
        assert exc.key is not None, f"ConfigError without a key: {exc}"
        assert SECRET not in str(exc) or _secret_is_a_name(config), str(exc)
        return
    except ImageStoreError as exc:
        assert type(exc).__name__ == "DriverNotInstalled", repr(exc)
        return
    assert SECRET not in repr(stores) or _secret_is_a_name(config)


#: the options that drivers declare secret (``Option(secret=True)``): never echoed
SECRET_KEYS = frozenset({"access_key", "secret_key", "key", "password", "temp_url_key"})


def _secret_is_a_name(config: Mapping[str, Any]) -> bool:
    """The secret planted as a store name, driver name or default, or as the value of an
    ordinary key (whose bad values errors quote to say what is wrong): not a secret there."""
    stores = config.get("stores", {})
    names = [*stores, config.get("default")] if isinstance(stores, Mapping) else []
    tables = [t for t in stores.values() if isinstance(t, Mapping)] if isinstance(stores, Mapping) else []
    ordinary = [v for t in tables for k, v in t.items() if k not in SECRET_KEYS]
    return (SECRET in names or SECRET in ordinary or any(isinstance(k, str) and SECRET in k for k in config))


def check_config_text(data: bytes, workdir: Path) -> None:
    """Any file named as a configuration: loaded, or a ConfigError (never a decoding traceback)."""
    path = workdir / "fuzz.toml"
    path.write_bytes(data)
    try:
        Stores.from_file(path)
    except ConfigError as exc:
        assert SECRET not in str(exc), str(exc)


# ---------------------------------------------------------------------- command line
_WORDS = ["stores", "add", "get", "stat", "rm", "clone", "locate", "sweep", "inspect", "--json", "-q", "--store",
          "local", "s3", "nosuch", "--config", "CONFIG", "--size", "--format", "--offset", "--length", "-o",
          "out.bin", "--no-verify", "--to", "--name", "--mode", "cow", "stream", "auto", "--older-than", "--all",
          "img", "../etc/passwd", "file:///etc/passwd", f"s3://AK:{SECRET}@h/b/k", f"swift://a:u:{SECRET}@h/c/o",
          "rbd://f/p/i/s", "-1", "10G", "1h", "", "IMAGE", "--help", SECRET]


def cli_argv() -> st.SearchStrategy[list[str]]:
    """Command lines of plausible words and hostile strings (never ``bench``)."""
    hs = _strategies().st
    word = hs.sampled_from(_WORDS) | hs.text(max_size=8)
    return cast("st.SearchStrategy[list[str]]", hs.lists(word, max_size=8).filter(lambda argv: "bench" not in argv))


def check_cli(argv: list[str], workdir: Path) -> None:
    """Exit 0, 1 or 2; on error exactly one line on stderr; no traceback; no secret."""
    from imagestore.cli import main

    os.environ[SECRET_ENV] = SECRET
    config = workdir / "imagestore.toml"
    if not config.exists():
        config.write_text(
            'default = "local"\n'
            f'[stores.local]\ndriver = "file"\nroot = "{workdir / "root"}"\nretries = 0\n'
            '[stores.s3]\ndriver = "s3"\nendpoint = "http://127.0.0.1:9"\nbucket = "b"\nretries = 0\n'
            f'access_key = {{ env = "{SECRET_ENV}" }}\nsecret_key = {{ env = "{SECRET_ENV}" }}\n'
            'connect_timeout = 0.5\nread_timeout = 0.5\n')
        (workdir / "IMAGE").write_bytes(b"\x00" * 4096)
    argv = [str(config) if a == "CONFIG" else str(workdir / "IMAGE") if a == "IMAGE" else a for a in argv]
    argv = [str(workdir / a) if a == "out.bin" else a for a in argv]
    out, err = io.StringIO(), io.StringIO()
    cwd = os.getcwd()
    os.chdir(workdir)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as exc:  # --help
                code = exc.code if isinstance(exc.code, int) else 0
    finally:
        os.chdir(cwd)
    stdout, stderr = out.getvalue(), err.getvalue()
    assert code in (0, 1, 2), (argv, code, stderr)
    assert "Traceback" not in stderr and "Traceback" not in stdout, (argv, stderr)
    typed = any(SECRET in a for a in argv)
    assert SECRET not in stdout + stderr or typed and _echo_is_usage(stderr), (argv, stdout, stderr)
    if code != 0 and "--help" not in argv:
        assert len(stderr.strip().splitlines()) == 1, (argv, stderr)


def _echo_is_usage(stderr: str) -> bool:
    """argparse repeating a word the caller typed (an invalid choice) is not a leak of a stored secret."""
    return "invalid choice" in stderr or "unrecognized arguments" in stderr or "no such file" in stderr


# ---------------------------------------------------------------------- benchmark
def run(examples: int, seed: int = 0) -> dict[str, Any]:
    """Every property with ``examples`` examples each; examples run and failures found."""
    h = _hypothesis()
    st, given, settings, HealthCheck = h.st, h.given, h.settings, h.HealthCheck
    counts: dict[str, int] = {}
    failures: dict[str, str] = {}
    workdir = Path(tempfile.mkdtemp(prefix="imagestore-fuzz-"))

    def counted(name: str, fn: Callable[[Any], None]) -> Callable[[Any], None]:
        def inner(value: Any) -> None:
            counts[name] = counts.get(name, 0) + 1
            fn(value)
        return inner

    props: dict[str, tuple[Any, Callable[..., None]]] = {
        "location_roundtrip": (locations(), check_location_roundtrip),
        "glance_uri_credentials": (glance_uris(), check_glance_uri),
        "parse_any_string": (st.text(max_size=60) | st.builds(lambda a, b: a + SECRET + b, st.text(max_size=20),
                                                             st.text(max_size=20)), check_parse_anything),
        "config_tables": (configs(), check_config),
        "config_files": (st.binary(max_size=200), lambda data: check_config_text(data, workdir)),
        "cli_argv": (cli_argv(), lambda argv: check_cli(argv, workdir)),
    }
    for name, (strategy, prop) in props.items():
        budget = examples if name != "cli_argv" else max(1, examples // 4)
        wrapped: Any = given(strategy)(counted(name, prop))
        test = cast(Callable[[], None], settings(max_examples=budget, database=None, deadline=None,
                                                 derandomize=seed == 0,
                                                 suppress_health_check=list(HealthCheck))(wrapped))
        try:
            test()
        except Exception as exc:  # noqa: BLE001 - a failure is a figure, with hypothesis' minimal example
            text = f"{type(exc).__name__}: {exc}".replace(SECRET, "<planted secret>")
            failures[name] = text[:500]  # the planted secret is this harness's, not imagestore's output
    return {"examples": counts, "total_examples": sum(counts.values()), "failures": failures}

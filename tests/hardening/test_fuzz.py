"""Fuzzing, CI-sized: locations (canonical and glance forms), configuration (tables and
files) and the command line, with the properties of imagestore.testing.fuzz. The cases
hypothesis found are kept below as plain regression tests. The format inspector's
fuzzing is tests/formats/test_fuzz.py; the full-size runs are in the benchmark."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imagestore import ConfigError, InvalidLocation, Location, Stores
from imagestore.cli import main
from imagestore.testing import fuzz

CI = settings(max_examples=150, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@CI
@given(fuzz.locations())
def test_locations_round_trip_without_credentials(loc: Location) -> None:
    fuzz.check_location_roundtrip(loc)


@CI
@given(fuzz.glance_uris())
def test_glance_uris_drop_their_credentials(case: tuple[str, tuple[str, ...], str]) -> None:
    fuzz.check_glance_uri(case)


@CI
@given(st.text(max_size=60) | st.builds(lambda a, b: a + fuzz.SECRET + b, st.text(max_size=20),
                                        st.text(max_size=20)))
def test_any_string_parses_or_is_an_invalid_location(text: str) -> None:
    fuzz.check_parse_anything(text)


@CI
@given(fuzz.configs())
def test_config_tables_fail_with_a_config_error_naming_the_key(config: dict[str, Any]) -> None:
    fuzz.check_config(config)


@CI
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_any_config_file_is_loaded_or_a_config_error(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    fuzz.check_config_text(data, tmp_path_factory.mktemp("cfg"))


@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(fuzz.cli_argv())
def test_cli_exits_0_1_or_2_with_one_line_and_no_secret(tmp_path_factory: pytest.TempPathFactory,
                                                        argv: list[str]) -> None:
    fuzz.check_cli(argv, tmp_path_factory.getbasetemp() / "cli")


@pytest.fixture(autouse=True)
def _cli_dir(tmp_path_factory: pytest.TempPathFactory) -> None:
    (tmp_path_factory.getbasetemp() / "cli").mkdir(exist_ok=True)


# ---------------------------------------------------------------------- found cases
def test_found_canonical_parse_refuses_a_secret_holding_a_slash() -> None:
    """glance_store's secrets may hold '/': ``Location.parse`` must still see the user
    information (it kept ``0:SECRET`` as the host, and printed it)."""
    uri = f"s3://0:{fuzz.SECRET}/@0/0/0"
    with pytest.raises(InvalidLocation) as err:
        Location.parse(uri)
    assert fuzz.SECRET not in str(err.value)
    assert fuzz.SECRET not in str(Location.from_glance(uri))


def test_found_config_file_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_bytes(b"\x80[stores]\n")
    with pytest.raises(ConfigError):
        Stores.from_file(path)


def test_found_config_path_that_is_a_directory_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        Stores.from_file(tmp_path)


def test_found_cli_with_an_undecodable_config_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.toml"
    path.write_bytes(b"\xff\xfe[stores]\n")
    assert main(["--config", str(path), "stores"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "internal error" not in err, err

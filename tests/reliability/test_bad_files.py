"""Garbage in the two files every command reads first, config.toml and daemon.json: read, or
refused with the file's own error (ConfigError, DaemonInfoInvalid), never anything else."""

from __future__ import annotations

import json
import math
import re
from typing import Any

import pytest
from helpers import aileron, kill_daemon
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from reliability.support import ERROR, handled

from aileron_cli.daemon.gateway.config import load_gateway_config
from aileron_cli.daemon.server import _idle_timeout
from aileron_core.discovery import DaemonInfoInvalid, read_daemon_info
from aileron_core.errors import ConfigError
from aileron_core.paths import Layout

FUZZ = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def _toml(value: Any) -> str:
    """``value`` as a TOML value (inline tables and arrays)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return "{" + ", ".join(f"{_toml_key(k)} = {_toml(v)}" for k, v in value.items()) + "}"


toml_scalars = (
    st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=30)
    | st.sampled_from(["http://127.0.0.1:8400", "https://api.openai.com", "ftp://x", ""])
)
toml_values = st.recursive(
    toml_scalars,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.text(min_size=1, max_size=10), children, max_size=3)
    ),
    max_leaves=10,
)
settings_keys = st.sampled_from(["daemon", "gateway", "idle_timeout", "openai", "base_url"])
config_documents = st.dictionaries(
    settings_keys | st.text(min_size=1, max_size=8),
    toml_values
    | st.dictionaries(settings_keys, toml_values, max_size=3)
    | st.fixed_dictionaries(
        {},
        optional={
            "openai": st.dictionaries(settings_keys, toml_values, max_size=2),
            "idle_timeout": toml_values,
        },
    ),
    max_size=3,
).map(lambda doc: "\n".join(f"{_toml_key(k)} = {_toml(v)}" for k, v in doc.items()))


def _read_config(layout: Layout) -> None:
    """What the daemon reads of config.toml before it starts (server.serve's first steps)."""
    _idle_timeout(layout)
    load_gateway_config(layout.config)


@FUZZ
@given(data=st.binary(max_size=300))
def test_any_bytes_in_config_toml_are_read_or_refused_with_a_config_error(
    layout: Layout, data: bytes
) -> None:
    """Random bytes as config.toml: read, or a ConfigError naming the file, nothing else."""
    layout.ensure().config.write_bytes(data)
    try:
        _read_config(layout)
    except ConfigError as error:
        assert str(layout.config) in str(error)


@FUZZ
@given(text=config_documents)
@example(text="daemon = 5")
def test_any_toml_in_config_toml_is_read_or_refused_with_a_config_error(
    layout: Layout, text: str
) -> None:
    """Any TOML document as config.toml: read, or a ConfigError, nothing else."""
    layout.ensure().config.write_text(text)
    try:
        _read_config(layout)
    except ConfigError:
        pass


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "0", "1e400", "true", '"60"'])
def test_an_idle_timeout_that_is_not_a_positive_number_is_refused(
    layout: Layout, value: str
) -> None:
    """`idle_timeout = nan` (which used to mean "never"), inf, zero or not a number: refused."""
    layout.ensure().config.write_text(f"[daemon]\nidle_timeout = {value}\n")
    with pytest.raises(ConfigError, match="idle_timeout"):
        _idle_timeout(layout)


@pytest.mark.slow
def test_garbage_config_toml_is_one_error_line_naming_the_file(layout: Layout) -> None:
    """A command that spawns the daemon over a garbage config.toml fails in one line."""
    layout.ensure().config.write_bytes(b"\xff\xfe[daemon\x00")
    try:
        done = aileron("status")
    finally:
        kill_daemon(layout)
    assert handled(done, ERROR) is None, done.stderr
    assert "config.toml" in done.stderr


@FUZZ
@given(data=st.binary(max_size=300))
def test_any_bytes_in_daemon_json_are_read_or_refused(layout: Layout, data: bytes) -> None:
    """Random bytes as daemon.json: a record, or DaemonInfoInvalid, nothing else."""
    layout.ensure().daemon_json.write_bytes(data)
    try:
        read_daemon_info(layout.daemon_json)
    except DaemonInfoInvalid:
        pass


json_leaves = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_any = st.recursive(
    json_leaves,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)
daemon_records = st.fixed_dictionaries(
    {},
    optional={
        key: json_any for key in ("url", "pid", "version", "started_at", "token", "auto_spawned")
    },
)


@FUZZ
@given(record=daemon_records)
@example(record={"url": "u", "pid": math.inf, "version": "v", "started_at": "s", "token": "t"})
def test_any_json_in_daemon_json_is_read_or_refused(layout: Layout, record: dict[str, Any]) -> None:
    """Any JSON object with daemon.json's keys: a record, or DaemonInfoInvalid, nothing else."""
    layout.ensure().daemon_json.write_text(json.dumps(record))
    try:
        read_daemon_info(layout.daemon_json)
    except DaemonInfoInvalid:
        pass


@pytest.mark.parametrize("pid", [0, -1, 1 << 31, 10**30])
def test_a_pid_out_of_range_in_daemon_json_is_refused(layout: Layout, pid: int) -> None:
    """A pid that no process can have (0 or -1 would signal a whole group) is not a record."""
    record = {"url": "u", "pid": pid, "version": "v", "started_at": "s", "token": "t"}
    layout.ensure().daemon_json.write_text(json.dumps(record))
    with pytest.raises(DaemonInfoInvalid, match="pid"):
        read_daemon_info(layout.daemon_json)


@pytest.mark.slow
def test_a_garbage_daemon_json_is_cleared_by_daemon_stop(layout: Layout) -> None:
    """With no daemon running, `daemon stop` clears a garbage daemon.json; commands work."""
    layout.ensure().daemon_json.write_bytes(b"\x00garbage")
    try:
        stopped = aileron("daemon", "stop")
        status = aileron("vault", "status")
    finally:
        kill_daemon(layout)
    assert stopped.returncode == 0, stopped.stderr
    assert status.returncode == 0, status.stderr

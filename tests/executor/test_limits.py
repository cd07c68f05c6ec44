"""Timeouts, unreachable upstreams, oversized answers and non-2xx statuses become UpstreamError."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from executor.connector import SECRET, execute, make_spec
from executor.upstream_server import Reply, UpstreamServer, closed_port, running

from aileron_cli.daemon.egress.executor import EXCERPT_BYTES, UpstreamError
from aileron_core.redaction import REDACTED, Secret


@pytest.fixture
def upstream() -> Iterator[UpstreamServer]:
    """A recording local HTTP server."""
    with running() as server:
        yield server


def test_a_slow_upstream_times_out(upstream: UpstreamServer) -> None:
    """No answer within timeout_s is upstream_timeout, retriable for an idempotent GET."""
    upstream.replies["/echo"] = Reply(delay_s=10)
    spec, op = make_spec([upstream.host])
    started = time.monotonic()
    with pytest.raises(UpstreamError) as caught:
        execute(spec, op, {}, Secret(SECRET), timeout_s=0.3)
    assert time.monotonic() - started < 3
    assert caught.value.code == "upstream_timeout"
    assert caught.value.retriable is True


def test_a_timed_out_post_is_not_retriable(upstream: UpstreamServer) -> None:
    """A non-idempotent operation that timed out may have run, so it is not retriable."""
    upstream.replies["/echo"] = Reply(delay_s=10)
    spec, op = make_spec([upstream.host], method="POST")
    with pytest.raises(UpstreamError) as caught:
        execute(spec, op, {}, None, timeout_s=0.3)
    assert caught.value.code == "upstream_timeout"
    assert caught.value.retriable is False
    assert "may have run" in str(caught.value)


def test_an_unreachable_upstream_is_reported() -> None:
    """A refused connection is upstream_unreachable, retriable because nothing was sent."""
    spec, op = make_spec([f"127.0.0.1:{closed_port()}"], method="POST")
    with pytest.raises(UpstreamError) as caught:
        execute(spec, op, {}, Secret(SECRET))
    assert caught.value.code == "upstream_unreachable"
    assert caught.value.retriable is True


def test_a_huge_streamed_answer_is_cut_off_without_reading_it(upstream: UpstreamServer) -> None:
    """An answer past max_response_bytes is upstream_response_too_large; reading stops early."""
    total = 256 << 20
    upstream.replies["/echo"] = Reply(stream_total=total, content_type="text/plain")
    spec, op = make_spec([upstream.host])
    with pytest.raises(UpstreamError) as caught:
        execute(spec, op, {}, Secret(SECRET), max_response_bytes=64 << 10)
    assert caught.value.code == "upstream_response_too_large"
    assert caught.value.details["limit"] == 64 << 10
    assert upstream.stream_done.wait(10)
    assert upstream.streamed < total // 4


def test_a_declared_huge_length_is_refused_before_reading(upstream: UpstreamServer) -> None:
    """A Content-Length above the cap is refused from the header alone."""
    upstream.replies["/echo"] = Reply(body=b"{}", declare_length=10**9)
    spec, op = make_spec([upstream.host])
    with pytest.raises(UpstreamError) as caught:
        execute(spec, op, {}, None, max_response_bytes=1000)
    assert caught.value.code == "upstream_response_too_large"
    assert caught.value.details["content_length"] == 10**9


def test_an_answer_exactly_at_the_cap_is_accepted(upstream: UpstreamServer) -> None:
    """A body of exactly max_response_bytes is read whole."""
    upstream.replies["/echo"] = Reply(body=b"y" * 1000, content_type="text/plain")
    spec, op = make_spec([upstream.host])
    result = execute(spec, op, {}, None, max_response_bytes=1000)
    assert result.body == {"text": "y" * 1000}
    assert result.bytes_in == 1000


def test_a_500_is_an_upstream_error_with_a_redacted_excerpt(upstream: UpstreamServer) -> None:
    """A 500 echoing the Authorization header gives upstream_error whose excerpt is redacted."""
    upstream.replies["/echo"] = Reply(status=500, echo_header="Authorization")
    spec, op = make_spec([upstream.host])
    with pytest.raises(UpstreamError) as caught:
        execute(spec, op, {}, Secret(SECRET))
    error = caught.value
    assert error.code == "upstream_error"
    assert error.details["status"] == 500
    assert error.details["excerpt"] == f"Bearer {REDACTED}"
    assert error.retriable is False
    assert SECRET not in str(error)


def test_an_error_excerpt_is_short(upstream: UpstreamServer) -> None:
    """The excerpt of a large error body is at most EXCERPT_BYTES of UTF-8."""
    upstream.replies["/echo"] = Reply(status=400, body="é".encode() * 50_000)
    spec, op = make_spec([upstream.host])
    with pytest.raises(UpstreamError) as caught:
        execute(spec, op)
    excerpt = caught.value.details["excerpt"]
    assert 0 < len(excerpt.encode()) <= EXCERPT_BYTES
    assert set(excerpt) == {"é"}


def test_an_excerpt_never_ends_in_part_of_the_secret(upstream: UpstreamServer) -> None:
    """When the read cap cuts the secret in half, the half is dropped from the excerpt."""
    upstream.replies["/echo"] = Reply(status=401, body=b"x" * 90 + SECRET.encode())
    spec, op = make_spec([upstream.host])
    with pytest.raises(UpstreamError) as caught:
        execute(spec, op, {}, Secret(SECRET), max_response_bytes=100)
    assert caught.value.details["excerpt"] == "x" * 90


@pytest.mark.parametrize(("status", "retriable"), [(404, False), (429, True), (503, True)])
def test_status_decides_retriable(upstream: UpstreamServer, status: int, retriable: bool) -> None:
    """429 and 503 are retriable; a 404 is not."""
    upstream.replies["/echo"] = Reply(status=status, body=b"{}")
    spec, op = make_spec([upstream.host])
    with pytest.raises(UpstreamError) as caught:
        execute(spec, op)
    assert caught.value.details["status"] == status
    assert caught.value.retriable is retriable


def test_a_compressed_answer_is_refused(upstream: UpstreamServer) -> None:
    """An answer with Content-Encoding (though identity was asked) is upstream_bad_response."""
    upstream.replies["/echo"] = Reply(body=b"\x1f\x8b...", headers={"Content-Encoding": "gzip"})
    spec, op = make_spec([upstream.host])
    with pytest.raises(UpstreamError) as caught:
        execute(spec, op)
    assert caught.value.code == "upstream_bad_response"


def test_a_head_answer_declaring_a_large_length_is_fine(upstream: UpstreamServer) -> None:
    """A HEAD answer's Content-Length describes a body it does not carry: no size error."""
    upstream.replies["/echo"] = Reply(body=b"z" * 5000)
    spec, op = make_spec([upstream.host], method="HEAD")
    result = execute(spec, op, {}, None, max_response_bytes=1000)
    assert (result.status, result.body, result.bytes_in) == (200, None, 0)
    assert upstream.seen[0].method == "HEAD"

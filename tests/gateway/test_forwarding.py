"""What the gateway forwards and relays: paths, methods, headers, bodies, errors, audit."""

from __future__ import annotations

import json

import attrs
import httpx
from gateway.support import CHAT, REAL_KEY, Gw, session_headers

from aileron_cli.daemon.gateway.config import DEFAULTS, GatewayConfig
from aileron_cli.daemon.gateway.proxy import MODEL_PEEK_BYTES

CHAT_PATH = "gateway/openai/v1/chat/completions"


def _direct(
    gw: Gw, path: str, body: object, headers: dict[str, str] | None = None
) -> httpx.Response:
    """The same request sent straight to the fake with the real key."""
    headers = {"Authorization": f"Bearer {REAL_KEY}", **(headers or {})}
    return httpx.post(gw.fake.url + path, json=body, headers=headers, timeout=10)


def _move_openai(gw: Gw, base_url: str) -> None:
    providers = dict(gw.state.gateway.config.providers)
    providers["openai"] = attrs.evolve(DEFAULTS["openai"], base_url=base_url)
    gw.state.gateway.config = GatewayConfig(providers)


def test_path_query_and_method_map_onto_the_base_url(gw: Gw) -> None:
    """GET and DELETE go to `<base>/<rest of the path>` with the query string as sent."""
    auth = session_headers(gw.token)
    listed = gw.client.get("gateway/openai/v1/models?limit=2&after=m%2F1", headers=auth)
    removed = gw.client.delete("gateway/openai/v1/files/file-abc", headers=auth)
    assert (listed.status_code, removed.status_code) == (200, 200)
    assert [(s.method, s.path) for s in gw.fake.seen] == [
        ("GET", "/v1/models?limit=2&after=m%2F1"),
        ("DELETE", "/v1/files/file-abc"),
    ]
    assert removed.json() == {"id": "file-abc", "deleted": True}


def test_a_base_url_with_a_path_prefix_keeps_it(gw: Gw) -> None:
    """A base URL with a path (`http://host/prefix`) gets the request's path appended to it."""
    _move_openai(gw, gw.fake.url + "/prefix")
    gw.client.get("gateway/openai/v1/models", headers=session_headers(gw.token))
    assert gw.fake.seen[0].path == "/prefix/v1/models"


def test_non_streaming_answer_is_byte_identical_to_a_direct_call(gw: Gw) -> None:
    """A JSON completion through the gateway has the same status, type and bytes as direct."""
    through = gw.client.post(CHAT_PATH, json=CHAT, headers=session_headers(gw.token))
    direct = _direct(gw, "/v1/chat/completions", CHAT)
    assert through.status_code == direct.status_code == 200
    assert through.content == direct.content
    assert through.headers["content-type"] == direct.headers["content-type"]
    assert through.headers["content-length"] == str(len(direct.content))
    assert gw.fake.seen[0].body == gw.fake.seen[1].body  # the request body went up unchanged


def test_hop_by_hop_headers_are_not_forwarded_either_way(gw: Gw) -> None:
    """Connection, headers it names, Keep-Alive, TE, Proxy-*, Upgrade and X-Aileron-* stay
    behind; other headers go up; the provider's hop-by-hop headers do not come back."""
    headers = {
        **session_headers(gw.token),
        "Connection": "keep-alive, X-Private-Hop",
        "X-Private-Hop": "1",
        "Keep-Alive": "timeout=5",
        "TE": "trailers",
        "Proxy-Authorization": "Basic cHJveHk6c2VjcmV0",
        "Upgrade": "h2c",
        "X-Aileron-Session-Id": gw.session_id,
        "OpenAI-Beta": "assistants=v2",
        "X-Stainless-Lang": "python",
    }
    answer = gw.client.post(CHAT_PATH, json=CHAT, headers=headers)
    assert answer.status_code == 200
    sent = gw.fake.seen[0].header_names()
    for name in ("x-private-hop", "keep-alive", "te", "proxy-authorization", "upgrade"):
        assert name not in sent
    assert not any(name.startswith("x-aileron-") for name in sent)
    assert gw.fake.seen[0].header("connection") in (None, "keep-alive")
    assert gw.fake.seen[0].header("openai-beta") == "assistants=v2"
    assert gw.fake.seen[0].header("x-stainless-lang") == "python"
    assert "x-fake-hop" not in answer.headers and "keep-alive" not in answer.headers
    assert answer.headers["x-request-id"].startswith("req_")


def test_a_provider_error_comes_back_with_its_status_and_body(gw: Gw) -> None:
    """A 429 from the provider reaches the agent as 429 with the same body and Retry-After."""
    error = {"x-fake-status": "429"}
    through = gw.client.post(CHAT_PATH, json=CHAT, headers={**session_headers(gw.token), **error})
    direct = _direct(gw, "/v1/chat/completions", CHAT, error)
    assert through.status_code == direct.status_code == 429
    assert through.content == direct.content
    assert through.headers["retry-after"] == "1"
    payload = gw.audit("gateway.request")[0]["payload"]
    assert payload["status"] == 429


def test_the_request_is_audited_without_keys_or_bodies(gw: Gw) -> None:
    """`gateway.request` carries provider, agent, method, path, model, usage, cost, status,
    sizes, duration and the session — and neither the real key, the session token, nor any
    body."""
    answer = gw.client.post(CHAT_PATH + "?trace=1", json=CHAT, headers=session_headers(gw.token))
    (record,) = gw.audit("gateway.request")
    assert record["session_id"] == gw.session_id
    assert record["actor"] == {"type": "agent", "id": f"session:{gw.session_id}"}
    payload = record["payload"]
    assert payload["duration_ms"] > 0
    del payload["duration_ms"]
    assert payload == {
        "provider": "openai",
        "agent": "codex",
        "method": "POST",
        "path": "/v1/chat/completions",
        "model": "gpt-fake",
        "usage": {"input": 10, "output": 5, "cached": 0},
        "cost": None,
        "priced": None,
        "status": 200,
        "bytes_out": len(gw.fake.seen[0].body),
        "bytes_in": len(answer.content),
        "credential": "binding",
        "binding": "api_key/openai/default",
    }
    log = gw.state.config.layout.audit.read_text()
    for secret in (REAL_KEY, gw.token, "Hello from", '"content": "hi"'):
        assert secret not in log


def test_a_large_body_streams_up_whole_and_its_model_is_not_parsed(gw: Gw) -> None:
    """A request body over the peek limit goes up byte for byte; the audit says model=None."""
    big = {**CHAT, "messages": [{"role": "user", "content": "y" * (MODEL_PEEK_BYTES + 10)}]}
    body = json.dumps(big).encode()
    headers = {**session_headers(gw.token), "content-type": "application/json"}
    answer = gw.client.post(CHAT_PATH, content=body, headers=headers)
    assert answer.status_code == 200
    assert gw.fake.seen[0].body == body
    payload = gw.audit("gateway.request")[0]["payload"]
    assert (payload["model"], payload["bytes_out"]) == (None, len(body))


def test_a_chunked_upload_is_forwarded_chunked(gw: Gw) -> None:
    """A request body of unknown length streams up with chunked framing, intact."""
    parts = [json.dumps(CHAT)[:10].encode(), json.dumps(CHAT)[10:].encode()]
    headers = {**session_headers(gw.token), "content-type": "application/json"}
    answer = gw.client.post(CHAT_PATH, content=iter(parts), headers=headers)
    assert answer.status_code == 200
    assert gw.fake.seen[0].body == b"".join(parts)
    assert gw.fake.seen[0].header("transfer-encoding") == "chunked"
    assert gw.audit("gateway.request")[0]["payload"]["model"] == "gpt-fake"


def test_an_unreachable_provider_is_a_502_envelope_and_audited(gw: Gw) -> None:
    """A provider that refuses connections gets 502 upstream_unreachable, audited with it."""
    _move_openai(gw, "http://127.0.0.1:9")
    answer = gw.client.post(CHAT_PATH, json=CHAT, headers=session_headers(gw.token))
    assert answer.status_code == 502
    assert answer.json()["error"]["code"] == "upstream_unreachable"
    assert REAL_KEY not in answer.text
    payload = gw.audit("gateway.request")[0]["payload"]
    assert (payload["status"], payload["error"]) == (502, "upstream_unreachable")


def test_unknown_provider_is_404(gw: Gw) -> None:
    """Only openai and anthropic are served: another provider name is 404."""
    answer = gw.client.get("gateway/mistral/v1/models", headers=session_headers(gw.token))
    assert answer.status_code == 404

"""`POST /v1/enclave/attach` refuses URLs that cannot name an enclave before contacting it."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

FINGERPRINT = "ab" * 32


@pytest.mark.parametrize(
    "url",
    [
        "https://4 ",
        "https://exa mple.org",
        "https://-bad-.example",
        "https://a..b",
        "http://127.0.0.1:9443",
        "https://127.0.0.1:9443/path",
        "https://user@127.0.0.1:9443",
    ],
)
def test_unusable_enclave_urls_are_422(api: TestClient, url: str) -> None:
    """A URL whose host is not a name or an IP, or that is not bare https, is a 422."""
    answer = api.post(
        "enclave/attach",
        json={"url": url, "fingerprint": FINGERPRINT, "registration_code": "code-1234567890"},
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["code"] in {"invalid_enclave_url", "invalid_request"}

"""The session CA: what it certifies, where its key is (only in memory), and that a session's
CA and sentinels are worthless to the next one."""

from __future__ import annotations

import os
import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509
from sandbox.broker_support import EXPOSED, SECRET, Loop, close_world, open_world

from aileron_cli.daemon.egress.broker import SENTINEL_PREFIX, new_sentinel
from aileron_cli.daemon.egress.proxies import CA_FILE, SOCKET_NAME
from aileron_cli.daemon.egress.session_ca import SessionCA
from aileron_core.paths import Layout


def test_ca_is_a_name_constrained_p256_ca_and_the_leaf_names_exactly_the_hosts() -> None:
    """The CA may sign only leaves (path length 0) for the exposed names; the leaf is a
    serverAuth certificate for exactly those names."""
    ca = SessionCA.create("s42", ["api.github.test", "github.test"])
    cert = x509.load_pem_x509_certificate(ca.cert_pem)
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca and constraints.value.path_length == 0
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign and not usage.digital_signature
    names = cert.extensions.get_extension_for_class(x509.NameConstraints)
    assert names.critical
    assert [n.value for n in names.value.permitted_subtrees or []] == [
        "api.github.test",
        "github.test",
    ]
    assert "s42" in cert.subject.rfc4514_string() and "Aileron" in cert.subject.rfc4514_string()
    assert cert.public_key().curve.name == "secp256r1"  # type: ignore[union-attr]


def test_server_context_verifies_for_the_hosts_only() -> None:
    """A client trusting the CA accepts the leaf for an exposed name (ALPN http/1.1, even
    when h2 is offered) and rejects it for any other name."""
    ca = SessionCA.create("s1", ["api.github.test"])
    server = ca.server_context()
    client = ssl.create_default_context(cadata=ca.cert_pem.decode())
    client.set_alpn_protocols(["h2", "http/1.1"])
    for name, ok in (("api.github.test", True), ("evil.test", False)):
        server_in, client_out = ssl.MemoryBIO(), ssl.MemoryBIO()
        client_in, server_out = ssl.MemoryBIO(), ssl.MemoryBIO()
        s = server.wrap_bio(server_in, server_out, server_side=True)
        c = client.wrap_bio(client_in, client_out, server_hostname=name)
        outcome: BaseException | None = None
        for _ in range(10):
            for side in (c, s):
                try:
                    side.do_handshake()
                except ssl.SSLWantReadError:
                    pass
                except ssl.SSLError as error:
                    outcome = error
            server_in.write(client_out.read())
            client_in.write(server_out.read())
            if outcome is not None:
                break
        assert (outcome is None) == ok, outcome
        if ok:
            assert c.selected_alpn_protocol() == "http/1.1"


def test_forgotten_ca_makes_no_context() -> None:
    """Once forgotten, a session CA cannot make a server context again."""
    ca = SessionCA.create("s1", ["api.github.test"])
    ca.forget()
    with pytest.raises(RuntimeError):
        ca.server_context()


def test_sentinels_are_random_and_shaped() -> None:
    """A sentinel is the prefix and 32 lowercase base32 characters (160 random bits)."""
    first, second = new_sentinel(), new_sentinel()
    assert first != second
    for sentinel in (first, second):
        tail = sentinel.removeprefix(SENTINEL_PREFIX)
        assert sentinel.startswith(SENTINEL_PREFIX) and len(tail) == 32
        assert set(tail) <= set("abcdefghijklmnopqrstuvwxyz234567")


def _files(root: Path) -> list[Path]:
    return [Path(folder, name) for folder, _, names in os.walk(root) for name in names]


def test_ca_file_lives_while_the_proxy_does_and_no_key_is_on_disk(
    loop: Loop, layout: Layout, tmp_path: Path
) -> None:
    """ca.pem (0644, the certificate only) sits next to egress.sock while the proxy is open;
    no file of the home holds a private key; on close both go and the run folder is pruned."""
    world = open_world(loop, layout, tmp_path)
    run = layout.run_dir("s1")
    try:
        assert sorted(p.name for p in run.iterdir()) == [CA_FILE, SOCKET_NAME]
        ca_file = run / CA_FILE
        assert stat.S_IMODE(ca_file.stat().st_mode) == 0o644
        assert ca_file.read_bytes() == world.broker.ca_pem
        for path in _files(layout.home):
            if path.is_file() and not path.is_socket():
                assert b"PRIVATE KEY" not in path.read_bytes(), path
    finally:
        close_world(world)
    assert not run.exists()


def test_next_session_gets_a_new_ca_and_new_sentinels(
    loop: Loop, layout: Layout, tmp_path: Path
) -> None:
    """After a session ends, its CA does not vouch for the next session's proxy and its
    sentinel is just a string there (passed on unchanged, nothing injected)."""
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    first = open_world(loop, layout, tmp_path / "a")
    old_ca, old_sentinel = first.broker.ca_pem, first.sentinels["token/github/default"]
    close_world(first)
    second = open_world(loop, layout, tmp_path / "b")
    try:
        assert second.broker.ca_pem != old_ca
        assert old_sentinel not in second.sentinels.values()
        with pytest.raises(ssl.SSLCertVerificationError):
            second.tunnel(EXPOSED, trust=old_ca.decode())
        connection = second.http()
        connection.request("GET", "/echo", headers={"Authorization": f"Bearer {old_sentinel}"})
        assert connection.getresponse().status == 200
        connection.close()
        seen = second.upstream.seen[-1].headers["authorization"]
        assert seen == f"Bearer {old_sentinel}" and SECRET not in seen
    finally:
        close_world(second)

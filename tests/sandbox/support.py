"""Helpers for the real-engine sandbox tests and the B11 benchmark (``sandbox.support``).

The images are built from scripts/sandbox-setup's Debian base (``podman import`` of a
debootstrap root file system) and the Node base on it (scripts/sandbox-node-base): a
stand-in-agent base on the Node base (tests/sandbox/images), then Aileron's own
``aileron/sandbox-codex`` image from the shipped Containerfile on top of it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

IMAGES = Path(__file__).resolve().parent / "images"
TEST_BASE = os.environ.get("AILERON_TEST_BASE_IMAGE", "localhost/aileron-test-base:bookworm")
AGENT_BASE = "localhost/aileron-test-agent-base:latest"
NODE_BASE = os.environ.get(
    "AILERON_TEST_NODE_BASE_IMAGE", "localhost/aileron-test-node-base:bookworm"
)
REPO_ROOT = Path(__file__).resolve().parents[2]
NO_HTTP_CLIENT = "localhost/aileron-test-no-http-client:latest"
TEST_REPOSITORY = "localhost/aileron-test"
"""Where the tests tag Aileron's images (``$AILERON_SANDBOX_REPOSITORY``): never a tag a user's
``aileron/sandbox-<agent>:<version>`` may hold."""
# Set by scripts/test once scripts/sandbox-setup has prepared podman: then a missing engine is
# a failure, not a skip.
REQUIRE_VAR = "AILERON_REQUIRE_PODMAN"


def podman_unavailable() -> str | None:
    """Why the real-podman tests cannot run here, or ``None``."""
    podman = shutil.which("podman")
    if podman is None:
        return "podman is not installed (scripts/sandbox-setup installs it)"
    done = subprocess.run(
        [podman, "image", "exists", TEST_BASE], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        return f"podman has no {TEST_BASE} (scripts/sandbox-setup builds it): {done.stderr}"
    return None


def podman_build(containerfile: str, tag: str, **build_args: str) -> None:
    """``podman build`` of tests/sandbox/images/<containerfile> (layer-cached, so cheap)."""
    argv = ["podman", "build", "--quiet", "-f", str(IMAGES / containerfile), "-t", tag]
    for name, value in build_args.items():
        argv += ["--build-arg", f"{name}={value}"]
    done = subprocess.run([*argv, str(IMAGES)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"building {tag} failed:\n{done.stdout}\n{done.stderr}")


def ensure_agent_base() -> str:
    """The stand-in-agent base image on the Node base (the bridge needs node in every agent
    image), built (or confirmed current) now."""
    podman_build("agent-base.Containerfile", AGENT_BASE, BASE_IMAGE=ensure_node_base())
    return AGENT_BASE


def ensure_node_base() -> str:
    """The Node base (Debian's nodejs and npm on the test base), built by
    scripts/sandbox-node-base when missing."""
    subprocess.run([str(REPO_ROOT / "scripts" / "sandbox-node-base")], check=True, timeout=900)
    return NODE_BASE


# Every variable a sandboxed agent's env file holds when no provider key is in the vault.
CONTAINER_VARS = frozenset(
    {
        "HOME",
        "PATH",
        "AILERON_API_URL",
        "AILERON_SESSION_ID",
        "AILERON_TOKEN",
        "AILERON_TOOLS_FILE",
        "AILERON_WORKSPACE",
        "OPENAI_BASE_URL",
        "ANTHROPIC_BASE_URL",
        "ANTHROPIC_CUSTOM_HEADERS",
    }
)
# What a launch adds to them: every outbound request goes to the session's egress proxy.
PROXY_VARS = frozenset(
    {"HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy", "NO_PROXY", "no_proxy"}
)


def self_signed(directory: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """A self-signed P-256 certificate for the IP ``host`` and its key: (cert.pem, key.pem)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "aileron-test-upstream")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


BROKER_IMAGE = "localhost/aileron-test-broker:latest"
"""The brokered-credentials tests' image (#19): the Node base plus git, the stand-in as codex."""


def ensure_broker_image() -> str:
    """The brokered-credentials tests' image, built (or confirmed current) now."""
    podman_build("broker.Containerfile", BROKER_IMAGE, BASE_IMAGE=ensure_node_base())
    return BROKER_IMAGE


def _image_id(engine: str, image: str) -> str:
    done = subprocess.run(
        [engine, "image", "inspect", "--format", "{{.Id}}", image],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip().removeprefix("sha256:")


def load_into_docker(image: str, tag: str) -> str:
    """The podman ``image`` in docker as ``tag`` (docker cannot build here): ``podman save |
    docker load``, skipped while docker already holds that very image under ``tag``."""
    wanted = _image_id("podman", image)
    if _image_id("docker", tag) != wanted:
        with subprocess.Popen(["podman", "save", image], stdout=subprocess.PIPE) as save:
            load = subprocess.run(
                ["docker", "load", "--quiet"], stdin=save.stdout, capture_output=True, text=True
            )
        if save.returncode != 0 or load.returncode != 0:
            raise RuntimeError(f"loading {image} into docker failed: {load.stderr}")
        loaded = load.stdout.strip().rpartition("Loaded image: ")[2]
        subprocess.run(["docker", "tag", loaded, tag], capture_output=True, check=True)
        if loaded != tag:
            subprocess.run(["docker", "rmi", loaded], capture_output=True, check=False)
    if _image_id("docker", tag) != wanted:
        raise RuntimeError(f"docker's {tag} is not podman's {image}")
    return tag

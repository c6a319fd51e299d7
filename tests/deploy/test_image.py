"""The container image, built for real and looked at from the inside.

No registry is reachable and containers cannot run here, so the test makes a
Debian base offline-style (debootstrap + podman import, Python from Debian), builds
deploy/Containerfile on it with ``make image``, then mounts the image and chroots
into it: ``consistorio --version``, and ``consistorio up`` answering /healthz as
the image's user on a read-only root with only /tmp and the data volume writable,
stopped by SIGTERM through tini. Slow (minutes): opt-in with ``-m image``; CI runs
it (``make test-image``).
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from packaging.utils import canonicalize_name

from tests.deploy.test_constraints import pins
from tests.support.servers import require_tool

pytestmark = pytest.mark.image

ROOT = Path(__file__).resolve().parents[2]
BASE = os.environ.get("CONSISTORIO_TEST_BASE", "localhost/consistorio-test-base:bookworm")
# Debian's bookworm has Python 3.11, the image's version; tini is Debian's too.
BASE_PACKAGES = "python3,python3-venv,python3-pip,tini,ca-certificates"
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")


def run(*args: str, timeout: float = 900, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, capture_output=True, text=True, check=True, timeout=timeout, **kwargs
    )


def exists(image: str) -> bool:
    return subprocess.run(["podman", "image", "exists", image], check=False).returncode == 0


@pytest.fixture(scope="module")
def base_image(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The offline-made Debian base (kept between runs: it only changes with Debian)."""
    require_tool("podman", "podman")
    if exists(BASE):
        return BASE
    require_tool("debootstrap", "debootstrap")
    rootfs = tmp_path_factory.mktemp("base") / "rootfs"
    run(
        "debootstrap",
        "--variant=minbase",
        f"--include={BASE_PACKAGES}",
        "bookworm",
        str(rootfs),
        "http://deb.debian.org/debian",
        timeout=1800,
    )
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
    subprocess.run(["podman", "import", "-", BASE], stdin=tar.stdout, check=True, timeout=600)
    assert tar.wait() == 0
    run("rm", "-rf", str(rootfs))
    return BASE


@pytest.fixture(scope="module")
def image(base_image: str) -> Iterator[str]:
    """deploy/Containerfile built with make image on the test base; removed afterwards."""
    tag = f"localhost/consistorio:test-{uuid.uuid4().hex[:8]}"
    args = ["make", "-C", str(ROOT), "image", f"BASE={base_image}", f"IMAGE={tag}"]
    if HOST_CA.exists():
        # The host's CA bundle, for a build behind a TLS-inspecting proxy.
        args.append(f"BUILD_CA={HOST_CA}")
    started = time.monotonic()
    built = subprocess.run(args, capture_output=True, text=True, timeout=1800, check=False)
    assert built.returncode == 0, built.stdout[-4000:] + built.stderr[-4000:]
    print(f"\nimage build: {time.monotonic() - started:.0f} s")
    yield tag
    subprocess.run(["podman", "rmi", "--force", tag], capture_output=True, check=False)
    subprocess.run(
        ["podman", "image", "prune", "--force", "--filter", "label=consistorio.stage=wheels"],
        capture_output=True,
        check=False,
    )


@pytest.fixture(scope="module")
def mounted(image: str) -> Iterator[Path]:
    path = Path(run("podman", "image", "mount", image).stdout.strip())
    yield path
    subprocess.run(["podman", "image", "unmount", image], capture_output=True, check=False)


def test_image_config_user_entrypoint_labels_and_size(image: str) -> None:
    (inspected,) = json.loads(run("podman", "image", "inspect", image).stdout)
    config = inspected["Config"]
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["tini", "--", "consistorio"]
    # podman keeps a docker-format image's health check beside its config.
    healthcheck = inspected.get("Healthcheck") or config.get("Healthcheck")
    assert healthcheck, sorted(inspected)
    assert healthcheck["Test"][0] == "CMD" and "/healthz" in " ".join(healthcheck["Test"])
    assert "/var/lib/consistorio" in config["Volumes"]
    labels = config["Labels"]
    for key in ("title", "version", "licenses", "source"):
        assert labels[f"org.opencontainers.image.{key}"], key
    size_mb = inspected["Size"] / 1e6
    print(f"\nimage size: {size_mb:.0f} MB (base {BASE})")
    assert size_mb < 1000


def test_no_compiler_and_no_pip_in_the_runtime(mounted: Path) -> None:
    for tool in ("gcc", "cc", "c++", "make", "ld"):
        assert not (mounted / "usr" / "bin" / tool).exists(), tool
    assert not (mounted / "opt" / "consistorio" / "bin" / "pip").exists()
    assert not (mounted / "src").exists() and not (mounted / "wheels").exists()


def test_version_runs_inside_the_image(mounted: Path) -> None:
    out = run(
        "chroot",
        "--userspec=10001:10001",
        str(mounted),
        "/opt/consistorio/bin/consistorio",
        "--version",
    )
    assert out.stdout.strip().startswith("consistorio ")


def test_the_image_holds_the_pinned_versions(mounted: Path) -> None:
    listing = (
        "import json, importlib.metadata as m; "
        "print(json.dumps({d.name: d.version for d in m.distributions()}))"
    )
    out = run(
        "chroot",
        "--userspec=10001:10001",
        str(mounted),
        "/opt/consistorio/bin/python",
        "-c",
        listing,
    )
    installed = {
        canonicalize_name(name): version for name, version in json.loads(out.stdout).items()
    }
    installed.pop("consistorio")
    # The venv's own seed (python -m venv), not something the build resolved.
    installed.pop("setuptools", None)
    pinned = pins()
    unpinned = {n: v for n, v in installed.items() if n not in pinned or str(pinned[n]) != v}
    assert not unpinned, f"installed outside deploy/constraints.txt: {unpinned}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_up_answers_healthz_on_a_read_only_root_and_stops_on_sigterm(mounted: Path) -> None:
    port = _free_port()
    root = shlex.quote(str(mounted))
    # A private mount namespace: the image read-only, /tmp and the data volume writable.
    script = f"""
set -e
mount --bind {root} {root}
mount -o remount,bind,ro {root}
mount --rbind /dev {root}/dev
mount -t proc proc {root}/proc
mount -t tmpfs -o mode=1777 tmpfs {root}/tmp
mount -t tmpfs -o uid=10001,gid=10001,mode=0750 tmpfs {root}/var/lib/consistorio
exec chroot --userspec=10001:10001 {root} /usr/bin/env -i \\
  PATH=/opt/consistorio/bin:/usr/bin:/bin HOME=/var/lib/consistorio \\
  DATA_DIR=/var/lib/consistorio PYTHONDONTWRITEBYTECODE=1 \\
  /usr/bin/tini -- consistorio up --host 127.0.0.1 --port {port}
"""
    process = subprocess.Popen(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    healthz = readyz = None
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and process.poll() is None:
            try:
                healthz = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code
                readyz = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=10).status_code
                break
            except httpx.HTTPError:
                time.sleep(0.5)  # polling interval while the platform starts
    finally:
        # sh exec'd into chroot, then tini: the signal reaches tini, which forwards it.
        process.send_signal(signal.SIGTERM)
        try:
            output, _ = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
    assert (healthz, readyz) == (200, 200), output[-3000:]
    assert "Consistorio stopped" in output, output[-3000:]
    assert process.returncode == 0, output[-3000:]

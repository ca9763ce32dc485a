"""A Docker daemon, a base image and the project's image on a machine without Docker Hub.

What works here (`/work/shared/reference/stack-notes.md`, "Building and running the container
image here"): Debian's `docker.io` with `dockerd` on the vfs storage driver and no networking
of its own (containers use `--network host`), a Python base image made with `debootstrap`
from Debian's packages, and the legacy builder (BuildKit would fetch the Dockerfile's
`# syntax=` frontend from Docker Hub).

Each step reuses what an earlier run left: a running daemon, the base image, the layer cache.
A step that cannot be done raises `Unavailable` with the reason, and the test skips with it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LOG_DIR = ROOT / "var" / "image"
BASE_IMAGE = "local/bookworm-python:3.11"
PROJECT_IMAGE = "momo-gateway:image-test"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
ROOTFS_CACHE = Path("/var/cache/momo-gateway/bookworm-python-rootfs.tar")
DAEMON_START_SECONDS = 60


class Unavailable(Exception):
    """Docker cannot run on this machine; the message says why."""


def run(
    args: list[str], *, timeout: float, check: bool = True, **kwargs
) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603 - fixed argument lists, no shell
        args, capture_output=True, text=True, timeout=timeout, check=check, **kwargs
    )


def _debian_mirror() -> str:
    """The Debian mirror apt already uses (deb822 or one-line sources)."""
    for path in sorted(Path("/etc/apt").glob("sources.list.d/*.sources")):
        for line in path.read_text().splitlines():
            if line.startswith("URIs:") and "security" not in line:
                return line.split(":", 1)[1].split()[0]
    sources = Path("/etc/apt/sources.list")
    if sources.exists():
        for line in sources.read_text().splitlines():
            parts = line.split()
            if len(parts) > 2 and parts[0] == "deb" and "security" not in parts[1]:
                return parts[1]
    return "http://deb.debian.org/debian"


def _daemon_answers() -> bool:
    if not shutil.which("docker"):
        return False
    try:
        return (
            run(
                ["docker", "info", "--format", "{{.ServerVersion}}"], timeout=15, check=False
            ).returncode
            == 0
        )
    except subprocess.TimeoutExpired:
        return False


@dataclass
class Daemon:
    """The daemon this run started (stopped again at the end), or None if one was running."""

    process: subprocess.Popen | None

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def install_packages() -> None:
    """docker.io and debootstrap from Debian, when missing and we are root."""
    if shutil.which("dockerd") and shutil.which("debootstrap"):
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise Unavailable("dockerd/debootstrap are not installed and this user cannot apt-get them")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        run(["apt-get", "update", "-qq"], timeout=300, check=False, env=env)
        run(
            [
                "apt-get",
                "install",
                "-y",
                "-qq",
                "-o",
                "DPkg::Lock::Timeout=300",
                "docker.io",
                "debootstrap",
            ],
            timeout=600,
            env=env,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        output = getattr(exc, "stderr", "") or ""
        raise Unavailable(f"apt-get install docker.io debootstrap failed: {output[-500:]}") from exc


def _storage_drivers() -> list[str]:
    """overlay2 where the kernel has overlayfs (a layer costs nothing), else vfs (a full copy
    of the file system per layer: a cold build takes several times longer)."""
    try:
        has_overlay = "overlay" in Path("/proc/filesystems").read_text()
    except OSError:
        has_overlay = False
    return ["overlay2", "vfs"] if has_overlay else ["vfs"]


def _start_daemon(driver: str, log_path: Path) -> subprocess.Popen | None:
    log = log_path.open("w")
    process = subprocess.Popen(  # noqa: S603
        [  # noqa: S607
            "dockerd",
            f"--storage-driver={driver}",
            "--iptables=false",
            "--ip6tables=false",
            "--bridge=none",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + DAEMON_START_SECONDS
    while time.monotonic() < deadline and process.poll() is None:
        if _daemon_answers():
            return process
        time.sleep(0.5)
    Daemon(process=process).stop()
    return None


def ensure_daemon() -> Daemon:
    if _daemon_answers():
        return Daemon(process=None)
    install_packages()
    if not shutil.which("docker"):
        raise Unavailable("no docker client on PATH after installing docker.io")
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    tails = []
    for driver in _storage_drivers():
        log_path = LOG_DIR / f"dockerd-{driver}.log"
        process = _start_daemon(driver, log_path)
        if process is not None:
            return Daemon(process=process)
        tails.append(f"--- {driver}:\n{log_path.read_text()[-600:]}")
    raise Unavailable("dockerd did not start; its logs end:\n" + "\n".join(tails))


def image_exists(name: str) -> bool:
    return run(["docker", "image", "inspect", name], timeout=30, check=False).returncode == 0


def ensure_base_image() -> bool:
    """local/bookworm-python:3.11 from Debian's packages; False when it was already there."""
    if image_exists(BASE_IMAGE):
        return False
    install_packages()
    raw = BASE_IMAGE + "-minbase"
    if not image_exists(raw):
        if not ROOTFS_CACHE.exists():
            _debootstrap_to(ROOTFS_CACHE)
        with ROOTFS_CACHE.open("rb") as rootfs:
            imported = subprocess.run(  # noqa: S603
                ["docker", "import", "-", raw],  # noqa: S607
                stdin=rootfs,
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
        if imported.returncode != 0:
            raise Unavailable(f"docker import failed: {imported.stderr[-800:]}")
    # On top: `python` as the Dockerfile calls it, and the machine's CA bundle for pip (the
    # registries are reached through this machine's TLS setup).
    with tempfile.TemporaryDirectory(prefix="momo-base-") as context:
        shutil.copy(CA_BUNDLE, Path(context) / "ca-certificates.crt")
        (Path(context) / "Dockerfile").write_text(
            f"FROM {raw}\n"
            "RUN ln -sf /usr/bin/python3 /usr/local/bin/python\n"
            "COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt\n"
            "ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt LANG=C.UTF-8\n"
        )
        built = run(
            ["docker", "build", "--network", "host", "-t", BASE_IMAGE, context],
            timeout=600,
            check=False,
            env={**os.environ, "DOCKER_BUILDKIT": "0"},
        )
        if built.returncode != 0:
            raise Unavailable(f"building {BASE_IMAGE} failed: {built.stderr[-800:]}")
    return True


def _debootstrap_to(tarball: Path) -> None:
    """A minimal Debian bookworm with Python, packed as ``tarball`` for ``docker import``.

    Kept outside the work tree, so that another clone, or a daemon on another storage driver,
    imports it in seconds instead of bootstrapping again.
    """
    tarball.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="momo-bookworm-") as rootfs:
        try:
            run(
                [
                    "debootstrap",
                    "--variant=minbase",
                    "--include=python3,python3-venv,python3-pip,ca-certificates",
                    "bookworm",
                    rootfs,
                    _debian_mirror(),
                ],
                timeout=1200,
            )
        except subprocess.CalledProcessError as exc:
            raise Unavailable(f"debootstrap failed: {exc.stderr[-800:]}") from exc
        partial = tarball.with_suffix(".partial")
        run(["tar", "-C", rootfs, "-cf", str(partial), "."], timeout=600)
        partial.replace(tarball)


def build_project_image() -> str:
    """The project's Dockerfile as it is, on the local base; the build log goes to var/image."""
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log_path = LOG_DIR / "build.log"
    with log_path.open("w") as log:
        built = subprocess.run(  # noqa: S603
            [
                "docker",
                "build",
                "--network",
                "host",
                "--build-arg",
                f"PYTHON_IMAGE={BASE_IMAGE}",
                "-t",
                PROJECT_IMAGE,
                str(ROOT),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=1500,
            check=False,
            env={**os.environ, "DOCKER_BUILDKIT": "0"},
        )
    if built.returncode != 0:
        raise AssertionError(
            f"docker build of the Dockerfile failed (exit {built.returncode}); "
            f"{log_path} ends:\n{log_path.read_text()[-3000:]}"
        )
    return PROJECT_IMAGE

"""Runs a real `sesamed` for the interop tests, and talks to its admin API.

The server is the binary named by SESAMED_BIN (default: <repo>/target/debug/sesamed, built with
`cargo build -p sesame-server` when it is missing). It runs in `--dev` mode on a free loopback
port with a temporary data directory, and it must stop with exit status 0 on SIGTERM.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

# The test server speaks plain HTTP on loopback. authlib refuses non-https endpoint URLs in its
# metadata validators unless this is set; it changes nothing else.
os.environ.setdefault("AUTHLIB_INSECURE_TRANSPORT", "1")

REPO_ROOT = Path(__file__).resolve().parents[3]
READY_TIMEOUT = float(os.environ.get("SESAMED_READY_TIMEOUT", "30"))
STOP_TIMEOUT = float(os.environ.get("SESAMED_STOP_TIMEOUT", "15"))
HTTP_TIMEOUT = 10

ALGS = ("RS256", "ES256", "EdDSA")


def _tail(path: Path, limit: int = 4000) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as e:
        return f"<cannot read {path}: {e}>"
    return text if len(text) <= limit else "…" + text[-limit:]


def sesamed_binary() -> Path:
    explicit = os.environ.get("SESAMED_BIN")
    if explicit:
        path = Path(explicit)
        if not (path.is_file() and os.access(path, os.X_OK)):
            pytest.fail(f"SESAMED_BIN={explicit} is not an executable file", pytrace=False)
        return path
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO_ROOT / "target"))
    path = target / "debug" / "sesamed"
    if not path.is_file():
        build = subprocess.run(
            ["cargo", "build", "-p", "sesame-server"],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        if build.returncode != 0 or not path.is_file():
            pytest.fail(
                f"{path} is missing and `cargo build -p sesame-server` failed "
                f"(exit {build.returncode}):\n{build.stdout[-4000:]}",
                pytrace=False,
            )
    return path


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Sesame:
    """A running sesamed and an admin API client for it."""

    process: subprocess.Popen
    base_url: str
    data_dir: Path
    admin_token: str
    stderr_path: Path
    http: requests.Session = field(default_factory=requests.Session)

    def issuer(self, tenant: str = "default") -> str:
        return f"{self.base_url}/t/{tenant}"

    # --- admin API (docs/admin-api.md) ---

    def admin(self, method: str, path: str, json: dict | None = None) -> requests.Response:
        return self.http.request(
            method,
            f"{self.base_url}/admin/v1{path}",
            json=json,
            headers={"Authorization": f"Bearer {self.admin_token}"},
            timeout=HTTP_TIMEOUT,
        )

    def _admin_ok(self, method: str, path: str, json: dict | None, status: int) -> dict:
        resp = self.admin(method, path, json)
        assert resp.status_code == status, f"{method} {path}: {resp.status_code} {resp.text}"
        return resp.json()

    def create_tenant(self, tenant_id: str | None = None, **fields) -> dict:
        """POST /tenants; returns the Tenant."""
        tenant_id = tenant_id or f"t-{uuid.uuid4().hex[:12]}"
        return self._admin_ok("POST", "/tenants", {"id": tenant_id, **fields}, 201)

    def create_client(self, tenant: str = "default", **spec) -> "ClientCreds":
        """POST /tenants/{tenant}/clients with a ClientSpec; returns the id and the secret."""
        spec.setdefault("client_id", f"c-{uuid.uuid4().hex[:12]}")
        body = self._admin_ok("POST", f"/tenants/{tenant}/clients", spec, 201)
        return ClientCreds(
            tenant=tenant,
            client_id=body["client"]["client_id"],
            client_secret=body.get("client_secret"),
            client=body["client"],
        )

    def create_user(self, tenant: str = "default", **spec) -> dict:
        """POST /tenants/{tenant}/users (a local account); returns the User."""
        spec.setdefault("username", f"u-{uuid.uuid4().hex[:12]}")
        return self._admin_ok("POST", f"/tenants/{tenant}/users", spec, 201)

    # --- lifecycle ---

    def stop(self) -> int:
        """SIGTERM, then wait; returns the exit status (killing it if it does not stop)."""
        self.http.close()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                pytest.fail(
                    f"sesamed did not stop within {STOP_TIMEOUT}s of SIGTERM; stderr:\n"
                    f"{_tail(self.stderr_path)}",
                    pytrace=False,
                )
        return self.process.returncode


@dataclass
class ClientCreds:
    tenant: str
    client_id: str
    client_secret: str | None
    client: dict


def start_sesamed(data_dir: Path, attempts: int = 3) -> Sesame:
    """Starts sesamed --dev in data_dir on a free loopback port and waits for /readyz."""
    binary = sesamed_binary()
    data_dir.mkdir(parents=True, exist_ok=True)
    for attempt in range(1, attempts + 1):
        port = free_loopback_port()
        base_url = f"http://127.0.0.1:{port}"
        stdout_path = data_dir / f"sesamed-{attempt}.stdout"
        stderr_path = data_dir / f"sesamed-{attempt}.stderr"
        with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
            process = subprocess.Popen(
                [str(binary), "serve", "--dev", "--listen", f"127.0.0.1:{port}", "--data-dir", str(data_dir)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env={**os.environ, "NO_COLOR": "1"},
            )
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            code = process.poll()
            if code is not None:
                stderr = _tail(stderr_path)
                # Another process may have taken the port between our probe and the bind.
                if attempt < attempts and "in use" in stderr.lower():
                    break
                pytest.fail(
                    f"sesamed exited with status {code} before it was ready "
                    f"({binary} serve --dev --listen 127.0.0.1:{port} --data-dir {data_dir}); stderr:\n{stderr}",
                    pytrace=False,
                )
            try:
                if requests.get(f"{base_url}/readyz", timeout=1).status_code == 200:
                    token_file = data_dir / "admin-token"
                    admin_token = token_file.read_text().strip()
                    assert admin_token, f"{token_file} is empty"
                    return Sesame(process, base_url, data_dir, admin_token, stderr_path)
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                process.kill()
                process.wait()
                pytest.fail(
                    f"sesamed did not answer 200 on {base_url}/readyz within {READY_TIMEOUT}s; "
                    f"stderr:\n{_tail(stderr_path)}",
                    pytrace=False,
                )
            time.sleep(0.1)
    raise AssertionError("unreachable")


@pytest.fixture(scope="session")
def sesame(tmp_path_factory) -> Sesame:
    """One sesamed for the whole session; at teardown it must shut down gracefully (exit 0)."""
    server = start_sesamed(tmp_path_factory.mktemp("sesamed"))
    try:
        yield server
    finally:
        code = server.stop()
        # pytest.fail, not assert: this runs in the last test's teardown, and an xfail marker
        # there (raises=AssertionError) must not swallow a failed shutdown.
        if code != 0:
            pytest.fail(
                f"sesamed exited with status {code} after SIGTERM (graceful shutdown must exit 0); "
                f"stderr:\n{_tail(server.stderr_path)}",
                pytrace=False,
            )


@pytest.fixture(scope="session")
def clients(sesame) -> dict[str, ClientCreds]:
    """A confidential client in tenant `default` for each signing algorithm."""
    return {
        alg: sesame.create_client(
            "default",
            name=f"interop {alg}",
            signing_alg=alg,
            allowed_scopes=["read", "write"],
            allowed_audiences=["https://api.example.com", "urn:example:other"],
        )
        for alg in ALGS
    }

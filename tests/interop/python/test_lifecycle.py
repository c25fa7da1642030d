"""sesamed as a process: it starts in --dev mode, serves, and stops cleanly on SIGTERM.

(The session-wide server in conftest.py is also stopped with SIGTERM and must exit 0.)"""

from __future__ import annotations

import requests
from authlib.integrations.requests_client import OAuth2Session

from conftest import HTTP_TIMEOUT, start_sesamed


def test_sesamed_serves_a_token_and_exits_zero_on_sigterm(tmp_path):
    server = start_sesamed(tmp_path / "data")
    try:
        assert (tmp_path / "data" / "admin-token").stat().st_mode & 0o077 == 0, "admin-token must be 0600"
        unauthorized = requests.get(f"{server.base_url}/admin/v1/tenants", timeout=HTTP_TIMEOUT)
        assert unauthorized.status_code == 401
        tenants = server.admin("GET", "/tenants").json()["tenants"]
        assert [t["id"] for t in tenants] == ["default"]
        creds = server.create_client("default")
        doc = requests.get(f"{server.issuer()}/.well-known/openid-configuration", timeout=HTTP_TIMEOUT).json()
        with OAuth2Session(creds.client_id, creds.client_secret, default_timeout=HTTP_TIMEOUT) as session:
            assert session.fetch_token(doc["token_endpoint"], grant_type="client_credentials")["access_token"]
    finally:
        code = server.stop()
    assert code == 0, f"sesamed exited with {code} after SIGTERM:\n{server.stderr_path.read_text()}"
    assert "stopped" in server.stderr_path.read_text()


def test_a_restarted_sesamed_keeps_its_tenants_keys_and_clients(tmp_path):
    data = tmp_path / "data"
    first = start_sesamed(data)
    try:
        tenant = first.create_tenant()["id"]
        creds = first.create_client(tenant)
        jwks_before = requests.get(f"{first.issuer(tenant)}/jwks", timeout=HTTP_TIMEOUT).json()
    finally:
        assert first.stop() == 0
    second = start_sesamed(data)
    try:
        assert second.admin_token == first.admin_token
        assert requests.get(f"{second.issuer(tenant)}/jwks", timeout=HTTP_TIMEOUT).json() == jwks_before
        with OAuth2Session(creds.client_id, creds.client_secret, default_timeout=HTTP_TIMEOUT) as session:
            token = session.fetch_token(f"{second.issuer(tenant)}/token", grant_type="client_credentials")
        assert token["access_token"]
    finally:
        assert second.stop() == 0

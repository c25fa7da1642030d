"""Workload tokens verified the way an outside system would: with PyJWT, from
the files `sesame admin workload-issuer export` writes, and nothing else (no request reaches
sesamed during verification), before and after a key rotation."""

from __future__ import annotations

import functools
import http.server
import json
import os
import subprocess
import threading
import uuid
from pathlib import Path

import jwt
import pytest
import requests

from conftest import ALGS, HTTP_TIMEOUT, REPO_ROOT

WORKLOAD = "urn:sesame:params:oauth:grant-type:workload-token"
AUDIENCE = "https://warehouse.example"


def sesame_cli() -> Path:
    explicit = os.environ.get("SESAME_CLI_BIN")
    if explicit:
        return Path(explicit)
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO_ROOT / "target"))
    path = target / "debug" / "sesame"
    if not path.is_file():
        build = subprocess.run(["cargo", "build", "-p", "sesame-cli"], cwd=REPO_ROOT, capture_output=True, text=True)
        if build.returncode != 0:
            pytest.fail(f"`cargo build -p sesame-cli` failed:\n{build.stderr[-4000:]}", pytrace=False)
    return path


def export(sesame, tenant: str, out: Path | None, check: bool = False) -> subprocess.CompletedProcess:
    args = [str(sesame_cli()), "admin", "workload-issuer", "export", "--tenant", tenant]
    if out is not None:
        args += ["--out", str(out)]
    if check:
        args.append("--check")
    done = subprocess.run(
        args,
        env={**os.environ, "SESAME_URL": sesame.base_url, "SESAME_ADMIN_TOKEN": sesame.admin_token},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done


class StaticVerifier:
    """An outside verifier that knows only the exported directory and the issuer it trusts."""

    def __init__(self, directory: Path, issuer: str):
        conf = json.loads((directory / ".well-known" / "openid-configuration").read_text())
        assert conf["issuer"] == issuer
        # The jwks_uri names a file under the issuer's URL, hence under the directory.
        assert conf["jwks_uri"].startswith(issuer + "/")
        relative = conf["jwks_uri"][len(issuer) + 1 :]
        self.jwks = jwt.PyJWKSet.from_json((directory / relative).read_text())
        self.algs = conf["id_token_signing_alg_values_supported"]
        self.issuer = issuer

    def verify(self, token: str, audience: str = AUDIENCE) -> dict:
        kid = jwt.get_unverified_header(token)["kid"]
        key = next(k for k in self.jwks.keys if k.key_id == kid)
        return jwt.decode(
            token,
            key=key.key,
            algorithms=self.algs,
            audience=audience,
            issuer=self.issuer,
            options={"require": ["iss", "sub", "aud", "iat", "nbf", "exp", "jti"]},
        )


@pytest.mark.parametrize("alg", ALGS)
def test_a_workload_token_verifies_from_the_exported_files_alone_before_and_after_a_rotation(sesame, tmp_path, alg):
    tenant = f"w-{uuid.uuid4().hex[:10]}"
    sesame.create_tenant(tenant, signing_alg=alg)
    issuer = f"https://static.example/{tenant}"
    resp = sesame.admin("PATCH", f"/tenants/{tenant}/workload", {"workload_issuer": issuer})
    assert resp.status_code == 200, resp.text
    creds = sesame.create_client(tenant, grant_types=[WORKLOAD])
    resp = sesame.admin(
        "POST",
        f"/tenants/{tenant}/sources",
        {"name": "sync", "client_id": creds.client_id, "audiences": [AUDIENCE], "scopes": ["sync"]},
    )
    assert resp.status_code == 201, resp.text
    resource_id = resp.json()["resource_id"]

    def workload_token() -> str:
        r = requests.post(
            f"{sesame.issuer(tenant)}/token",
            data={"grant_type": WORKLOAD},
            auth=(creds.client_id, creds.client_secret),
            timeout=HTTP_TIMEOUT,
        )
        assert r.status_code == 200, r.text
        return r.json()["access_token"]

    before = workload_token()
    export(sesame, tenant, tmp_path / "v1")
    claims = StaticVerifier(tmp_path / "v1", issuer).verify(before)
    assert claims["sub"] == resource_id
    assert claims["scp"] == "sync"
    assert claims["exp"] - claims["iat"] == 3600
    with pytest.raises(jwt.InvalidAudienceError):
        StaticVerifier(tmp_path / "v1", issuer).verify(before, audience="https://other.example")
    head, body, sig = before.split(".")
    forged = jwt.utils.base64url_encode(json.dumps({**claims, "sub": "ri.sesame.x.source.evil"}).encode()).decode()
    with pytest.raises(jwt.InvalidSignatureError):
        StaticVerifier(tmp_path / "v1", issuer).verify(f"{head}.{forged}.{sig}")

    resp = sesame.admin("POST", f"/tenants/{tenant}/keys/rotate", {"alg": alg, "force": True})
    assert resp.status_code == 200, resp.text
    after = workload_token()
    assert jwt.get_unverified_header(after)["kid"] != jwt.get_unverified_header(before)["kid"]
    export(sesame, tenant, tmp_path / "v2")
    fresh = StaticVerifier(tmp_path / "v2", issuer)
    assert fresh.verify(before)["jti"] == claims["jti"], "a token signed before the rotation"
    assert fresh.verify(after)["sub"] == resource_id


def test_export_check_warns_when_the_published_copy_is_stale(sesame, tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        tenant = f"w-{uuid.uuid4().hex[:10]}"
        sesame.create_tenant(tenant, signing_alg="EdDSA")
        issuer = f"http://127.0.0.1:{server.server_address[1]}"
        resp = sesame.admin("PATCH", f"/tenants/{tenant}/workload", {"workload_issuer": issuer})
        assert resp.status_code == 200, resp.text
        # Nothing published yet: the check says so.
        done = export(sesame, tenant, None, check=True)
        assert "could not be checked" in done.stderr, done.stderr
        done = export(sesame, tenant, site, check=True)
        assert "up to date" in done.stdout and "warning" not in done.stderr, (done.stdout, done.stderr)
        resp = sesame.admin("POST", f"/tenants/{tenant}/keys/rotate", {"alg": "EdDSA", "force": True})
        assert resp.status_code == 200, resp.text
        done = export(sesame, tenant, None, check=True)
        assert "jwks.json is stale" in done.stderr, done.stderr
        assert "openid-configuration is stale" not in done.stderr, done.stderr
    finally:
        server.shutdown()

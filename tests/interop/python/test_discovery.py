"""Discovery (RFC 8414, OpenID Connect Discovery 1.0) and the JWKS (RFC 7517), as consumed by
authlib, PyJWT and a plain HTTP client that revalidates its cache (RFC 9110 §13, RFC 9111)."""

from __future__ import annotations

import re

import pytest
import requests
from authlib.jose import JsonWebKey
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata
from authlib.oidc.discovery import OpenIDProviderMetadata

from conftest import ALGS, HTTP_TIMEOUT

DOCS = {
    # OpenID Connect Discovery 1.0 §4: the issuer with the well-known suffix appended.
    "openid-configuration": ("{issuer}/.well-known/openid-configuration", OpenIDProviderMetadata),
    # The RFC 8414 suffix appended to the issuer, which sesamed serves as well.
    "oauth-authorization-server-appended": (
        "{issuer}/.well-known/oauth-authorization-server",
        AuthorizationServerMetadata,
    ),
    # RFC 8414 §3.1: for an issuer with a path, the well-known segment is inserted before it.
    "oauth-authorization-server-inserted": (
        "{base}/.well-known/oauth-authorization-server/t/{tenant}",
        AuthorizationServerMetadata,
    ),
}


def doc_url(sesame, name: str, tenant: str = "default") -> str:
    template, _ = DOCS[name]
    return template.format(issuer=sesame.issuer(tenant), base=sesame.base_url, tenant=tenant)


@pytest.mark.parametrize("name", list(DOCS))
def test_discovery_document_names_the_issuer_exactly_and_its_endpoints(sesame, name):
    resp = requests.get(doc_url(sesame, name), timeout=HTTP_TIMEOUT)
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].split(";")[0].strip() == "application/json"
    doc = resp.json()
    # RFC 8414 §3.3 / OIDC Discovery §4.3: identical to the issuer the client started from.
    issuer = sesame.issuer("default")
    assert doc["issuer"] == issuer
    for member in ("token_endpoint", "jwks_uri", "introspection_endpoint", "revocation_endpoint"):
        assert doc[member].startswith(issuer + "/"), (member, doc[member])
    assert "client_credentials" in doc["grant_types_supported"]
    for member in (
        "token_endpoint_auth_methods_supported",
        "introspection_endpoint_auth_methods_supported",
        "revocation_endpoint_auth_methods_supported",
    ):
        assert {"client_secret_basic", "client_secret_post"} <= set(doc[member]), member


def test_discovery_of_each_tenant_names_that_tenant(sesame):
    tenant = sesame.create_tenant()["id"]
    for name in DOCS:
        doc = requests.get(doc_url(sesame, name, tenant), timeout=HTTP_TIMEOUT).json()
        assert doc["issuer"] == sesame.issuer(tenant), name
        assert doc["jwks_uri"].startswith(sesame.issuer(tenant) + "/"), name


@pytest.mark.parametrize("name", list(DOCS))
def test_authlib_metadata_validator_accepts_discovery_members(sesame, name):
    _, cls = DOCS[name]
    metadata = cls(requests.get(doc_url(sesame, name), timeout=HTTP_TIMEOUT).json())
    # authlib's metadata validators, member by member, then the whole document.
    for key in cls.REGISTRY_KEYS:
        getattr(metadata, f"validate_{key}")()
    metadata.validate()
    # The values authlib hands to its OAuth client.
    assert metadata.token_endpoint_auth_methods_supported
    assert metadata.introspection_endpoint_auth_methods_supported
    assert "code" in metadata.response_types_supported


@pytest.mark.parametrize("name", list(DOCS))
def test_discovery_advertises_browser_sign_in(sesame, name):
    doc = requests.get(doc_url(sesame, name), timeout=HTTP_TIMEOUT).json()
    issuer = sesame.issuer("default")
    assert doc["authorization_endpoint"] == f"{issuer}/authorize"
    assert sorted(doc["response_types_supported"]) == sorted(["code", "id_token", "token", "id_token token"])
    # RFC 7636 §4.3: only S256; plain is never offered.
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert {"authorization_code", "implicit", "refresh_token", "client_credentials"} <= set(doc["grant_types_supported"])
    # Public clients (PKCE, no secret) authenticate with `none`.
    assert "none" in doc["token_endpoint_auth_methods_supported"]
    # RFC 9207 §3: every authorization response carries `iss`.
    assert doc.get("authorization_response_iss_parameter_supported") is True
    if name == "openid-configuration":
        assert doc["userinfo_endpoint"] == f"{issuer}/userinfo"
        assert doc["end_session_endpoint"] == f"{issuer}/logout"
        assert set(doc["id_token_signing_alg_values_supported"]) == set(ALGS)
        assert {"openid", "profile", "email", "offline_access"} <= set(doc["scopes_supported"])


def test_jwks_publishes_one_signing_key_per_kid_for_every_algorithm(sesame):
    jwks_uri = requests.get(doc_url(sesame, "openid-configuration"), timeout=HTTP_TIMEOUT).json()["jwks_uri"]
    resp = requests.get(jwks_uri, timeout=HTTP_TIMEOUT)
    assert resp.status_code == 200
    # RFC 7517 §8.5 media type (plain JSON would do too).
    assert resp.headers["Content-Type"].split(";")[0].strip() in ("application/jwk-set+json", "application/json")
    jwks = resp.json()
    kids = [k["kid"] for k in jwks["keys"]]
    assert len(kids) == len(set(kids)), "kids must be unique"
    assert {k["alg"] for k in jwks["keys"]} == set(ALGS)
    for raw in jwks["keys"]:
        assert raw["use"] == "sig"
        assert not any(p in raw for p in ("d", "p", "q", "dp", "dq", "qi")), "private members in the JWKS"
        key = JsonWebKey.import_key(raw)
        # The kid is the RFC 7638 thumbprint; authlib computes the same one independently.
        assert key.thumbprint() == raw["kid"]
    # authlib reads the whole set.
    key_set = JsonWebKey.import_key_set(jwks)
    assert sorted(k.kid for k in key_set.keys) == sorted(kids)


CACHED = {
    "jwks": "{issuer}/jwks",
    "openid-configuration": "{issuer}/.well-known/openid-configuration",
    "oauth-authorization-server": "{issuer}/.well-known/oauth-authorization-server",
    "oauth-authorization-server-inserted": "{base}/.well-known/oauth-authorization-server/t/default",
}


def cached_url(sesame, name):
    return CACHED[name].format(issuer=sesame.issuer("default"), base=sesame.base_url)


@pytest.mark.parametrize("name", list(CACHED))
def test_cacheable_documents_have_etag_max_age_and_answer_304_to_if_none_match(sesame, name):
    url = cached_url(sesame, name)
    first = requests.get(url, timeout=HTTP_TIMEOUT)
    assert first.status_code == 200
    etag = first.headers.get("ETag")
    assert etag and re.fullmatch(r'(W/)?"[\x21\x23-\x7e]*"', etag), f"bad ETag {etag!r} (RFC 9110 §8.8.3)"
    max_age = re.search(r"(?:^|[,\s])max-age=(\d+)", first.headers.get("Cache-Control", ""))
    assert max_age and int(max_age.group(1)) > 0, first.headers.get("Cache-Control")

    again = requests.get(url, headers={"If-None-Match": etag}, timeout=HTTP_TIMEOUT)
    assert again.status_code == 304
    assert again.content == b""
    # RFC 9110 §15.4.5: the 304 carries the ETag and Cache-Control a 200 would have.
    assert again.headers.get("ETag") == etag
    assert again.headers.get("Cache-Control") == first.headers.get("Cache-Control")

    listed = requests.get(url, headers={"If-None-Match": f'"not-it", {etag}'}, timeout=HTTP_TIMEOUT)
    assert listed.status_code == 304

    stale = requests.get(url, headers={"If-None-Match": '"not-it"'}, timeout=HTTP_TIMEOUT)
    assert stale.status_code == 200
    assert stale.content == first.content


@pytest.mark.parametrize("name", list(CACHED))
def test_if_none_match_uses_weak_comparison(sesame, name):
    url = cached_url(sesame, name)
    etag = requests.get(url, timeout=HTTP_TIMEOUT).headers["ETag"]
    weak = etag if etag.startswith("W/") else f"W/{etag}"
    resp = requests.get(url, headers={"If-None-Match": weak}, timeout=HTTP_TIMEOUT)
    assert resp.status_code == 304

"""The client credentials grant (RFC 6749 §4.4), RFC 9068 JWT access tokens, introspection
(RFC 7662) and revocation (RFC 7009), driven by authlib's OAuth client and checked with PyJWT and
authlib.jose. Every endpoint URL comes from the discovery document."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session, OAuthError
from authlib.jose import JsonWebKey, JsonWebToken
from authlib.jose.errors import BadSignatureError

from conftest import ALGS, HTTP_TIMEOUT

AUTH_METHODS = ("client_secret_basic", "client_secret_post")
API = "https://api.example.com"
OTHER_API = "urn:example:other"
RFC9068_CLAIMS = ["iss", "sub", "aud", "exp", "iat", "jti", "client_id"]


def discover(sesame, tenant="default") -> dict:
    resp = requests.get(f"{sesame.issuer(tenant)}/.well-known/openid-configuration", timeout=HTTP_TIMEOUT)
    resp.raise_for_status()
    doc = resp.json()
    assert doc["issuer"] == sesame.issuer(tenant)
    return doc


@pytest.fixture(scope="module")
def metadata(sesame) -> dict:
    return discover(sesame)


def oauth_session(metadata, creds, method="client_secret_basic", secret=None, **kwargs) -> OAuth2Session:
    """An authlib client configured from discovery: it finds the token endpoint by itself."""
    assert method in metadata["token_endpoint_auth_methods_supported"]
    session = OAuth2Session(
        creds.client_id,
        secret if secret is not None else creds.client_secret,
        token_endpoint_auth_method=method,
        revocation_endpoint_auth_method=method,
        token_endpoint=metadata["token_endpoint"],
        default_timeout=HTTP_TIMEOUT,
        **kwargs,
    )
    responses = []
    session.register_compliance_hook("access_token_response", lambda r: responses.append(r) or r)
    session.token_responses = responses
    return session


def get_token(metadata, creds, method="client_secret_basic", **params) -> dict:
    with oauth_session(metadata, creds, method) as session:
        return session.fetch_token(grant_type="client_credentials", **params)


def b64json(segment: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def verify_with_pyjwt(metadata, access_token, audience=API) -> tuple[dict, dict]:
    header = jwt.get_unverified_header(access_token)
    signing_key = jwt.PyJWKClient(metadata["jwks_uri"], timeout=HTTP_TIMEOUT).get_signing_key_from_jwt(access_token)
    claims = jwt.decode(
        access_token,
        key=signing_key,
        algorithms=[header["alg"]],
        audience=audience,
        issuer=metadata["issuer"],
        options={"require": RFC9068_CLAIMS, "verify_iat": True},
    )
    return header, claims


# --- getting a token ---


@pytest.mark.parametrize("method", AUTH_METHODS)
def test_authlib_gets_a_client_credentials_token(metadata, clients, method):
    creds = clients["RS256"]
    with oauth_session(metadata, creds, method) as session:
        before = int(time.time())
        token = session.fetch_token(grant_type="client_credentials")
        resp = session.token_responses[-1]
    assert resp.status_code == 200
    # RFC 6749 §5.1: token responses must not be cached.
    assert "no-store" in resp.headers.get("Cache-Control", "")
    assert resp.headers.get("Pragma") == "no-cache"
    if method == "client_secret_basic":
        assert resp.request.headers["Authorization"].startswith("Basic ")
        assert "client_secret" not in resp.request.body
    else:
        assert "Authorization" not in resp.request.headers
        assert "client_secret=" in resp.request.body
    assert token["token_type"].lower() == "bearer"
    assert token["expires_in"] > 0
    assert before + token["expires_in"] <= token["expires_at"] <= int(time.time()) + token["expires_in"] + 1
    assert "refresh_token" not in token  # RFC 6749 §4.4.3: SHOULD NOT be included
    assert token["access_token"].count(".") == 2


@pytest.mark.parametrize("alg", ALGS)
def test_pyjwt_verifies_the_access_token_with_the_jwks(metadata, clients, alg):
    creds = clients[alg]
    token = get_token(metadata, creds, scope="read", resource=API)
    header, claims = verify_with_pyjwt(metadata, token["access_token"])
    # RFC 9068 §2.1
    assert header["typ"] == "at+jwt"
    assert header["alg"] == alg
    jwks = requests.get(metadata["jwks_uri"], timeout=HTTP_TIMEOUT).json()
    published = {k["kid"]: k for k in jwks["keys"]}
    assert header["kid"] in published
    assert published[header["kid"]]["alg"] == alg
    # RFC 9068 §2.2
    assert claims["iss"] == metadata["issuer"]
    assert claims["sub"] == creds.client_id
    assert claims["client_id"] == creds.client_id
    assert claims["aud"] == API
    assert claims["scope"] == "read"
    assert claims["exp"] == claims["iat"] + token["expires_in"]
    assert claims["nbf"] <= claims["iat"] <= time.time() + 1
    assert isinstance(claims["jti"], str) and claims["jti"]


@pytest.mark.parametrize("alg", ALGS)
def test_authlib_jose_verifies_the_access_token_with_the_jwks(metadata, clients, alg):
    token = get_token(metadata, clients[alg], scope="read", resource=API)["access_token"]
    key_set = JsonWebKey.import_key_set(requests.get(metadata["jwks_uri"], timeout=HTTP_TIMEOUT).json())
    claims = JsonWebToken([alg]).decode(
        token,
        key_set,
        claims_options={
            "iss": {"essential": True, "value": metadata["issuer"]},
            "aud": {"essential": True, "value": API},
            "sub": {"essential": True, "value": clients[alg].client_id},
            "exp": {"essential": True},
            "iat": {"essential": True},
            "jti": {"essential": True},
        },
    )
    claims.validate()
    assert claims.header["typ"] == "at+jwt"
    assert claims.header["alg"] == alg
    assert claims["client_id"] == clients[alg].client_id


@pytest.mark.parametrize("alg", ALGS)
def test_a_tampered_token_fails_verification_in_both_libraries(metadata, clients, alg):
    token = get_token(metadata, clients[alg])["access_token"]
    header, payload, signature = token.split(".")
    claims = b64json(payload)
    claims["scope"] = "admin"
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    forged = f"{header}.{forged_payload}.{signature}"
    key = jwt.PyJWKClient(metadata["jwks_uri"], timeout=HTTP_TIMEOUT).get_signing_key_from_jwt(forged)
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(forged, key=key, algorithms=[alg], audience=claims["aud"], issuer=metadata["issuer"])
    key_set = JsonWebKey.import_key_set(requests.get(metadata["jwks_uri"], timeout=HTTP_TIMEOUT).json())
    with pytest.raises(BadSignatureError):
        JsonWebToken([alg]).decode(forged, key_set)


# --- scope and audience (RFC 6749 §3.3, RFC 8707) ---


@pytest.mark.parametrize("method", AUTH_METHODS)
def test_an_allowed_scope_and_resource_are_granted_exactly(metadata, clients, method):
    token = get_token(metadata, clients["ES256"], method, scope="write", resource=OTHER_API)
    assert token["scope"] == "write"
    _, claims = verify_with_pyjwt(metadata, token["access_token"], audience=OTHER_API)
    assert claims["scope"] == "write"
    assert claims["aud"] == OTHER_API


def test_several_resources_give_a_token_for_each_audience(metadata, clients):
    # authlib sends form parameters from a dict, so a repeated `resource` goes through requests.
    creds = clients["EdDSA"]
    resp = requests.post(
        metadata["token_endpoint"],
        data=[("grant_type", "client_credentials"), ("scope", "read write"), ("resource", API), ("resource", OTHER_API)],
        auth=(creds.client_id, creds.client_secret),
        timeout=HTTP_TIMEOUT,
    )
    assert resp.status_code == 200, resp.text
    token = resp.json()
    assert token["scope"].split() == ["read", "write"]
    for audience in (API, OTHER_API):
        _, claims = verify_with_pyjwt(metadata, token["access_token"], audience=audience)
    assert sorted(claims["aud"]) == sorted([API, OTHER_API])


@pytest.mark.parametrize("method", AUTH_METHODS)
def test_a_disallowed_scope_is_invalid_scope(metadata, clients, method):
    with pytest.raises(OAuthError) as err:
        get_token(metadata, clients["RS256"], method, scope="read admin")
    assert err.value.error == "invalid_scope"


def test_a_disallowed_resource_is_invalid_target(metadata, clients):
    with pytest.raises(OAuthError) as err:
        get_token(metadata, clients["RS256"], resource="https://evil.example")
    assert err.value.error == "invalid_target"


@pytest.mark.parametrize("method", AUTH_METHODS)
def test_a_wrong_secret_is_invalid_client(metadata, clients, method):
    with oauth_session(metadata, clients["RS256"], method, secret="not-the-secret") as session:
        with pytest.raises(OAuthError) as err:
            session.fetch_token(grant_type="client_credentials")
        resp = session.token_responses[-1]
    assert err.value.error == "invalid_client"
    assert resp.status_code == 401
    if method == "client_secret_basic":
        # RFC 6749 §5.2: 401 with WWW-Authenticate when the client used the Authorization header.
        assert resp.headers.get("WWW-Authenticate", "").lower().startswith("basic")


def test_an_unknown_client_is_invalid_client(metadata, clients):
    stranger = type(clients["RS256"])(tenant="default", client_id="no-such-client", client_secret="x", client={})
    with pytest.raises(OAuthError) as err:
        get_token(metadata, stranger)
    assert err.value.error == "invalid_client"


# --- introspection and revocation ---


@pytest.mark.parametrize("method", AUTH_METHODS)
def test_introspection_reports_an_active_token_with_its_claims(metadata, clients, method):
    creds = clients["ES256"]
    with oauth_session(metadata, creds, method) as session:
        token = session.fetch_token(grant_type="client_credentials", scope="read", resource=API)
        resp = session.introspect_token(metadata["introspection_endpoint"], token=token["access_token"])
    assert resp.status_code == 200, resp.text
    assert "no-store" in resp.headers.get("Cache-Control", "")
    info = resp.json()
    _, claims = verify_with_pyjwt(metadata, token["access_token"])
    assert info["active"] is True
    for name in ("iss", "sub", "aud", "client_id", "scope", "iat", "exp", "jti"):
        assert info[name] == claims[name], name
    assert info["client_id"] == creds.client_id
    assert info["scope"] == "read"
    assert info["token_type"].lower() == "bearer"


@pytest.mark.parametrize("method", AUTH_METHODS)
def test_a_revoked_token_is_inactive(metadata, clients, method):
    with oauth_session(metadata, clients["EdDSA"], method) as session:
        access_token = session.fetch_token(grant_type="client_credentials")["access_token"]
        assert session.introspect_token(metadata["introspection_endpoint"], token=access_token).json()["active"]
        revoked = session.revoke_token(metadata["revocation_endpoint"], token=access_token, token_type_hint="access_token")
        assert revoked.status_code == 200, revoked.text
        after = session.introspect_token(metadata["introspection_endpoint"], token=access_token)
        # Revoking again is not an error (RFC 7009 §2.2).
        assert session.revoke_token(metadata["revocation_endpoint"], token=access_token).status_code == 200
    assert after.status_code == 200
    assert after.json() == {"active": False}


def test_revoking_an_unknown_token_is_not_an_error(metadata, clients):
    with oauth_session(metadata, clients["RS256"]) as session:
        resp = session.revoke_token(metadata["revocation_endpoint"], token="not-a-token")
    assert resp.status_code == 200  # RFC 7009 §2.2


def test_introspecting_garbage_says_inactive(metadata, clients):
    with oauth_session(metadata, clients["RS256"]) as session:
        resp = session.introspect_token(metadata["introspection_endpoint"], token="a.b.c")
    assert resp.status_code == 200
    assert resp.json() == {"active": False}


@pytest.mark.parametrize("endpoint", ["introspection_endpoint", "revocation_endpoint"])
def test_introspection_and_revocation_require_client_authentication(metadata, clients, endpoint):
    access_token = get_token(metadata, clients["RS256"])["access_token"]
    anonymous = requests.post(metadata[endpoint], data={"token": access_token}, timeout=HTTP_TIMEOUT)
    assert anonymous.status_code == 401
    assert anonymous.json()["error"] == "invalid_client"
    with oauth_session(metadata, clients["RS256"], secret="wrong") as session:
        call = session.introspect_token if endpoint == "introspection_endpoint" else session.revoke_token
        wrong = call(metadata[endpoint], token=access_token)
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "invalid_client"
    with oauth_session(metadata, clients["RS256"]) as session:
        info = session.introspect_token(metadata["introspection_endpoint"], token=access_token).json()
    assert info["active"] is True, "a refused revocation must not revoke"


def test_a_client_cannot_revoke_another_clients_token(metadata, clients):
    victim = get_token(metadata, clients["RS256"])["access_token"]
    with oauth_session(metadata, clients["ES256"]) as session:
        resp = session.revoke_token(metadata["revocation_endpoint"], token=victim)
        # RFC 7009 §2.1: the server checks the token was issued to the requesting client; the
        # answer is that of an unknown token (§2.2), so that nothing is learnt about it.
        assert resp.status_code == 200, resp.text
        assert resp.text == ""
        # RFC 7662 §4: nor may it introspect a token issued to another client.
        assert session.introspect_token(metadata["introspection_endpoint"], token=victim).json() == {"active": False}
    with oauth_session(metadata, clients["RS256"]) as session:
        assert session.introspect_token(metadata["introspection_endpoint"], token=victim).json()["active"] is True


# --- tenants are separate issuers ---


def test_a_token_of_one_tenant_is_inactive_at_another(sesame, metadata, clients):
    other_tenant = sesame.create_tenant(signing_alg="ES256")
    assert other_tenant["issuer"] == sesame.issuer(other_tenant["id"])
    other_metadata = discover(sesame, other_tenant["id"])
    other_creds = sesame.create_client(other_tenant["id"], allowed_scopes=["read"])

    ours = get_token(metadata, clients["ES256"])["access_token"]
    theirs = get_token(other_metadata, other_creds)["access_token"]
    _, their_claims = verify_with_pyjwt(other_metadata, theirs, audience=other_creds.client_id)
    assert their_claims["iss"] == sesame.issuer(other_tenant["id"])

    with oauth_session(other_metadata, other_creds) as session:
        at_other = session.introspect_token(other_metadata["introspection_endpoint"], token=ours)
        assert session.introspect_token(other_metadata["introspection_endpoint"], token=theirs).json()["active"]
        # Revoking a foreign token at the other tenant is a no-op, not a revocation.
        assert session.revoke_token(other_metadata["revocation_endpoint"], token=ours).status_code == 200
    assert at_other.status_code == 200
    assert at_other.json() == {"active": False}

    with oauth_session(metadata, clients["ES256"]) as session:
        assert session.introspect_token(metadata["introspection_endpoint"], token=ours).json()["active"] is True
        assert session.introspect_token(metadata["introspection_endpoint"], token=theirs).json() == {"active": False}

    # A relying party of the other tenant cannot even find the key that signed ours.
    with pytest.raises(jwt.PyJWKClientError):
        jwt.PyJWKClient(other_metadata["jwks_uri"], timeout=HTTP_TIMEOUT).get_signing_key_from_jwt(ours)

"""private_key_jwt client authentication (RFC 7523 §2.2, OpenID Connect Core §9) with authlib's
`PrivateKeyJWT` against a running sesamed: a client registers its public key (a JWKS), gets
tokens, introspects and revokes with signed assertions instead of a secret, and each assertion
works once.

Sesame refuses assertions valid for more than 10 minutes; authlib signs them for an hour unless
told otherwise, so each `PrivateKeyJWT` here is given a short `exp` (and a fresh one per request:
authlib keeps the claims it generated, `jti` included, in the object)."""

from __future__ import annotations

import time
import uuid

import jwt
import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session, OAuthError
from authlib.oauth2.rfc7523 import PrivateKeyJWT, private_key_jwt_sign
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc.jwk import RSAKey

from conftest import HTTP_TIMEOUT

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
KID = "py-1"


def discover(sesame, tenant="default") -> dict:
    resp = requests.get(f"{sesame.issuer(tenant)}/.well-known/openid-configuration", timeout=HTTP_TIMEOUT)
    resp.raise_for_status()
    return resp.json()


@pytest.fixture(scope="module")
def key_pair():
    """An RSA key: the private key in PEM (what authlib signs with) and the public JWK."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = RSAKey.import_key(
        private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    ).as_dict(private=False)
    public.update({"kid": KID, "use": "sig", "alg": "RS256"})
    return pem, public


@pytest.fixture(scope="module")
def keyed_client(sesame, key_pair):
    _, public = key_pair
    creds = sesame.create_client(
        "default",
        token_endpoint_auth_method="private_key_jwt",
        jwks={"keys": [public]},
        allowed_scopes=["read", "write"],
    )
    assert creds.client_secret is None, "a private_key_jwt client gets no secret"
    return creds


def session_for(metadata, creds, pem) -> OAuth2Session:
    session = OAuth2Session(
        creds.client_id,
        pem,
        token_endpoint_auth_method="private_key_jwt",
        revocation_endpoint_auth_method="private_key_jwt",
        token_endpoint=metadata["token_endpoint"],
        default_timeout=HTTP_TIMEOUT,
    )
    fresh_auth(session, metadata)
    return session


def fresh_auth(session, metadata, lifetime=60):
    """A new PrivateKeyJWT (new exp and jti) for the next request."""
    session.register_client_auth_method(
        PrivateKeyJWT(
            metadata["token_endpoint"],
            claims={"exp": int(time.time()) + lifetime},
            headers={"kid": KID},
        )
    )


def test_discovery_offers_private_key_jwt_and_not_client_secret_jwt(sesame):
    metadata = discover(sesame)
    for endpoint in ("token_endpoint", "introspection_endpoint", "revocation_endpoint"):
        methods = metadata[f"{endpoint}_auth_methods_supported"]
        assert "private_key_jwt" in methods, endpoint
        assert "client_secret_jwt" not in methods, endpoint
        assert set(metadata[f"{endpoint}_auth_signing_alg_values_supported"]) == {"RS256", "ES256", "EdDSA"}


def test_authlib_private_key_jwt_gets_introspects_and_revokes_tokens(sesame, keyed_client, key_pair):
    pem, _ = key_pair
    metadata = discover(sesame)
    session = session_for(metadata, keyed_client, pem)
    token = session.fetch_token(grant_type="client_credentials", scope="read")
    assert token["token_type"].lower() == "bearer"
    assert token["scope"] == "read"

    fresh_auth(session, metadata)
    resp = session.introspect_token(metadata["introspection_endpoint"], token=token["access_token"])
    assert resp.status_code == 200, resp.text
    assert resp.json()["active"] is True
    assert resp.json()["client_id"] == keyed_client.client_id

    fresh_auth(session, metadata)
    resp = session.revoke_token(metadata["revocation_endpoint"], token=token["access_token"])
    assert resp.status_code == 200, resp.text

    fresh_auth(session, metadata)
    resp = session.introspect_token(metadata["introspection_endpoint"], token=token["access_token"])
    assert resp.json() == {"active": False}


def post_assertion(metadata, assertion: bytes | str) -> requests.Response:
    return requests.post(
        metadata["token_endpoint"],
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion if isinstance(assertion, str) else assertion.decode(),
        },
        timeout=HTTP_TIMEOUT,
    )


def test_an_assertion_authenticates_once(sesame, keyed_client, key_pair):
    pem, _ = key_pair
    metadata = discover(sesame)
    assertion = private_key_jwt_sign(
        RSAKey.import_key(pem),
        client_id=keyed_client.client_id,
        token_endpoint=metadata["token_endpoint"],
        claims={"exp": int(time.time()) + 60},
        header={"kid": KID},
    )
    first = post_assertion(metadata, assertion)
    assert first.status_code == 200, first.text
    replay = post_assertion(metadata, assertion)
    assert replay.status_code == 401, replay.text
    assert replay.json()["error"] == "invalid_client"


def test_long_lived_wrong_audience_and_foreign_key_assertions_are_refused(sesame, keyed_client, key_pair):
    pem, _ = key_pair
    metadata = discover(sesame)
    key = RSAKey.import_key(pem)
    now = int(time.time())
    cases = {
        # authlib's default: an hour.
        "an hour long": private_key_jwt_sign(
            key, keyed_client.client_id, metadata["token_endpoint"], header={"kid": KID}
        ),
        "another audience": private_key_jwt_sign(
            key, keyed_client.client_id, "https://elsewhere.example/token",
            claims={"exp": now + 60}, header={"kid": KID},
        ),
        "another key": private_key_jwt_sign(
            RSAKey.generate_key(2048), keyed_client.client_id, metadata["token_endpoint"],
            claims={"exp": now + 60}, header={"kid": KID},
        ),
    }
    for case, assertion in cases.items():
        resp = post_assertion(metadata, assertion)
        assert resp.status_code == 401, f"{case}: {resp.text}"
        assert resp.json()["error"] == "invalid_client", case

    # A secret-based method does not work for a keyed client.
    session = OAuth2Session(
        keyed_client.client_id,
        "not-a-secret",
        token_endpoint_auth_method="client_secret_basic",
        default_timeout=HTTP_TIMEOUT,
    )
    with pytest.raises(OAuthError) as err:
        session.fetch_token(metadata["token_endpoint"], grant_type="client_credentials")
    assert err.value.error == "invalid_client"


# A workload with no secret and no key of its own: its client names a trust policy, and it
# authenticates with a token its platform issued (here: a Kubernetes-like service-account token
# signed with PyJWT by a key whose JWKS the policy holds inline).

K8S_ISSUER = "https://kubernetes.default.svc.cluster.local"


@pytest.fixture(scope="module")
def cluster_key():
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = RSAKey.import_key(
        private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    ).as_dict(private=False)
    public.update({"kid": "cluster-1", "use": "sig", "alg": "RS256"})
    return private, public


@pytest.fixture(scope="module")
def workload_client(sesame, cluster_key):
    _, public = cluster_key
    name = f"k8s-{uuid.uuid4().hex[:8]}"
    resp = sesame.admin(
        "POST",
        "/tenants/default/trust-policies",
        {
            "name": name,
            "issuer": K8S_ISSUER,
            "jwks": {"keys": [public]},
            "audience": sesame.issuer(),
            "subject": "system:serviceaccount:deploy:*",
            "claims": {"kubernetes.io.namespace": "deploy"},
            "max_age": 900,
            "identity": "k8s-deploy",
        },
    )
    assert resp.status_code == 201, resp.text
    creds = sesame.create_client("default", trust_policy=name, allowed_scopes=["read"])
    assert creds.client_secret is None, "a client with a trust policy gets no secret"
    return creds


def k8s_token(cluster_key, **changes) -> str:
    private, _ = cluster_key
    now = int(time.time())
    claims = {
        "iss": K8S_ISSUER,
        "sub": "system:serviceaccount:deploy:ci-runner",
        "aud": [changes.pop("aud")],
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "jti": uuid.uuid4().hex,
        "kubernetes.io": {"namespace": "deploy", "serviceaccount": {"name": "ci-runner"}},
    }
    claims.update(changes)
    return jwt.encode(claims, private, algorithm="RS256", headers={"kid": "cluster-1"})


def test_authlib_client_authenticates_with_an_outside_token(sesame, workload_client, cluster_key):
    metadata = discover(sesame)
    # authlib's `none` method puts client_id in the body; the assertion rides along (RFC 7521 §4.2).
    session = OAuth2Session(
        workload_client.client_id, token_endpoint_auth_method="none", default_timeout=HTTP_TIMEOUT
    )
    assertion = k8s_token(cluster_key, aud=sesame.issuer())
    token = session.fetch_token(
        metadata["token_endpoint"],
        grant_type="client_credentials",
        scope="read",
        client_assertion_type=ASSERTION_TYPE,
        client_assertion=assertion,
    )
    assert token["scope"] == "read"
    claims = jwt.decode(token["access_token"], options={"verify_signature": False})
    assert claims["client_id"] == workload_client.client_id

    # The same token twice: its jti is used once.
    with pytest.raises(OAuthError) as err:
        session.fetch_token(
            metadata["token_endpoint"],
            grant_type="client_credentials",
            client_assertion_type=ASSERTION_TYPE,
            client_assertion=assertion,
        )
    assert err.value.error == "invalid_client"
    # Another namespace, or a token for someone else: refused alike.
    for bad in (
        k8s_token(cluster_key, aud=sesame.issuer(), **{"kubernetes.io": {"namespace": "prod"}}),
        k8s_token(cluster_key, aud="https://kubernetes.default.svc"),
    ):
        resp = requests.post(
            metadata["token_endpoint"],
            data={
                "grant_type": "client_credentials",
                "client_id": workload_client.client_id,
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": bad,
            },
            timeout=HTTP_TIMEOUT,
        )
        assert resp.status_code == 401, resp.text
        assert resp.json()["error"] == "invalid_client"

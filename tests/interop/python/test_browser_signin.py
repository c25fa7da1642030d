"""Browser sign-in: the authorization code flow with PKCE (OpenID Connect Core §3.1, RFC 7636),
refresh token rotation (RFC 6749 §6, RFC 9700 §4.14.2), userinfo (OpenID Connect Core §5.3), the
implicit flow as an opt-in (§3.2) and RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0).

authlib's `OAuth2Session` is the relying party; a plain `requests.Session` is the person's
browser, which fills in sesamed's HTML sign-in and consent forms and is never sent on to the
relying party (redirects are not followed). ID tokens are checked by `authlib.oidc.core` and by
PyJWT against the JWKS. Every endpoint URL comes from the discovery document."""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urlencode, urlsplit

import jwt
import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session, OAuthError
from authlib.jose import JsonWebKey, JsonWebToken
from authlib.oauth2.rfc6749 import MismatchingStateException
from authlib.oidc.core import CodeIDToken, ImplicitIDToken
from joserfc.errors import InvalidClaimError

from conftest import ALGS, HTTP_TIMEOUT, ClientCreds

REDIRECT_URI = "https://rp.example/callback"
POST_LOGOUT_URI = "https://rp.example/signed-out"
SCOPE = "openid profile email"
RFC9068_CLAIMS = ["iss", "sub", "aud", "exp", "iat", "jti", "client_id"]
# --- discovery and keys ---


@pytest.fixture(scope="module")
def metadata(sesame) -> dict:
    resp = requests.get(f"{sesame.issuer()}/.well-known/openid-configuration", timeout=HTTP_TIMEOUT)
    resp.raise_for_status()
    doc = resp.json()
    assert doc["issuer"] == sesame.issuer()
    return doc


def jwks(metadata) -> dict:
    resp = requests.get(metadata["jwks_uri"], timeout=HTTP_TIMEOUT)
    resp.raise_for_status()
    return resp.json()


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# --- the person, their browser, and the sign-in pages ---


@dataclass
class Person:
    user: dict
    password: str

    @property
    def username(self) -> str:
        return self.user["username"]


def new_person(sesame, **fields) -> Person:
    username = f"p-{uuid.uuid4().hex[:12]}"
    password = generate_token(24)
    user = sesame.create_user(
        username=username,
        password=password,
        email=f"{username}@example.com",
        email_verified=True,
        name="Ada Lovelace",
        **fields,
    )
    assert user["username"] == username and user["has_password"] is True
    return Person(user, password)


@dataclass
class Form:
    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)
    buttons: list[tuple[str, str]] = field(default_factory=list)


class FormParser(HTMLParser):
    """The forms of a page: action, method, named inputs and named buttons."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []

    def handle_starttag(self, tag, attrs):
        a = {k: (v or "") for k, v in attrs}
        if tag == "form":
            self.forms.append(Form(a.get("action", ""), a.get("method", "get").lower()))
        elif self.forms and tag == "input" and a.get("name"):
            self.forms[-1].fields[a["name"]] = a.get("value", "")
        elif self.forms and tag == "button" and a.get("name"):
            self.forms[-1].buttons.append((a["name"], a.get("value", "")))


def only_form(resp: requests.Response) -> Form:
    assert resp.headers["Content-Type"].startswith("text/html"), resp.headers["Content-Type"]
    parser = FormParser()
    parser.feed(resp.text)
    assert len(parser.forms) == 1, f"expected one form on {resp.url}:\n{resp.text}"
    return parser.forms[0]


class Browser:
    """The person's browser: it keeps sesamed's cookies, and stops at every redirect, so that a
    redirect to the relying party is handed to the test instead of being followed."""

    def __init__(self):
        self.http = requests.Session()

    def get(self, url: str) -> requests.Response:
        return self.http.get(url, allow_redirects=False, timeout=HTTP_TIMEOUT)

    def submit(self, form: Form, **values) -> requests.Response:
        assert form.method == "post"
        return self.http.post(form.action, data={**form.fields, **values}, allow_redirects=False, timeout=HTTP_TIMEOUT)

    def sign_in(self, url: str, issuer: str, person: Person, consent: bool = True) -> str:
        """Opens the authorization URL, signs in, allows access if asked (and it must be asked
        exactly when `consent` is true), and returns the redirect to the relying party."""
        login = self.get(url)
        assert login.status_code == 200, f"{login.status_code} {login.headers.get('Location')} {login.text}"
        form = only_form(login)
        assert form.action == f"{issuer}/login"
        assert {"csrf", "request", "username", "password"} <= set(form.fields)
        # The CSRF field repeats the cookie the page set (double submit), scoped to the tenant.
        csrf_cookies = [c for c in self.http.cookies if c.name == "sesame_csrf"]
        assert [(c.value, c.path) for c in csrf_cookies] == [(form.fields["csrf"], urlsplit(issuer).path)]
        resp = self.submit(form, username=person.username, password=person.password)
        assert resp.status_code in (200, 303), f"{resp.status_code} {resp.text}"
        session_cookies = [c for c in self.http.cookies if c.name == "sesame_session"]
        assert len(session_cookies) == 1 and session_cookies[0].path == urlsplit(issuer).path
        if consent:
            assert resp.status_code == 200, f"no consent page: {resp.status_code} {resp.headers.get('Location')}"
            form = only_form(resp)
            assert form.action == f"{issuer}/consent"
            assert {"csrf", "request"} <= set(form.fields)
            assert ("decision", "allow") in form.buttons
            resp = self.submit(form, decision="allow")
        return redirect_of(resp)


def redirect_of(resp: requests.Response) -> str:
    assert resp.status_code == 303, f"{resp.status_code} {resp.text}"
    assert "no-store" in resp.headers.get("Cache-Control", "")
    return resp.headers["Location"]


def params_of(location: str, part: str = "query") -> dict[str, str]:
    """The response parameters in the query or the fragment of a redirect; none repeated."""
    pairs = parse_qsl(getattr(urlsplit(location), part), keep_blank_values=True)
    names = [k for k, _ in pairs]
    assert len(names) == len(set(names)), f"repeated parameters in {location}"
    return dict(pairs)


def at(location: str, uri: str) -> bool:
    """Whether a redirect goes to `uri` (with its query and fragment left out)."""
    s = urlsplit(location)
    return f"{s.scheme}://{s.netloc}{s.path}" == uri


# --- the relying party ---


def sign_in_client(sesame, *, public: bool = False, **spec) -> ClientCreds:
    spec.setdefault("name", f"rp {uuid.uuid4().hex[:6]}")
    spec.setdefault("redirect_uris", [REDIRECT_URI])
    spec.setdefault("post_logout_redirect_uris", [POST_LOGOUT_URI])
    if public:
        spec["client_type"] = "public"
    creds = sesame.create_client("default", **spec)
    assert (creds.client_secret is None) == public
    return creds


def relying_party(metadata, creds: ClientCreds, scope: str = SCOPE, **kwargs) -> OAuth2Session:
    method = "none" if creds.client_secret is None else "client_secret_basic"
    assert method in metadata["token_endpoint_auth_methods_supported"]
    rp = OAuth2Session(
        creds.client_id,
        creds.client_secret,
        scope=scope,
        redirect_uri=REDIRECT_URI,
        code_challenge_method="S256",
        token_endpoint_auth_method=method,
        revocation_endpoint_auth_method=method,
        token_endpoint=metadata["token_endpoint"],
        default_timeout=HTTP_TIMEOUT,
        **kwargs,
    )
    responses = []
    for hook in ("access_token_response", "refresh_token_response"):
        rp.register_compliance_hook(hook, lambda r: responses.append(r) or r)
    rp.token_responses = responses
    return rp


@dataclass
class SignIn:
    rp: OAuth2Session
    browser: Browser
    location: str
    params: dict
    state: str
    nonce: str
    code_verifier: str
    token: dict


def code_flow(
    metadata,
    creds: ClientCreds,
    person: Person,
    scope: str = SCOPE,
    consent: bool = True,
    browser: Browser | None = None,
) -> SignIn:
    """The whole authorization code flow: authlib builds the request, the browser signs in,
    authlib checks the state and redeems the code with the PKCE verifier."""
    rp = relying_party(metadata, creds, scope)
    code_verifier = generate_token(64)
    nonce = generate_token(24)
    url, state = rp.create_authorization_url(
        metadata["authorization_endpoint"], code_verifier=code_verifier, nonce=nonce
    )
    query = params_of(url)
    assert query["code_challenge_method"] == "S256"
    assert query["code_challenge"] == b64url(hashlib.sha256(code_verifier.encode()).digest())
    browser = browser or Browser()
    location = browser.sign_in(url, metadata["issuer"], person, consent=consent)
    assert at(location, REDIRECT_URI), location
    params = params_of(location)
    assert set(params) == {"code", "state", "iss"}, params
    assert params["state"] == state
    # RFC 9207 §2.4: the client compares `iss` with the issuer it sent the request to.
    assert params["iss"] == metadata["issuer"]
    token = rp.fetch_token(
        metadata["token_endpoint"], authorization_response=location, state=state, code_verifier=code_verifier
    )
    return SignIn(rp, browser, location, params, state, nonce, code_verifier, token)


def code_flow_without_pages(metadata, creds, browser: Browser, scope: str) -> SignIn:
    """The code flow in a browser that is signed in and has consented: no page is shown."""
    rp = relying_party(metadata, creds, scope)
    verifier = generate_token(64)
    url, state = rp.create_authorization_url(metadata["authorization_endpoint"], code_verifier=verifier, nonce="n")
    location = redirect_of(browser.get(url))
    assert at(location, REDIRECT_URI)
    params = params_of(location)
    assert params["state"] == state and params["iss"] == metadata["issuer"]
    token = rp.fetch_token(
        metadata["token_endpoint"], authorization_response=location, state=state, code_verifier=verifier
    )
    return SignIn(rp, browser, location, params, state, "n", verifier, token)


def expected_alg(creds: ClientCreds) -> str:
    return creds.client["signing_alg"] or "RS256"  # the default tenant signs with RS256


def authlib_id_token(metadata, creds: ClientCreds, id_token: str, claims_cls=CodeIDToken, **params):
    """authlib's OpenID Connect ID token checks: signature (JWKS), iss, aud, exp/iat, azp,
    and, given in `params`, nonce and at_hash."""
    claims = JsonWebToken(metadata["id_token_signing_alg_values_supported"]).decode(
        id_token,
        JsonWebKey.import_key_set(jwks(metadata)),
        claims_cls=claims_cls,
        claims_options={
            "iss": {"essential": True, "value": metadata["issuer"]},
            "aud": {"essential": True, "value": creds.client_id},
            "sub": {"essential": True},
        },
        claims_params={"client_id": creds.client_id, **params},
    )
    claims.validate()
    assert claims.header["alg"] == expected_alg(creds)
    return claims


def userinfo(rp: OAuth2Session, metadata) -> requests.Response:
    return rp.get(metadata["userinfo_endpoint"], timeout=HTTP_TIMEOUT)


def introspect(metadata, creds: ClientCreds, token: str) -> dict:
    resp = requests.post(
        metadata["introspection_endpoint"],
        data={"token": token},
        auth=(creds.client_id, creds.client_secret),
        timeout=HTTP_TIMEOUT,
    )
    assert resp.status_code == 200, resp.text
    return resp.json()


def bearer_challenge(resp: requests.Response) -> dict[str, str]:
    """The auth-params of an RFC 6750 §3 `WWW-Authenticate: Bearer ...` challenge."""
    header = resp.headers.get("WWW-Authenticate", "")
    scheme, _, rest = header.partition(" ")
    assert scheme.lower() == "bearer", header
    params = {}
    for part in rest.split(","):
        name, _, value = part.strip().partition("=")
        params[name.strip()] = value.strip().strip('"')
    return params


# --- 1. authorization code + PKCE ---


@pytest.mark.parametrize("client_type", ["confidential", "public"])
def test_authlib_code_flow_with_pkce_and_a_valid_id_token(sesame, metadata, client_type):
    public = client_type == "public"
    creds = sign_in_client(sesame, public=public)
    person = new_person(sesame)
    s = code_flow(metadata, creds, person)

    # The token request authlib sent: client authentication, code, redirect URI and verifier.
    resp = s.rp.token_responses[-1]
    sent = dict(parse_qsl(resp.request.body))
    assert sent["grant_type"] == "authorization_code"
    assert sent["code"] == s.params["code"]
    assert sent["redirect_uri"] == REDIRECT_URI
    assert sent["code_verifier"] == s.code_verifier
    assert "client_secret" not in sent
    if public:
        assert "Authorization" not in resp.request.headers
        assert sent["client_id"] == creds.client_id
    else:
        assert resp.request.headers["Authorization"].startswith("Basic ")
    assert resp.status_code == 200
    assert "no-store" in resp.headers.get("Cache-Control", "")

    token = s.token
    assert token["token_type"].lower() == "bearer"
    assert token["expires_in"] > 0
    assert token["scope"] == SCOPE
    # OpenID Connect Core §11: no refresh token without offline_access (the client's default).
    assert "refresh_token" not in token

    claims = authlib_id_token(metadata, creds, token["id_token"], nonce=s.nonce, access_token=token["access_token"])
    assert claims["sub"] == person.user["id"]
    assert claims["aud"] == creds.client_id
    assert claims["azp"] == creds.client_id
    assert claims["nonce"] == s.nonce
    assert "at_hash" in claims
    assert claims["amr"] == ["pwd"]
    assert claims["iat"] - 60 <= claims["auth_time"] <= claims["iat"] <= time.time() + 1
    assert claims["exp"] > claims["iat"]
    # The code flow's ID token carries the claims of the granted scopes (§5.4).
    assert claims["preferred_username"] == person.username
    assert claims["email"] == person.user["email"]
    assert claims["email_verified"] is True
    assert claims["name"] == "Ada Lovelace"

    # The same checks catch a wrong nonce and an access token the ID token was not issued with.
    with pytest.raises(InvalidClaimError, match="nonce"):
        authlib_id_token(metadata, creds, token["id_token"], nonce="another-nonce", access_token=token["access_token"])
    with pytest.raises(InvalidClaimError, match="at_hash"):
        authlib_id_token(metadata, creds, token["id_token"], nonce=s.nonce, access_token=token["access_token"] + "x")
    stranger = ClientCreds(creds.tenant, "another-client", None, creds.client)
    with pytest.raises(InvalidClaimError, match="aud"):
        authlib_id_token(metadata, stranger, token["id_token"], nonce=s.nonce)


def test_authlib_refuses_an_authorization_response_with_another_state(sesame, metadata):
    creds = sign_in_client(sesame)
    person = new_person(sesame)
    rp = relying_party(metadata, creds)
    verifier = generate_token(64)
    url, state = rp.create_authorization_url(metadata["authorization_endpoint"], code_verifier=verifier, nonce="n")
    location = Browser().sign_in(url, metadata["issuer"], person)
    assert params_of(location)["state"] == state
    forged = location.replace(f"state={state}", "state=forged")
    assert forged != location
    with pytest.raises(MismatchingStateException):
        rp.fetch_token(metadata["token_endpoint"], authorization_response=forged, state=state, code_verifier=verifier)
    assert rp.token_responses == [], "authlib must not have redeemed the code"
    # The code is still good for the request that carried the right state.
    token = rp.fetch_token(
        metadata["token_endpoint"], authorization_response=location, state=state, code_verifier=verifier
    )
    assert token["access_token"]


def test_a_wrong_pkce_verifier_is_invalid_grant(sesame, metadata):
    creds = sign_in_client(sesame, public=True)
    person = new_person(sesame)
    rp = relying_party(metadata, creds)
    verifier = generate_token(64)
    url, state = rp.create_authorization_url(metadata["authorization_endpoint"], code_verifier=verifier, nonce="n")
    location = Browser().sign_in(url, metadata["issuer"], person)
    with pytest.raises(OAuthError) as err:
        rp.fetch_token(
            metadata["token_endpoint"], authorization_response=location, state=state, code_verifier=generate_token(64)
        )
    assert err.value.error == "invalid_grant"


def test_a_public_client_must_send_a_code_challenge(sesame, metadata):
    creds = sign_in_client(sesame, public=True)
    rp = relying_party(metadata, creds)
    # No code_verifier, so authlib sends no code_challenge.
    url, state = rp.create_authorization_url(metadata["authorization_endpoint"], nonce="n")
    assert "code_challenge" not in params_of(url)
    location = redirect_of(Browser().get(url))  # refused before any page is shown
    assert at(location, REDIRECT_URI)
    params = params_of(location)
    assert params["error"] == "invalid_request"
    assert params["state"] == state
    assert params["iss"] == metadata["issuer"]
    assert "code" not in params


def test_a_code_is_redeemed_once_and_a_replay_revokes_what_it_gave(sesame, metadata):
    creds = sign_in_client(sesame)
    s = code_flow(metadata, creds, new_person(sesame))
    access_token = s.token["access_token"]
    assert userinfo(s.rp, metadata).status_code == 200
    assert introspect(metadata, creds, access_token)["active"] is True
    with pytest.raises(OAuthError) as err:
        s.rp.fetch_token(
            metadata["token_endpoint"], authorization_response=s.location, state=s.state, code_verifier=s.code_verifier
        )
    assert err.value.error == "invalid_grant"
    # RFC 6749 §10.5 / §4.1.2: the tokens issued for the code are revoked.
    assert introspect(metadata, creds, access_token) == {"active": False}
    s.rp.token = {"access_token": access_token, "token_type": "Bearer"}
    resp = userinfo(s.rp, metadata)
    assert resp.status_code == 401
    assert bearer_challenge(resp)["error"] == "invalid_token"


def test_a_public_client_revokes_its_access_token_with_authlib(sesame, metadata):
    creds = sign_in_client(sesame, public=True)
    s = code_flow(metadata, creds, new_person(sesame))
    assert userinfo(s.rp, metadata).status_code == 200
    resp = s.rp.revoke_token(metadata["revocation_endpoint"], token=s.token["access_token"])
    # authlib's `none` method: the client names itself in the body, with no secret.
    sent = dict(parse_qsl(resp.request.body))
    assert sent == {"token": s.token["access_token"], "client_id": creds.client_id}
    assert "Authorization" not in resp.request.headers
    assert resp.status_code == 200, resp.text
    after = userinfo(s.rp, metadata)
    assert after.status_code == 401
    assert bearer_challenge(after)["error"] == "invalid_token"


# --- 2. refresh token rotation ---


def offline_sign_in(sesame, metadata, **client_spec) -> tuple[ClientCreds, Person, SignIn]:
    creds = sign_in_client(sesame, **client_spec)
    person = new_person(sesame)
    s = code_flow(metadata, creds, person, scope="openid offline_access")
    assert s.token["scope"] == "openid offline_access"
    assert s.token["refresh_token"]
    return creds, person, s


def refresh(s: SignIn, metadata, refresh_token: str) -> dict:
    return dict(s.rp.refresh_token(metadata["token_endpoint"], refresh_token=refresh_token))


def test_authlib_refresh_rotates_the_refresh_token_every_time(sesame, metadata):
    creds, person, s = offline_sign_in(sesame, metadata)
    tokens = [s.token]
    for _ in range(2):
        tokens.append(refresh(s, metadata, tokens[-1]["refresh_token"]))
        sent = dict(parse_qsl(s.rp.token_responses[-1].request.body))
        assert sent["grant_type"] == "refresh_token"
        assert sent["refresh_token"] == tokens[-2]["refresh_token"]
    refresh_tokens = [t["refresh_token"] for t in tokens]
    access_tokens = [t["access_token"] for t in tokens]
    assert len(set(refresh_tokens)) == 3, "each refresh gives a new refresh token"
    assert len(set(access_tokens)) == 3
    for t in tokens[1:]:
        assert t["scope"] == "openid offline_access"
        # OpenID Connect Core §12.2: the refreshed ID token is about the same person, with no nonce.
        claims = authlib_id_token(metadata, creds, t["id_token"], access_token=t["access_token"])
        assert claims["sub"] == person.user["id"]
        assert "nonce" not in claims
        assert claims["auth_time"] == authlib_id_token(metadata, creds, s.token["id_token"])["auth_time"]
    assert all(introspect(metadata, creds, a)["active"] for a in access_tokens)

    # Within the 30 s retry grace of its rotation, presenting the last used refresh token again (a
    # client retrying after a lost answer) gets the answer it got the first time, not a new token.
    again = refresh(s, metadata, refresh_tokens[1])
    assert again["refresh_token"] == refresh_tokens[2]
    assert again["access_token"] == access_tokens[2]
    assert 0 < again["expires_in"] <= tokens[2]["expires_in"]
    # ... and the grant is not revoked by it: the newest token still refreshes.
    assert refresh(s, metadata, refresh_tokens[2])["refresh_token"] not in refresh_tokens


def test_a_refresh_token_is_bound_to_its_client(sesame, metadata):
    _, _, s = offline_sign_in(sesame, metadata)
    other = sign_in_client(sesame)
    thief = relying_party(metadata, other, scope="openid offline_access")
    with pytest.raises(OAuthError) as err:
        thief.refresh_token(metadata["token_endpoint"], refresh_token=s.token["refresh_token"])
    assert err.value.error == "invalid_grant"
    # The refused attempt neither used up nor revoked the token.
    assert refresh(s, metadata, s.token["refresh_token"])["refresh_token"]


def test_a_refresh_token_two_rotations_old_is_rejected_and_revokes_the_grant(sesame, metadata):
    creds, person, s = offline_sign_in(sesame, metadata)
    r0 = s.token["refresh_token"]
    t1 = refresh(s, metadata, r0)
    r1 = t1["refresh_token"]
    t2 = refresh(s, metadata, r1)
    r2 = t2["refresh_token"]
    assert len({r0, r1, r2}) == 3

    # r1's successor is unused: a retry of r1 is answered as before.
    assert refresh(s, metadata, r1)["refresh_token"] == r2

    # r0's successor (r1) has been used since, so r0 in anyone's hands now is a copy: even inside
    # the retry grace it is a replay, so invalid_grant...
    with pytest.raises(OAuthError) as err:
        refresh(s, metadata, r0)
    assert err.value.error == "invalid_grant"
    # ... and (RFC 9700 §4.14.2) the whole grant is revoked: the newest refresh token too, and
    # the access tokens issued with the grant.
    with pytest.raises(OAuthError) as err:
        refresh(s, metadata, r2)
    assert err.value.error == "invalid_grant"
    for access_token in (s.token["access_token"], t1["access_token"], t2["access_token"]):
        assert introspect(metadata, creds, access_token) == {"active": False}
    s.rp.token = {"access_token": t2["access_token"], "token_type": "Bearer"}
    resp = userinfo(s.rp, metadata)
    assert resp.status_code == 401
    assert bearer_challenge(resp)["error"] == "invalid_token"
    # The person is still signed in and can grant again.
    again = code_flow_without_pages(metadata, creds, s.browser, scope="openid offline_access")
    assert refresh(again, metadata, again.token["refresh_token"])["access_token"]


def test_revoking_a_refresh_token_with_authlib_ends_its_grant(sesame, metadata):
    creds, person, s = offline_sign_in(sesame, metadata)
    r0 = s.token["refresh_token"]
    t1 = refresh(s, metadata, r0)
    r1 = t1["refresh_token"]
    # RFC 7662: the client that holds it can introspect its refresh token.
    info = introspect(metadata, creds, r1)
    assert info["active"] is True
    assert info["token_type"] == "refresh_token"
    assert info["client_id"] == creds.client_id
    assert info["sub"] == person.user["id"]
    assert info["scope"] == "openid offline_access"
    # RFC 7009 §2.1: only the client it was issued to may revoke it. Another client gets the
    # answer of an unknown token (§2.2), so it learns nothing, and nothing changes.
    other = sign_in_client(sesame)
    with relying_party(metadata, other) as stranger:
        refused = stranger.revoke_token(metadata["revocation_endpoint"], token=r1, token_type_hint="refresh_token")
        unknown = stranger.revoke_token(metadata["revocation_endpoint"], token="x" * 43, token_type_hint="refresh_token")
    assert (refused.status_code, refused.text) == (200, "")
    assert (refused.status_code, refused.text) == (unknown.status_code, unknown.text)
    assert introspect(metadata, creds, r1)["active"] is True

    resp = s.rp.revoke_token(metadata["revocation_endpoint"], token=r1, token_type_hint="refresh_token")
    assert resp.status_code == 200, resp.text
    assert introspect(metadata, creds, r1) == {"active": False}
    for presented in (r1, r0):  # r0 too: the retry grace needs an unused successor
        with pytest.raises(OAuthError) as err:
            refresh(s, metadata, presented)
        assert err.value.error == "invalid_grant"
    # RFC 7009 §2.1 (SHOULD): the access tokens of the same grant end with it.
    for access_token in (s.token["access_token"], t1["access_token"]):
        assert introspect(metadata, creds, access_token) == {"active": False}


# --- 3. PyJWT and the signing algorithms ---


@pytest.mark.parametrize("alg", ALGS)
def test_pyjwt_verifies_the_access_and_id_tokens_with_the_jwks(sesame, metadata, alg):
    # A first-party client: no consent page.
    creds = sign_in_client(sesame, signing_alg=alg, first_party=True)
    person = new_person(sesame)
    s = code_flow(metadata, creds, person, consent=False)
    jwk_client = jwt.PyJWKClient(metadata["jwks_uri"], timeout=HTTP_TIMEOUT)
    published = {k["kid"]: k for k in jwks(metadata)["keys"]}

    access_token = s.token["access_token"]
    header = jwt.get_unverified_header(access_token)
    assert header["typ"] == "at+jwt"  # RFC 9068 §2.1
    assert header["alg"] == alg
    assert published[header["kid"]]["alg"] == alg
    at_claims = jwt.decode(
        access_token,
        key=jwk_client.get_signing_key_from_jwt(access_token),
        algorithms=[alg],
        # A client without allowed_audiences gets tokens for itself.
        audience=creds.client_id,
        issuer=metadata["issuer"],
        options={"require": RFC9068_CLAIMS},
    )
    assert at_claims["sub"] == person.user["id"]
    assert at_claims["client_id"] == creds.client_id
    assert at_claims["scope"] == SCOPE
    assert at_claims["exp"] == at_claims["iat"] + s.token["expires_in"]

    id_token = s.token["id_token"]
    header = jwt.get_unverified_header(id_token)
    assert header["alg"] == alg
    assert header.get("typ", "JWT") != "at+jwt"
    assert published[header["kid"]]["alg"] == alg
    key = jwk_client.get_signing_key_from_jwt(id_token)
    claims = jwt.decode(
        id_token,
        key=key,
        algorithms=[alg],
        audience=creds.client_id,
        issuer=metadata["issuer"],
        options={"require": ["iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "at_hash"]},
    )
    assert claims["sub"] == person.user["id"]
    assert claims["nonce"] == s.nonce
    # OpenID Connect Core §3.1.3.6, computed here with hashlib: the left half of the hash of the
    # access token, with the hash of the signing algorithm (SHA-512 for Ed25519).
    digest = hashlib.new("sha512" if alg == "EdDSA" else "sha256", access_token.encode()).digest()
    assert claims["at_hash"] == b64url(digest[: len(digest) // 2])
    # PyJWT's own audience and issuer checks are live.
    with pytest.raises(jwt.InvalidAudienceError):
        jwt.decode(id_token, key=key, algorithms=[alg], audience="another-client", issuer=metadata["issuer"])
    with pytest.raises(jwt.InvalidIssuerError):
        jwt.decode(id_token, key=key, algorithms=[alg], audience=creds.client_id, issuer=sesame.issuer("other"))
    # authlib agrees.
    authlib_id_token(metadata, creds, id_token, nonce=s.nonce, access_token=access_token)


# --- 4. userinfo ---


def test_authlib_gets_userinfo_with_the_claims_of_the_granted_scopes(sesame, metadata):
    creds = sign_in_client(sesame)
    person = new_person(sesame, picture="https://rp.example/ada.png")
    s = code_flow(metadata, creds, person)
    resp = userinfo(s.rp, metadata)
    assert resp.request.headers["Authorization"] == f"Bearer {s.token['access_token']}"
    assert resp.status_code == 200, resp.text
    assert resp.headers["Content-Type"].split(";")[0] == "application/json"
    assert "no-store" in resp.headers.get("Cache-Control", "")
    info = resp.json()
    id_claims = authlib_id_token(metadata, creds, s.token["id_token"], nonce=s.nonce)
    # OpenID Connect Core §5.3.2: the sub is the ID token's.
    assert info["sub"] == id_claims["sub"] == person.user["id"]
    assert info["preferred_username"] == person.username
    assert info["name"] == "Ada Lovelace"
    assert info["picture"] == "https://rp.example/ada.png"
    assert info["email"] == person.user["email"]
    assert info["email_verified"] is True
    assert isinstance(info["updated_at"], int)

    # RFC 6750 §2.2: the token may come in a form body instead.
    posted = s.rp.post(
        metadata["userinfo_endpoint"],
        data={"access_token": s.token["access_token"]},
        withhold_token=True,
        timeout=HTTP_TIMEOUT,
    )
    assert "Authorization" not in posted.request.headers
    assert posted.status_code == 200
    assert posted.json() == info

    # The same browser, already signed in and asked for fewer scopes than it consented to, goes
    # straight back to the client; the token for `openid` alone gets only `sub`.
    narrow = code_flow_without_pages(metadata, creds, s.browser, scope="openid")
    assert narrow.token["scope"] == "openid"
    resp = userinfo(narrow.rp, metadata)
    assert resp.status_code == 200
    assert resp.json() == {"sub": person.user["id"]}


def test_userinfo_refuses_a_client_credentials_token_as_insufficient_scope(sesame, metadata):
    creds = sesame.create_client("default", allowed_scopes=["read"])
    with OAuth2Session(creds.client_id, creds.client_secret, default_timeout=HTTP_TIMEOUT) as rp:
        token = rp.fetch_token(metadata["token_endpoint"], grant_type="client_credentials", scope="read")
        assert token["scope"] == "read"
        resp = rp.get(metadata["userinfo_endpoint"], timeout=HTTP_TIMEOUT)
    # RFC 6750 §3.1: a valid token without the scope the resource needs (openid).
    assert resp.status_code == 403
    assert bearer_challenge(resp)["error"] == "insufficient_scope"
    assert resp.json()["error"] == "insufficient_scope"


def test_userinfo_refuses_a_client_credentials_token_with_openid_as_invalid_token(sesame, metadata):
    # A client allowed to ask for `openid` for itself still names no person (sub is the client).
    creds = sesame.create_client("default", allowed_scopes=["openid"])
    with OAuth2Session(creds.client_id, creds.client_secret, default_timeout=HTTP_TIMEOUT) as rp:
        token = rp.fetch_token(metadata["token_endpoint"], grant_type="client_credentials", scope="openid")
        assert token["scope"] == "openid"
        resp = rp.get(metadata["userinfo_endpoint"], timeout=HTTP_TIMEOUT)
    assert resp.status_code == 401
    assert bearer_challenge(resp)["error"] == "invalid_token"
    assert resp.json()["error"] == "invalid_token"


def test_userinfo_refuses_a_missing_or_forged_token(sesame, metadata):
    anonymous = requests.get(metadata["userinfo_endpoint"], timeout=HTTP_TIMEOUT)
    assert anonymous.status_code == 401
    # RFC 6750 §3.1: a request without any token gets a challenge without an error code.
    assert "error" not in bearer_challenge(anonymous)
    forged = requests.get(
        metadata["userinfo_endpoint"], headers={"Authorization": "Bearer a.b.c"}, timeout=HTTP_TIMEOUT
    )
    assert forged.status_code == 401
    assert bearer_challenge(forged)["error"] == "invalid_token"


# --- 5. the implicit flow, for clients that opt in ---


def implicit_request(metadata, creds) -> tuple[OAuth2Session, str, str, str]:
    rp = relying_party(metadata, creds)
    nonce = generate_token(24)
    url, state = rp.create_authorization_url(
        metadata["authorization_endpoint"], response_type="id_token token", response_mode="fragment", nonce=nonce
    )
    query = params_of(url)
    assert query["response_type"] == "id_token token" and "code_challenge" not in query
    return rp, url, state, nonce


def test_implicit_id_token_token_for_a_client_that_opted_in(sesame, metadata):
    creds = sign_in_client(sesame, grant_types=["authorization_code", "implicit"])
    person = new_person(sesame)
    rp, url, state, nonce = implicit_request(metadata, creds)
    location = Browser().sign_in(url, metadata["issuer"], person)
    assert at(location, REDIRECT_URI)
    # Multiple Response Types §5: tokens travel in the fragment, never in the query.
    assert urlsplit(location).query == ""
    params = params_of(location, "fragment")
    assert params["iss"] == metadata["issuer"]
    assert "code" not in params and "refresh_token" not in params
    token = rp.token_from_fragment(location, state=state)  # authlib checks the state
    assert token["token_type"].lower() == "bearer"
    assert int(token["expires_in"]) > 0
    assert token["scope"] == SCOPE

    claims = authlib_id_token(
        metadata, creds, token["id_token"], claims_cls=ImplicitIDToken, nonce=nonce, access_token=token["access_token"]
    )
    assert claims["sub"] == person.user["id"]
    assert claims["nonce"] == nonce
    # §5.4: with an access token the profile claims are at userinfo, not in the ID token.
    assert "email" not in claims
    with pytest.raises(InvalidClaimError, match="at_hash"):
        authlib_id_token(
            metadata, creds, token["id_token"], claims_cls=ImplicitIDToken, nonce=nonce, access_token="another"
        )
    with pytest.raises(MismatchingStateException):
        rp.token_from_fragment(location, state="forged")

    resp = userinfo(rp, metadata)  # token_from_fragment gave the session this access token
    assert resp.status_code == 200
    assert resp.json()["sub"] == person.user["id"]
    assert resp.json()["email"] == person.user["email"]


def test_implicit_for_a_client_without_the_grant_is_unauthorized_client(sesame, metadata):
    creds = sign_in_client(sesame)  # grant_types default to authorization_code and refresh_token
    assert "implicit" not in creds.client["grant_types"]
    _, url, state, _ = implicit_request(metadata, creds)
    browser = Browser()
    location = redirect_of(browser.get(url))  # no sign-in page is shown at all
    assert at(location, REDIRECT_URI)
    assert urlsplit(location).query == ""
    params = params_of(location, "fragment")
    assert params["error"] == "unauthorized_client"
    assert params["state"] == state
    assert params["iss"] == metadata["issuer"]
    assert "access_token" not in params and "id_token" not in params
    assert not any(c.name == "sesame_session" for c in browser.http.cookies)


# --- 6. RP-initiated logout ---


def sessions_of(sesame, person: Person) -> list:
    resp = sesame.admin("GET", f"/tenants/default/users/{person.user['id']}/sessions")
    assert resp.status_code == 200, resp.text
    return resp.json()["sessions"]


def prompt_none(metadata, creds, browser: Browser) -> tuple[dict, str]:
    rp = relying_party(metadata, creds)
    url, state = rp.create_authorization_url(
        metadata["authorization_endpoint"], code_verifier=generate_token(64), nonce="n", prompt="none"
    )
    location = redirect_of(browser.get(url))
    assert at(location, REDIRECT_URI)
    return params_of(location), state


def test_rp_initiated_logout_with_id_token_hint_returns_with_state(sesame, metadata):
    creds = sign_in_client(sesame)
    person = new_person(sesame)
    s = code_flow(metadata, creds, person)
    assert len(sessions_of(sesame, person)) == 1
    # Signed in: prompt=none gets a code without any page.
    params, state = prompt_none(metadata, creds, s.browser)
    assert "code" in params and params["state"] == state

    logout_state = generate_token(16)
    url = metadata["end_session_endpoint"] + "?" + urlencode(
        {"id_token_hint": s.token["id_token"], "post_logout_redirect_uri": POST_LOGOUT_URI, "state": logout_state}
    )
    resp = s.browser.get(url)
    location = redirect_of(resp)
    assert at(location, POST_LOGOUT_URI)
    assert params_of(location) == {"state": logout_state}
    assert not any(c.name == "sesame_session" for c in s.browser.http.cookies), "the session cookie is cleared"
    assert sessions_of(sesame, person) == []

    # Signed out: prompt=none must not show a page, so it is login_required.
    params, state = prompt_none(metadata, creds, s.browser)
    assert params["error"] == "login_required"
    assert params["state"] == state
    assert params["iss"] == metadata["issuer"]
    assert "code" not in params


def test_logout_without_id_token_hint_asks_the_person_first(sesame, metadata):
    creds = sign_in_client(sesame)
    person = new_person(sesame)
    s = code_flow(metadata, creds, person)
    logout_state = generate_token(16)
    url = metadata["end_session_endpoint"] + "?" + urlencode(
        {"client_id": creds.client_id, "post_logout_redirect_uri": POST_LOGOUT_URI, "state": logout_state}
    )
    page = s.browser.get(url)
    assert page.status_code == 200
    form = only_form(page)
    assert form.action == metadata["end_session_endpoint"]
    assert form.fields["post_logout_redirect_uri"] == POST_LOGOUT_URI
    assert form.fields["state"] == logout_state
    # Only asking: still signed in.
    assert len(sessions_of(sesame, person)) == 1
    assert "code" in prompt_none(metadata, creds, s.browser)[0]
    # A form without the CSRF token (a cross-site post) signs nobody out.
    forged = s.browser.http.post(
        form.action,
        data={k: v for k, v in form.fields.items() if k != "csrf"},
        allow_redirects=False,
        timeout=HTTP_TIMEOUT,
    )
    assert forged.status_code == 403
    assert len(sessions_of(sesame, person)) == 1

    location = redirect_of(s.browser.submit(form))
    assert at(location, POST_LOGOUT_URI)
    assert params_of(location) == {"state": logout_state}
    assert sessions_of(sesame, person) == []
    assert prompt_none(metadata, creds, s.browser)[0]["error"] == "login_required"


def test_logout_never_redirects_to_an_unregistered_uri(sesame, metadata):
    creds = sign_in_client(sesame)
    person = new_person(sesame)
    s = code_flow(metadata, creds, person)
    url = metadata["end_session_endpoint"] + "?" + urlencode(
        {"id_token_hint": s.token["id_token"], "post_logout_redirect_uri": "https://evil.example/", "state": "x"}
    )
    resp = s.browser.get(url)
    assert resp.status_code == 400
    assert "Location" not in resp.headers
    # The request was refused as a whole: the person is still signed in.
    assert len(sessions_of(sesame, person)) == 1

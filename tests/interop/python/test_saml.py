"""SAML 2.0 brokered SSO against a real SAML IdP implementation: pysaml2's `saml2.server.Server`
(which signs with the xmlsec1 binary, the reference C implementation of XML-DSig) plays a
tenant's IdP. Its metadata is served on loopback and imported by URL; Sesame's SP metadata is
loaded into it, so pysaml2 checks the signature of Sesame's AuthnRequest (HTTP-Redirect
binding, `want_authn_requests_signed`).

The person's browser is a `requests.Session` that follows no redirects: application → Sesame's
sign-in page → the SAML button → the IdP (pysaml2 parses and verifies the AuthnRequest, then
answers with a signed assertion) → Sesame's ACS → the application's redirect URI with a code,
exchanged for Sesame's ID token with `groups`. First sign-in creates the user, the second links
to the same user, the admin group sets the admin flag. An HTTP-level drive (no Chromium)."""

from __future__ import annotations

import base64
import datetime
import hashlib
import http.server
import re
import shutil
import threading
import uuid
from html import unescape
from urllib.parse import parse_qsl, urlencode, urlsplit

import jwt
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from conftest import HTTP_TIMEOUT

saml2 = pytest.importorskip("saml2", reason="pysaml2 is in requirements.txt")
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT  # noqa: E402
from saml2.config import IdPConfig  # noqa: E402
from saml2.metadata import entity_descriptor  # noqa: E402
from saml2.saml import NAMEID_FORMAT_PERSISTENT, NameID  # noqa: E402
from saml2.server import Server  # noqa: E402

REDIRECT_URI = "https://rp.example/saml-callback"
IDP_ENTITY = "https://idp.interop.test/saml2"
SSO_URL = "https://idp.interop.test/saml2/sso"
CONNECTION = "pysaml"


def xmlsec1() -> str:
    path = shutil.which("xmlsec1")
    if not path:
        pytest.fail("pysaml2 needs the xmlsec1 binary (apt: xmlsec1; scripts/test installs it)", pytrace=False)
    return path


def idp_key_and_cert(tmp_path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pysaml2 interop IdP")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    key_file = tmp_path / "idp.key"
    cert_file = tmp_path / "idp.crt"
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return str(key_file), str(cert_file)


def idp_config(key_file: str, cert_file: str, sp_metadata: str | None) -> IdPConfig:
    conf = {
        "entityid": IDP_ENTITY,
        "xmlsec_binary": xmlsec1(),
        "key_file": key_file,
        "cert_file": cert_file,
        "service": {
            "idp": {
                "name": "pysaml2 interop IdP",
                "endpoints": {"single_sign_on_service": [(SSO_URL, BINDING_HTTP_REDIRECT)]},
                "want_authn_requests_signed": True,
                "policy": {"default": {"lifetime": {"minutes": 5}, "attribute_restrictions": None}},
            }
        },
    }
    if sp_metadata is not None:
        conf["metadata"] = {"inline": [sp_metadata]}
    config = IdPConfig()
    config.load(conf)
    return config


class Metadata(http.server.BaseHTTPRequestHandler):
    body = b""

    def do_GET(self):  # noqa: N802 (http.server's name)
        self.send_response(200)
        self.send_header("Content-Type", "application/samlmetadata+xml")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def idp(sesame, tmp_path_factory):
    """The IdP, its connection in tenant `default` (imported from its metadata URL), and a client."""
    tmp = tmp_path_factory.mktemp("pysaml2")
    key_file, cert_file = idp_key_and_cert(tmp)
    # Sesame imports the IdP's metadata from a URL on loopback, with its outbound HTTP rules.
    Metadata.body = str(entity_descriptor(idp_config(key_file, cert_file, None))).encode()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Metadata)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    metadata_url = f"http://127.0.0.1:{server.server_address[1]}/metadata"
    created = sesame.admin(
        "POST",
        "/tenants/default/sso",
        {
            "id": CONNECTION,
            "kind": "saml",
            "display_name": "PySAML Corp",
            "idp_metadata_url": metadata_url,
            "email_claim": "mail",
            "display_name_claim": "displayName",
            "groups_claim": "eduPersonAffiliation",
            "admin_groups": ["admins"],
            "trusted_email": True,
        },
    )
    server.shutdown()
    assert created.status_code == 201, created.text
    conn = created.json()
    assert conn["idp_entity_id"] == IDP_ENTITY
    assert conn["sso_url"] == SSO_URL
    assert conn["sso_binding"] == "redirect"
    # The IdP learns Sesame from Sesame's SP metadata.
    sp_metadata = requests.get(f"{sesame.issuer()}/sso/{CONNECTION}/saml/metadata", timeout=HTTP_TIMEOUT)
    assert sp_metadata.status_code == 200, sp_metadata.text
    assert sp_metadata.headers["Content-Type"] == "application/samlmetadata+xml"
    server = Server(config=idp_config(key_file, cert_file, sp_metadata.text))
    client = sesame.create_client("default", redirect_uris=[REDIRECT_URI], first_party=True)
    return server, client


def pkce():
    verifier = base64.urlsafe_b64encode(uuid.uuid4().bytes * 2).rstrip(b"=").decode()
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def sign_in(sesame, server: Server, client, person: dict) -> dict:
    """One sign-in through the IdP; returns the claims of Sesame's ID token."""
    browser = requests.Session()
    verifier, challenge = pkce()
    query = urlencode(
        {
            "client_id": client.client_id,
            "redirect_uri": REDIRECT_URI,
            "response_type": "code",
            "scope": "openid profile email groups",
            "state": "rp-state",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    login = browser.get(f"{sesame.issuer()}/authorize?{query}", allow_redirects=False, timeout=HTTP_TIMEOUT)
    assert login.status_code == 200, login.text
    hrefs = [unescape(h) for h in re.findall(r'href="([^"]*/sso/' + CONNECTION + r'/start\?[^"]*)"', login.text)]
    assert len(hrefs) == 1, login.text
    assert "Sign in with PySAML Corp" in login.text
    start = browser.get(hrefs[0], allow_redirects=False, timeout=HTTP_TIMEOUT)
    assert start.status_code == 303, start.text
    at_idp = start.headers["Location"]
    assert at_idp.startswith(SSO_URL + "?"), at_idp
    q = dict(parse_qsl(urlsplit(at_idp).query))
    assert q["SigAlg"] == "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"

    # pysaml2 decodes the request and verifies its signature with the SP metadata's certificate.
    req = server.parse_authn_request(
        q["SAMLRequest"], BINDING_HTTP_REDIRECT, relay_state=q["RelayState"], sigalg=q["SigAlg"], signature=q["Signature"]
    )
    assert req is not None
    message = req.message
    acs = message.assertion_consumer_service_url
    assert acs == f"{sesame.issuer()}/sso/{CONNECTION}/saml/acs"
    sp_entity = message.issuer.text
    response = server.create_authn_response(
        identity={k: v for k, v in person.items() if k != "name_id"},
        in_response_to=message.id,
        destination=acs,
        sp_entity_id=sp_entity,
        name_id=NameID(format=NAMEID_FORMAT_PERSISTENT, text=person["name_id"]),
        sign_assertion=True,
        sign_response=False,
    )
    args = server.apply_binding(BINDING_HTTP_POST, str(response), acs, q["RelayState"], response=True)
    # The IdP's auto-submit page: the form fields it would post.
    body = args["data"]
    fields = dict(re.findall(r'name="(SAMLResponse|RelayState)" value="([^"]*)"', body))
    assert set(fields) == {"SAMLResponse", "RelayState"}, body
    done = browser.post(acs, data={k: unescape(v) for k, v in fields.items()}, allow_redirects=False, timeout=HTTP_TIMEOUT)
    assert done.status_code == 303, done.text
    location = done.headers["Location"]
    assert location.startswith(REDIRECT_URI), location
    code = dict(parse_qsl(urlsplit(location).query))["code"]
    token = requests.post(
        f"{sesame.issuer()}/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI, "code_verifier": verifier},
        auth=(client.client_id, client.client_secret),
        timeout=HTTP_TIMEOUT,
    )
    assert token.status_code == 200, token.text
    jwks = jwt.PyJWKClient(f"{sesame.issuer()}/jwks")
    id_token = token.json()["id_token"]
    return jwt.decode(
        id_token,
        jwks.get_signing_key_from_jwt(id_token).key,
        algorithms=["RS256", "ES256", "EdDSA"],
        audience=client.client_id,
        issuer=sesame.issuer(),
    )


def test_pysaml2_idp_signs_people_in_creates_then_links_with_groups_and_admin(sesame, idp):
    server, client = idp
    alice = {
        "name_id": "pysaml-alice-01",
        "mail": ["alice@pysaml.test"],
        "displayName": ["Alice Liddell"],
        "eduPersonAffiliation": ["admins", "staff"],
    }
    claims = sign_in(sesame, server, client, alice)
    assert claims["amr"] == ["fed"]
    assert sorted(claims["groups"]) == ["admins", "staff"]
    sub = claims["sub"]
    user = sesame.admin("GET", f"/tenants/default/users/{sub}").json()
    assert user["username"] == "alice@pysaml.test"
    assert user["name"] == "Alice Liddell"
    info = sesame.admin("GET", f"/tenants/default/users/{sub}/sso").json()
    assert info["admin_by_sso"] is True, info
    assert info["external_identities"] == [{"connection": CONNECTION, "subject": "pysaml-alice-01"}]

    # The second sign-in links to the same user; without the admin group, no admin flag.
    alice["eduPersonAffiliation"] = ["staff"]
    claims = sign_in(sesame, server, client, alice)
    assert claims["sub"] == sub
    assert claims["groups"] == ["staff"]
    info = sesame.admin("GET", f"/tenants/default/users/{sub}/sso").json()
    assert info["admin_by_sso"] is False, info

"""A SAML 2.0 IdP for the browser test sso-saml.test.mjs: pysaml2's `saml2.server.Server` (which
signs with the xmlsec1 binary) behind a small HTTP server on 127.0.0.1, with a login form.

    python saml_idp.py --public-host localhost

The browser reaches it as http://<public-host>:<port> (another site than Sesame's 127.0.0.1, so
that its POST to Sesame's ACS is cross-site). On start it prints one JSON line on stdout:
{"base": ..., "metadata_url": ..., "entity_id": ..., "sso_url": ...}.

    GET  /metadata            the IdP's metadata (SSO by HTTP-Redirect, signing certificate)
    GET  /sso?SAMLRequest=..  pysaml2 verifies the signed AuthnRequest against the SP metadata,
                              then shows the login form (one-use ticket)
    POST /login               username + password; a wrong one shows the form again (401); else
                              the signed assertion in pysaml2's auto-submitting HTTP-POST page
    POST /control/sp          the SP's metadata (XML body): pysaml2 learns Sesame from it
    PUT  /control/people/ID   JSON {password, name_id, attributes}: a person (replaces)
    GET  /control/stats       JSON counts: verified AuthnRequests, refused logins, responses

Control routes are for the test only; everything listens on loopback.
"""

from __future__ import annotations

import argparse
import datetime
import html
import json
import os
import secrets
import shutil
import signal
import sys
import tempfile
import threading
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.config import IdPConfig
from saml2.metadata import entity_descriptor
from saml2.saml import NAMEID_FORMAT_PERSISTENT, NameID
from saml2.server import Server


def key_and_cert(directory: str) -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pysaml2 browser-test IdP")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    key_file = os.path.join(directory, "idp.key")
    cert_file = os.path.join(directory, "idp.crt")
    with open(key_file, "wb") as f:
        f.write(
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        )
    with open(cert_file, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    return key_file, cert_file


class Idp:
    def __init__(self, base: str, key_file: str, cert_file: str, xmlsec1: str):
        self.base = base
        self.entity_id = f"{base}/idp"
        self.sso_url = f"{base}/sso"
        self.key_file = key_file
        self.cert_file = cert_file
        self.xmlsec1 = xmlsec1
        self.lock = threading.Lock()
        self.people: dict[str, dict] = {}
        self.tickets: dict[str, dict] = {}
        self.stats = {"authn_requests_verified": 0, "authn_requests_refused": 0, "logins_refused": 0, "responses": 0}
        self.metadata = str(entity_descriptor(self.config(None))).encode()
        self.server: Server | None = None

    def config(self, sp_metadata: str | None) -> IdPConfig:
        conf = {
            "entityid": self.entity_id,
            "xmlsec_binary": self.xmlsec1,
            "key_file": self.key_file,
            "cert_file": self.cert_file,
            "service": {
                "idp": {
                    "name": "pysaml2 browser-test IdP",
                    "endpoints": {"single_sign_on_service": [(self.sso_url, BINDING_HTTP_REDIRECT)]},
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


def page(title: str, body: str) -> bytes:
    return (
        f"<!DOCTYPE html><html><head><meta charset=utf-8><title>{html.escape(title)}</title></head>"
        f"<body><h1>{html.escape(title)}</h1>{body}</body></html>"
    ).encode()


def login_form(ticket: str, sp: str, error: str | None = None) -> bytes:
    err = f'<p id="error">{html.escape(error)}</p>' if error else ""
    return page(
        "PySAML Corp sign-in",
        f"""<p id="sp">Signing in to {html.escape(sp)}</p>{err}
<form method="post" action="/login">
<input type="hidden" name="ticket" value="{html.escape(ticket)}">
<label>Username <input name="username" autocomplete="username"></label>
<label>Password <input name="password" type="password" autocomplete="current-password"></label>
<button type="submit">Sign in</button>
</form>""",
    )


def make_handler(idp: Idp):
    class Handler(BaseHTTPRequestHandler):
        def send(self, status: int, body: bytes, ctype: str = "text/html; charset=utf-8") -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def do_GET(self):  # noqa: N802 (http.server's name)
            url = urlsplit(self.path)
            if url.path == "/metadata":
                return self.send(200, idp.metadata, "application/samlmetadata+xml")
            if url.path == "/control/stats":
                with idp.lock:
                    return self.send(200, json.dumps(idp.stats).encode(), "application/json")
            if url.path == "/sso":
                q = {k: v[0] for k, v in parse_qs(url.query).items()}
                with idp.lock:
                    if idp.server is None:
                        return self.send(503, page("Not ready", "<p>No SP metadata yet</p>"))
                    try:
                        # Decodes the request and checks its signature (SigAlg, Signature) with
                        # the certificate of the SP's metadata.
                        req = idp.server.parse_authn_request(
                            q["SAMLRequest"],
                            BINDING_HTTP_REDIRECT,
                            relay_state=q.get("RelayState"),
                            sigalg=q.get("SigAlg"),
                            signature=q.get("Signature"),
                        )
                        if req is None:
                            raise ValueError("pysaml2 did not accept the AuthnRequest")
                    except Exception as e:  # noqa: BLE001 (shown on the page for the test)
                        idp.stats["authn_requests_refused"] += 1
                        return self.send(400, page("Bad AuthnRequest", f'<pre id="error">{html.escape(repr(e))}</pre>'))
                    idp.stats["authn_requests_verified"] += 1
                    message = req.message
                    ticket = secrets.token_urlsafe(16)
                    idp.tickets[ticket] = {
                        "id": message.id,
                        "acs": message.assertion_consumer_service_url,
                        "sp": message.issuer.text,
                        "relay_state": q.get("RelayState", ""),
                    }
                return self.send(200, login_form(ticket, message.issuer.text))
            return self.send(404, page("Not found", ""))

        def do_PUT(self):  # noqa: N802
            url = urlsplit(self.path)
            prefix = "/control/people/"
            if not url.path.startswith(prefix):
                return self.send(404, page("Not found", ""))
            person = json.loads(self.body())
            with idp.lock:
                idp.people[url.path[len(prefix) :]] = person
            return self.send(204, b"")

        def do_POST(self):  # noqa: N802
            url = urlsplit(self.path)
            if url.path == "/control/sp":
                sp_metadata = self.body().decode()
                with idp.lock:
                    idp.server = Server(config=idp.config(sp_metadata))
                return self.send(204, b"")
            if url.path != "/login":
                return self.send(404, page("Not found", ""))
            form = {k: v[0] for k, v in parse_qs(self.body().decode()).items()}
            with idp.lock:
                ticket = form.get("ticket", "")
                pending = idp.tickets.get(ticket)
                if pending is None:
                    return self.send(400, page("Sign-in expired", '<p id="error">unknown or used ticket</p>'))
                person = idp.people.get(form.get("username", ""))
                if person is None or not secrets.compare_digest(person["password"], form.get("password", "")):
                    idp.stats["logins_refused"] += 1
                    return self.send(401, login_form(ticket, pending["sp"], "Wrong username or password"))
                del idp.tickets[ticket]
                response = idp.server.create_authn_response(
                    identity=person["attributes"],
                    in_response_to=pending["id"],
                    destination=pending["acs"],
                    sp_entity_id=pending["sp"],
                    name_id=NameID(format=NAMEID_FORMAT_PERSISTENT, text=person["name_id"]),
                    sign_assertion=True,
                    sign_response=False,
                )
                # pysaml2's HTTP-POST binding page: a form to the ACS, submitted on load.
                args = idp.server.apply_binding(
                    BINDING_HTTP_POST, str(response), pending["acs"], pending["relay_state"], response=True
                )
                idp.stats["responses"] += 1
            return self.send(200, args["data"].encode())

        def log_message(self, fmt, *args):
            if os.environ.get("SAML_IDP_LOG"):
                sys.stderr.write("[saml_idp] " + (fmt % args) + "\n")

        def handle_one_request(self):
            try:
                super().handle_one_request()
            except Exception:  # noqa: BLE001 (a broken request must not stop the IdP)
                traceback.print_exc()

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--public-host", default="localhost", help="the host name the browser uses")
    args = parser.parse_args()
    xmlsec1 = shutil.which("xmlsec1")
    if not xmlsec1:
        sys.exit("saml_idp: pysaml2 needs the xmlsec1 binary (apt: xmlsec1)")
    directory = tempfile.mkdtemp(prefix="saml-idp-")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), None)
    port = httpd.server_address[1]
    base = f"http://{args.public_host}:{port}"
    idp = Idp(base, *key_and_cert(directory), xmlsec1)
    httpd.RequestHandlerClass = make_handler(idp)
    print(
        json.dumps(
            {
                "base": base,
                "metadata_url": f"http://127.0.0.1:{port}/metadata",
                "control_url": f"http://127.0.0.1:{port}/control",
                "entity_id": idp.entity_id,
                "sso_url": idp.sso_url,
            }
        ),
        flush=True,
    )
    def stop(*_):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()

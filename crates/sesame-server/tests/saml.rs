//! SAML 2.0 brokered SSO end to end over HTTP, against an IdP played by the test: it holds an
//! RSA key and certificate, reads the AuthnRequest Sesame redirects to it, and answers with
//! Responses it signs through the same XML-DSig implementation an IdP library would use
//! (bergshamra, behind `sesame_core::xmldsig`) — or breaks on purpose: each check of the ACS
//! gets a Response that fails exactly that check, built from a validly signed one by XML
//! manipulation, and the refusal is asserted. Interoperability with a real IdP library
//! (pysaml2) is `tests/interop/python/test_saml.py`.
//!
//! The browser keeps cookies per path and follows no redirects, so every hop is asserted.

mod common;

use base64::engine::general_purpose::{STANDARD as B64STD, URL_SAFE_NO_PAD as B64};
use base64::Engine;
use common::{jwt_parts, unescape, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sesame_core::saml::{self, format_instant};
use sesame_core::xmldsig::{signature_template, Bergshamra, XmlSignatures};
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::sync::Mutex;

const T: &str = "default";
const CB: &str = "https://app.example/cb";
const IDP: &str = "https://idp.test/saml";
const SSO_URL: &str = "https://idp.test/saml/sso";

// ---------------------------------------------------------------------------------------------
// The browser (as in tests/sso.rs)

struct Page {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Page {
    fn location(&self) -> &str {
        assert_eq!(
            self.status,
            StatusCode::SEE_OTHER,
            "expected a redirect, got {}: {}",
            self.status,
            self.body
        );
        self.headers["location"].to_str().unwrap()
    }

    fn hidden(&self, name: &str) -> Option<String> {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self.body.find(&marker)? + marker.len();
        let len = self.body[start..].find('"')?;
        Some(unescape(&self.body[start..start + len]))
    }

    fn text(&self) -> String {
        unescape(&self.body)
    }

    fn sso_button(&self, connection: &str) -> Option<String> {
        let marker = format!("/sso/{connection}/start?");
        let at = self.body.find(&marker)?;
        let start = self.body[..at].rfind("href=\"")? + "href=\"".len();
        let len = self.body[start..].find('"')?;
        Some(unescape(&self.body[start..start + len]))
    }

    /// A refusal page that names `reason`.
    fn refused(&self, reason: &str) {
        assert!(
            self.status.is_client_error() || self.status.is_server_error(),
            "expected a refusal ({reason}), got {}: {}",
            self.status,
            self.body
        );
        assert!(
            self.text().contains(reason),
            "the page does not name '{reason}': {}",
            self.text()
        );
    }
}

fn query_of(url: &str) -> HashMap<String, String> {
    let q = url.split_once('?').map_or("", |(_, q)| q);
    form_urlencoded::parse(q.as_bytes()).into_owned().collect()
}

struct Browser {
    http: reqwest::Client,
    jar: Mutex<BTreeMap<(String, String), String>>,
}

impl Browser {
    fn new() -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            jar: Mutex::new(BTreeMap::new()),
        }
    }

    fn cookies_for(&self, url: &str) -> String {
        let path = url
            .split_once("://")
            .and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..]))
            .unwrap_or("/");
        self.jar
            .lock()
            .unwrap()
            .iter()
            .filter(|((p, _), _)| path.starts_with(p.as_str()))
            .map(|((_, n), v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn cookie(&self, name: &str) -> Option<(String, String)> {
        self.jar
            .lock()
            .unwrap()
            .iter()
            .find(|((_, n), _)| n == name)
            .map(|((p, _), v)| (p.clone(), v.clone()))
    }

    fn set_cookie(&self, path: &str, name: &str, value: &str) {
        self.jar
            .lock()
            .unwrap()
            .insert((path.to_owned(), name.to_owned()), value.to_owned());
    }

    async fn send(&self, url: &str, req: reqwest::RequestBuilder) -> Page {
        let cookies = self.cookies_for(url);
        let req = if cookies.is_empty() {
            req
        } else {
            req.header("cookie", cookies)
        };
        let resp = req.send().await.unwrap();
        let (status, headers) = (resp.status(), resp.headers().clone());
        let body = resp.text().await.unwrap();
        for sc in headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
        {
            let mut parts = sc.split(';');
            let Some((name, value)) = parts.next().and_then(|p| p.split_once('=')) else {
                continue;
            };
            let path = parts
                .filter_map(|a| a.trim().strip_prefix("Path="))
                .next()
                .unwrap_or("/")
                .to_owned();
            let key = (path, name.to_owned());
            let mut jar = self.jar.lock().unwrap();
            if value.is_empty() || sc.contains("Max-Age=0") {
                jar.remove(&key);
            } else {
                jar.insert(key, value.to_owned());
            }
        }
        Page {
            status,
            headers,
            body,
        }
    }

    async fn get(&self, url: &str) -> Page {
        self.send(url, self.http.get(url)).await
    }

    async fn post(&self, url: &str, form: &[(&str, &str)]) -> Page {
        self.send(url, self.http.post(url).form(form)).await
    }
}

// ---------------------------------------------------------------------------------------------
// The test's IdP

struct Idp {
    key: Vec<u8>,
    cert: Vec<u8>,
}

impl Idp {
    fn new() -> Idp {
        let (key, cert) = saml::generate_sp_key("test idp").unwrap();
        Idp { key, cert }
    }

    /// Signs the element with ID `id` in `xml` (an enveloped signature after its Issuer).
    fn sign(&self, xml: &str, id: &str) -> String {
        sign_with(&self.key, &self.cert, xml, id)
    }
}

fn sign_with(key: &[u8], cert: &[u8], xml: &str, id: &str) -> String {
    let at = xml.find("</saml:Issuer>").unwrap() + "</saml:Issuer>".len();
    let template = format!("{}{}{}", &xml[..at], signature_template(id, cert), &xml[at..]);
    Bergshamra.sign(&template, key).unwrap()
}

/// What goes into a Response; each test changes one field.
#[derive(Clone)]
struct Answer {
    issuer: String,
    audience: String,
    recipient: String,
    destination: String,
    in_response_to: String,
    not_on_or_after: i64,
    name_id: String,
    attributes: Vec<(String, Vec<String>)>,
    assertion_id: String,
}

impl Answer {
    fn new(s: &TestServer, request_id: &str, person: &Person) -> Answer {
        Answer {
            issuer: IDP.into(),
            audience: format!("{}/sso/corp/saml/metadata", s.issuer(T)),
            recipient: acs(s),
            destination: acs(s),
            in_response_to: request_id.into(),
            not_on_or_after: sesame_core::now() + 300,
            name_id: person.name_id.into(),
            attributes: vec![
                ("mail".into(), vec![person.email.into()]),
                ("displayName".into(), vec![person.name.into()]),
                (
                    "memberOf".into(),
                    person.groups.iter().map(|g| g.to_string()).collect(),
                ),
            ],
            assertion_id: format!("_a{}", hex::encode(sesame_core::crypto::random_bytes::<12>())),
        }
    }

    fn assertion(&self) -> String {
        let now = sesame_core::now();
        let attrs: String = self
            .attributes
            .iter()
            .map(|(n, vs)| {
                let values: String = vs
                    .iter()
                    .map(|v| format!("<saml:AttributeValue>{v}</saml:AttributeValue>"))
                    .collect();
                format!("<saml:Attribute Name=\"{n}\">{values}</saml:Attribute>")
            })
            .collect();
        format!(
            "<saml:Assertion xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\" ID=\"{id}\" Version=\"2.0\" IssueInstant=\"{now}\">\
<saml:Issuer>{issuer}</saml:Issuer>\
<saml:Subject><saml:NameID Format=\"urn:oasis:names:tc:SAML:2.0:nameid-format:persistent\">{name_id}</saml:NameID>\
<saml:SubjectConfirmation Method=\"urn:oasis:names:tc:SAML:2.0:cm:bearer\">\
<saml:SubjectConfirmationData InResponseTo=\"{irt}\" NotOnOrAfter=\"{end}\" Recipient=\"{recipient}\"/>\
</saml:SubjectConfirmation></saml:Subject>\
<saml:Conditions NotBefore=\"{start}\" NotOnOrAfter=\"{end}\"><saml:AudienceRestriction><saml:Audience>{aud}</saml:Audience></saml:AudienceRestriction></saml:Conditions>\
<saml:AuthnStatement AuthnInstant=\"{now}\"><saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:Password</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>\
<saml:AttributeStatement>{attrs}</saml:AttributeStatement>\
</saml:Assertion>",
            id = self.assertion_id,
            now = format_instant(now),
            issuer = self.issuer,
            name_id = self.name_id,
            irt = self.in_response_to,
            end = format_instant(self.not_on_or_after),
            start = format_instant(now - 30),
            recipient = self.recipient,
            aud = self.audience,
        )
    }

    /// The Response around `assertion` (unsigned), with ID `_r…`.
    fn response(&self, assertion: &str) -> String {
        format!(
            "<samlp:Response xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\" xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\" \
ID=\"_r{}\" Version=\"2.0\" IssueInstant=\"{}\" Destination=\"{}\" InResponseTo=\"{}\">\
<saml:Issuer>{}</saml:Issuer>\
<samlp:Status><samlp:StatusCode Value=\"urn:oasis:names:tc:SAML:2.0:status:Success\"/></samlp:Status>\
{assertion}</samlp:Response>",
            self.assertion_id,
            format_instant(sesame_core::now()),
            self.destination,
            self.in_response_to,
            self.issuer,
        )
    }

    fn response_id(&self) -> String {
        format!("_r{}", self.assertion_id)
    }

    /// The usual shape: the assertion signed, in an unsigned Response.
    fn signed(&self, idp: &Idp) -> String {
        self.response(&idp.sign(&self.assertion(), &self.assertion_id))
    }
}

struct Person {
    name_id: &'static str,
    email: &'static str,
    name: &'static str,
    groups: &'static [&'static str],
}

const ALICE: Person = Person {
    name_id: "idp-alice-7f3a",
    email: "alice@acme.test",
    name: "Alice Liddell",
    groups: &["admins", "staff"],
};

// ---------------------------------------------------------------------------------------------
// Sesame's side

fn acs(s: &TestServer) -> String {
    format!("{}/sso/corp/saml/acs", s.issuer(T))
}

struct Rp {
    id: String,
    secret: String,
}

async fn new_rp(s: &TestServer) -> Rp {
    let (status, resp) = s
        .admin(
            Method::POST,
            &format!("/tenants/{T}/clients"),
            Some(json!({ "name": "App", "redirect_uris": [CB], "first_party": true })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{resp}");
    Rp {
        id: resp["client"]["client_id"].as_str().unwrap().to_owned(),
        secret: resp["client_secret"].as_str().unwrap().to_owned(),
    }
}

/// A SAML connection to the test IdP, by hand (no metadata): mail / displayName / memberOf.
async fn corp(s: &TestServer, idp: &Idp, extra: Value) -> Value {
    let mut spec = json!({
        "id": "corp",
        "kind": "saml",
        "display_name": "Acme Corp",
        "idp_entity_id": IDP,
        "sso_url": SSO_URL,
        "idp_certificates": [B64STD.encode(&idp.cert)],
        "email_claim": "mail",
        "display_name_claim": "displayName",
        "groups_claim": "memberOf",
        "admin_groups": ["admins"],
        "email_domains": ["acme.test"],
        "trusted_email": true,
    });
    spec.as_object_mut()
        .unwrap()
        .extend(extra.as_object().cloned().unwrap_or_default());
    let (status, body) = s
        .admin(Method::POST, &format!("/tenants/{T}/sso"), Some(spec))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

fn pkce() -> (String, String) {
    let verifier = B64.encode(sesame_core::crypto::random_bytes::<32>());
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    (verifier, B64.encode(digest.as_ref()))
}

fn authorize_url(s: &TestServer, rp: &Rp, challenge: &str) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.extend_pairs([
        ("client_id", rp.id.as_str()),
        ("redirect_uri", CB),
        ("response_type", "code"),
        ("scope", "openid profile email groups"),
        ("state", "app-state"),
        ("nonce", "app-nonce"),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ]);
    format!("{}/authorize?{}", s.issuer(T), q.finish())
}

/// The AuthnRequest as the IdP receives it over HTTP-Redirect.
struct AtIdp {
    request_id: String,
    relay_state: String,
    xml: String,
}

/// From the application's request, through the sign-in page's button, to the IdP.
async fn to_idp(s: &TestServer, b: &Browser, rp: &Rp, challenge: &str) -> AtIdp {
    let login = b.get(&authorize_url(s, rp, challenge)).await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.body);
    let href = login.sso_button("corp").expect("a button for the connection");
    assert!(login.text().contains("Sign in with Acme Corp"), "{}", login.body);
    let start = b.get(&href).await;
    let at_idp = start.location().to_owned();
    assert!(at_idp.starts_with(&format!("{SSO_URL}?SAMLRequest=")), "{at_idp}");
    let q = query_of(&at_idp);
    assert_eq!(q["SigAlg"], saml::RSA_SHA256);
    assert!(q["Signature"].len() > 300, "an RSA signature");
    let deflated = B64STD.decode(&q["SAMLRequest"]).unwrap();
    let mut xml = String::new();
    flate2::read::DeflateDecoder::new(&deflated[..])
        .read_to_string(&mut xml)
        .unwrap();
    let id_at = xml.find(" ID=\"").unwrap() + 5;
    let request_id = xml[id_at..id_at + xml[id_at..].find('"').unwrap()].to_owned();
    AtIdp {
        request_id,
        relay_state: q["RelayState"].clone(),
        xml,
    }
}

async fn post_acs(s: &TestServer, b: &Browser, response_xml: &str, relay_state: &str) -> Page {
    b.post(
        &acs(s),
        &[
            ("SAMLResponse", &B64STD.encode(response_xml)),
            ("RelayState", relay_state),
        ],
    )
    .await
}

async fn app_tokens(s: &TestServer, rp: &Rp, page: &Page, verifier: &str) -> Value {
    let location = page.location();
    assert!(location.starts_with(CB), "{location}");
    let q = query_of(location);
    let code = q.get("code").expect("a code").clone();
    let (status, _, body) = s
        .post_form(
            T,
            "/token",
            Some((&rp.id, &rp.secret)),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", CB),
                ("code_verifier", verifier),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn sso_user(s: &TestServer, user: &str) -> Value {
    let (status, body) = s
        .admin(Method::GET, &format!("/tenants/{T}/users/{user}/sso"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

struct Setup {
    s: TestServer,
    idp: Idp,
    rp: Rp,
}

async fn setup() -> Setup {
    let s = TestServer::sqlite().await;
    let idp = Idp::new();
    corp(&s, &idp, json!({})).await;
    let rp = new_rp(&s).await;
    Setup { s, idp, rp }
}

/// A fresh browser at the IdP, and the answer the IdP would give it for Alice.
async fn flow(x: &Setup) -> (Browser, AtIdp, Answer) {
    let b = Browser::new();
    let (_, challenge) = pkce();
    let at = to_idp(&x.s, &b, &x.rp, &challenge).await;
    let answer = Answer::new(&x.s, &at.request_id, &ALICE);
    (b, at, answer)
}

/// No user was created for anyone (a refused sign-in leaves nothing behind).
async fn no_users(s: &TestServer) {
    let (status, body) = s.admin(Method::GET, &format!("/tenants/{T}/users"), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let users = body["users"].as_array().cloned().unwrap_or_default();
    assert!(users.is_empty(), "{body}");
}

// ---------------------------------------------------------------------------------------------
// Tests

#[tokio::test]
async fn sign_in_creates_the_user_then_links_groups_and_admin_follow() {
    let x = setup().await;
    let (s, idp, rp) = (&x.s, &x.idp, &x.rp);

    let b = Browser::new();
    let (verifier, challenge) = pkce();
    let at = to_idp(s, &b, rp, &challenge).await;
    // The AuthnRequest names Sesame's entity id and ACS, and the IdP's SSO URL.
    assert!(
        at.xml
            .contains(&format!("AssertionConsumerServiceURL=\"{}\"", acs(s))),
        "{}",
        at.xml
    );
    assert!(
        at.xml.contains(&format!("Destination=\"{SSO_URL}\"")),
        "{}",
        at.xml
    );
    assert!(
        at.xml.contains(&format!(
            "<saml:Issuer>{}/sso/corp/saml/metadata</saml:Issuer>",
            s.issuer(T)
        )),
        "{}",
        at.xml
    );
    let answer = Answer::new(s, &at.request_id, &ALICE);
    let page = post_acs(s, &b, &answer.signed(idp), &at.relay_state).await;
    let tokens = app_tokens(s, rp, &page, &verifier).await;
    let (_, claims) = jwt_parts(tokens["id_token"].as_str().unwrap());
    assert_eq!(claims["amr"], json!(["fed"]));
    assert_eq!(claims["groups"], json!(["admins", "staff"]));
    let sub = claims["sub"].as_str().unwrap().to_owned();
    let (_, user) = s
        .admin(Method::GET, &format!("/tenants/{T}/users/{sub}"), None)
        .await;
    assert_eq!(user["username"], "alice@acme.test");
    assert_eq!(user["name"], "Alice Liddell");
    let info = sso_user(s, &sub).await;
    assert_eq!(info["admin_by_sso"], true, "{info}");
    assert_eq!(
        info["external_identities"],
        json!([{ "connection": "corp", "subject": ALICE.name_id }])
    );

    // A second sign-in (another browser, the Response signed as a whole this time) links to
    // the same user; leaving the admin group removes the admin flag SSO set.
    let (b2, at2, mut answer2) = flow(&x).await;
    answer2.attributes[2].1 = vec!["staff".into()];
    let response = answer2.response(&answer2.assertion());
    let signed = idp.sign(&response, &answer2.response_id());
    let (verifier2, _) = pkce();
    let page = post_acs(s, &b2, &signed, &at2.relay_state).await;
    let code_location = page.location().to_owned();
    assert!(code_location.starts_with(CB), "{code_location}");
    let _ = verifier2;
    let info = sso_user(s, &sub).await;
    assert_eq!(info["groups"], json!(["staff"]), "{info}");
    assert_eq!(info["admin_by_sso"], false, "{info}");
    let (_, list) = s.admin(Method::GET, &format!("/tenants/{T}/users"), None).await;
    assert_eq!(list["users"].as_array().map(Vec::len), Some(1), "{list}");
}

#[tokio::test]
async fn sp_metadata_names_the_acs_and_the_signing_certificate() {
    let x = setup().await;
    let resp =
        x.s.http
            .get(format!("{}/sso/corp/saml/metadata", x.s.issuer(T)))
            .send()
            .await
            .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "application/samlmetadata+xml");
    let xml = resp.text().await.unwrap();
    assert!(
        xml.contains(&format!("entityID=\"{}/sso/corp/saml/metadata\"", x.s.issuer(T))),
        "{xml}"
    );
    assert!(xml.contains(&format!("Location=\"{}\"", acs(&x.s))), "{xml}");
    assert!(xml.contains("AuthnRequestsSigned=\"true\""), "{xml}");
    let (_, view) =
        x.s.admin(Method::GET, &format!("/tenants/{T}/sso/corp"), None)
            .await;
    let cert = view["sp_certificate"].as_str().unwrap();
    assert!(xml.contains(cert), "{xml}");
    // The private key is never shown.
    assert!(!view.to_string().contains("PRIVATE"), "{view}");
    let missing =
        x.s.http
            .get(format!("{}/sso/nope/saml/metadata", x.s.issuer(T)))
            .send()
            .await
            .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_response_without_the_cookie_is_posted_again_from_sesame_and_refused_without_it() {
    let x = setup().await;
    let (b, at, answer) = flow(&x).await;
    let body = B64STD.encode(answer.signed(&x.idp));
    // A cross-site POST may come without the SameSite=Lax cookie: the ACS posts it again.
    let cookieless = Browser::new();
    let page = cookieless
        .post(
            &acs(&x.s),
            &[("SAMLResponse", &body), ("RelayState", &at.relay_state)],
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_eq!(page.hidden("resubmitted").as_deref(), Some("1"));
    assert_eq!(page.hidden("SAMLResponse").as_deref(), Some(body.as_str()));
    // Posted again without a cookie (another browser): refused.
    let page = cookieless
        .post(
            &acs(&x.s),
            &[
                ("SAMLResponse", &body),
                ("RelayState", &at.relay_state),
                ("resubmitted", "1"),
            ],
        )
        .await;
    page.refused("started in another browser");
    // The browser that started it gets through with the same form.
    let page = b
        .post(
            &acs(&x.s),
            &[
                ("SAMLResponse", &body),
                ("RelayState", &at.relay_state),
                ("resubmitted", "1"),
            ],
        )
        .await;
    assert!(page.location().starts_with(CB));
}

/// Each check of the ACS, one Response failing it.
#[tokio::test]
async fn responses_failing_a_check_are_refused() {
    let x = setup().await;
    let other = Idp::new();
    type Make = fn(&Setup, &Idp, &AtIdp, Answer) -> String;
    let cases: Vec<(&str, Make, &str)> = vec![
        (
            "missing signature",
            |_, _, _, a| a.response(&a.assertion()),
            "it is not signed",
        ),
        (
            "bad signature (content changed after signing)",
            |x, _, _, a| a.signed(&x.idp).replace(ALICE.name_id, "idp-mallory-1"),
            "signature is not valid",
        ),
        (
            "signed by another IdP's key",
            |_, other, _, a| a.signed(other),
            "signature is not valid",
        ),
        (
            "wrong issuer",
            |x, _, _, mut a| {
                a.issuer = "https://evil.test/saml".into();
                a.signed(&x.idp)
            },
            "Issuer is not the connection's IdP",
        ),
        (
            "wrong audience",
            |x, _, _, mut a| {
                a.audience = "https://other-sp.test".into();
                a.signed(&x.idp)
            },
            "Audience is not this connection",
        ),
        (
            "wrong Recipient",
            |x, _, _, mut a| {
                a.recipient = "https://other-sp.test/acs".into();
                a.signed(&x.idp)
            },
            "Recipient is not this ACS",
        ),
        (
            "wrong Destination",
            |x, _, _, mut a| {
                a.destination = "https://other-sp.test/acs".into();
                a.signed(&x.idp)
            },
            "Destination is not this ACS",
        ),
        (
            "expired (NotOnOrAfter)",
            |x, _, _, mut a| {
                a.not_on_or_after = sesame_core::now() - 120;
                a.signed(&x.idp)
            },
            "expired (NotOnOrAfter)",
        ),
        (
            "InResponseTo of another request",
            |x, _, _, mut a| {
                a.in_response_to = "_another-request".into();
                let assertion = x.idp.sign(&a.assertion(), &a.assertion_id);
                // The envelope keeps the right one: the signed SubjectConfirmationData decides.
                a.in_response_to = String::new();
                a.response(&assertion).replace(" InResponseTo=\"\"", "")
            },
            "InResponseTo is not the request started in this browser",
        ),
        (
            "encrypted assertion",
            |_, _, _, a| {
                a.response("<saml:EncryptedAssertion><xenc:EncryptedData xmlns:xenc=\"http://www.w3.org/2001/04/xmlenc#\"/></saml:EncryptedAssertion>")
            },
            "does not accept",
        ),
        (
            "status other than Success",
            |x, _, _, a| {
                a.signed(&x.idp).replace(
                    "urn:oasis:names:tc:SAML:2.0:status:Success",
                    "urn:oasis:names:tc:SAML:2.0:status:Responder",
                )
            },
            "did not sign you in (Responder)",
        ),
    ];
    for (name, make, reason) in cases {
        let (b, at, answer) = flow(&x).await;
        let response = make(&x, &other, &at, answer);
        let page = post_acs(&x.s, &b, &response, &at.relay_state).await;
        assert!(
            page.status.is_client_error() || page.status.is_server_error(),
            "{name}: accepted: {} {}",
            page.status,
            page.body
        );
        assert!(
            page.text().contains(reason),
            "{name}: the page does not say '{reason}': {}",
            page.text()
        );
    }
    // The RelayState of another sign-in.
    let (b, _, answer) = flow(&x).await;
    post_acs(&x.s, &b, &answer.signed(&x.idp), "not-the-relay-state")
        .await
        .refused("does not belong to the sign-in started in this browser");
    no_users(&x.s).await;
}

/// Signature wrapping: a validly signed Response or assertion, rearranged so that a reader
/// looking the assertion up by name or position would take an unsigned one.
#[tokio::test]
async fn signature_wrapping_is_refused() {
    let x = setup().await;
    type Make = fn(&Setup, Answer) -> String;
    let cases: Vec<(&str, Make)> = vec![
        ("an unsigned assertion before the signed one", |x, a| {
            let signed = x.idp.sign(&a.assertion(), &a.assertion_id);
            let mut e = a.clone();
            e.name_id = "idp-mallory-1".into();
            e.assertion_id = "_evil".into();
            a.response(&format!("{}{signed}", e.assertion()))
        }),
        (
            "the signed assertion moved into Extensions, an unsigned one in its place",
            |x, a| {
                let signed = x.idp.sign(&a.assertion(), &a.assertion_id);
                let mut e = a.clone();
                e.name_id = "idp-mallory-1".into();
                e.assertion_id = "_evil".into();
                a.response(&e.assertion()).replacen(
                    "<samlp:Status>",
                    &format!("<samlp:Extensions>{signed}</samlp:Extensions><samlp:Status>"),
                    1,
                )
            },
        ),
        (
            "the signed assertion in the signature's Object, an unsigned one in its place",
            |x, a| {
                let signed = x.idp.sign(&a.assertion(), &a.assertion_id);
                let mut e = a.clone();
                e.name_id = "idp-mallory-1".into();
                // The evil assertion carries the signature (whose Reference names the original,
                // now inside the Signature's Object).
                let sig_start = signed.find("<ds:Signature").unwrap();
                let sig_end = signed.find("</ds:Signature>").unwrap();
                let signature = &signed[sig_start..sig_end];
                let without_sig = format!(
                    "{}{}",
                    &signed[..sig_start],
                    &signed[sig_end + "</ds:Signature>".len()..]
                );
                let wrapped_sig = format!("{signature}<ds:Object>{without_sig}</ds:Object></ds:Signature>");
                let mut evil = e.assertion();
                evil = evil.replacen("</saml:Issuer>", &format!("</saml:Issuer>{wrapped_sig}"), 1);
                a.response(&evil)
            },
        ),
        (
            "a Response whose signature covers another Response (the original, wrapped)",
            |x, a| {
                // The original Response signed as a whole, then put inside a new Response's
                // Extensions; the outer Response carries an unsigned evil assertion.
                let original = x.idp.sign(&a.response(&a.assertion()), &a.response_id());
                let mut e = a.clone();
                e.name_id = "idp-mallory-1".into();
                e.assertion_id = "_evil".into();
                let outer = e.response(&e.assertion()).replace(&e.response_id(), "_outer");
                outer.replacen(
                    "<samlp:Status>",
                    &format!("<samlp:Extensions>{original}</samlp:Extensions><samlp:Status>"),
                    1,
                )
            },
        ),
        (
            "a signed Response whose reference names a different ID than the assertion used",
            |x, a| {
                // Signed Response with no assertion, then an unsigned assertion appended
                // after the signature was made.
                let empty = a.response("");
                let signed = x.idp.sign(&empty, &a.response_id());
                let mut e = a.clone();
                e.name_id = "idp-mallory-1".into();
                e.assertion_id = "_evil".into();
                signed.replace(
                    "</samlp:Response>",
                    &format!("{}</samlp:Response>", e.assertion()),
                )
            },
        ),
    ];
    for (name, make) in cases {
        let (b, at, answer) = flow(&x).await;
        let response = make(&x, answer);
        let page = post_acs(&x.s, &b, &response, &at.relay_state).await;
        assert!(
            page.status.is_client_error() || page.status.is_server_error(),
            "{name}: accepted: {} {}",
            page.status,
            page.body
        );
        assert!(
            page.text().contains("failed Sesame's checks"),
            "{name}: {}",
            page.text()
        );
    }
    no_users(&x.s).await;
}

/// A Response is used once: again in the same browser (the cookie put back, as a thief with
/// both would), and on another replica sharing the store.
#[tokio::test]
async fn a_replayed_assertion_is_refused_on_every_replica() {
    let mut servers = vec![TestServer::sqlite().await];
    if let Some(pg) = TestServer::postgres().await {
        servers.push(pg);
    }
    for s in servers {
        let idp = Idp::new();
        corp(&s, &idp, json!({})).await;
        let rp = new_rp(&s).await;
        let x = Setup { s, idp, rp };
        let (b, at, answer) = flow(&x).await;
        let response = answer.signed(&x.idp);
        let (path, cookie) = b.cookie("sesame_sso").expect("the pending sign-in");
        let page = post_acs(&x.s, &b, &response, &at.relay_state).await;
        assert!(page.location().starts_with(CB), "{}", page.body);
        b.set_cookie(&path, "sesame_sso", &cookie);
        post_acs(&x.s, &b, &response, &at.relay_state)
            .await
            .refused("was used already");

        // A second sesamed on the same store (same public URL and master key): the replay is
        // refused there too.
        if x.s
            .config
            .store
            .as_deref()
            .is_some_and(|u| u.starts_with("postgres"))
        {
            let (b, at, answer) = flow(&x).await;
            let response = answer.signed(&x.idp);
            let (path, cookie) = b.cookie("sesame_sso").unwrap();
            let page = post_acs(&x.s, &b, &response, &at.relay_state).await;
            assert!(page.location().starts_with(CB), "{}", page.body);
            let dir = tempfile::tempdir().unwrap();
            let mut config = x.s.config.clone();
            config.data_dir = dir.path().to_path_buf();
            config.public_url = Some(x.s.base.clone());
            let replica = sesame_server::start(&config, false)
                .await
                .expect("a second sesamed");
            b.set_cookie(&path, "sesame_sso", &cookie);
            let url = format!("http://{}/t/{T}/sso/corp/saml/acs", replica.addr);
            let page = b
                .post(
                    &url,
                    &[
                        ("SAMLResponse", &B64STD.encode(&response)),
                        ("RelayState", &at.relay_state),
                    ],
                )
                .await;
            page.refused("was used already");
        }
    }
}

#[tokio::test]
async fn connections_from_metadata_and_by_hand_are_checked() {
    let s = TestServer::sqlite().await;
    let idp = Idp::new();
    let cert = B64STD.encode(&idp.cert);
    let metadata = format!(
        "<md:EntityDescriptor xmlns:md=\"urn:oasis:names:tc:SAML:2.0:metadata\" xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\" entityID=\"{IDP}\">\
<md:IDPSSODescriptor protocolSupportEnumeration=\"urn:oasis:names:tc:SAML:2.0:protocol\">\
<md:KeyDescriptor use=\"signing\"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>\
<md:SingleSignOnService Binding=\"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST\" Location=\"{SSO_URL}\"/>\
</md:IDPSSODescriptor></md:EntityDescriptor>"
    );
    let (status, body) = s
        .admin(
            Method::POST,
            &format!("/tenants/{T}/sso"),
            Some(json!({ "id": "corp", "kind": "saml", "idp_metadata_xml": metadata })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["idp_entity_id"], IDP);
    assert_eq!(body["sso_binding"], "post");
    assert_eq!(body["idp_certificates"], json!([cert]));
    assert_eq!(body["unique_id_claim"], "NameID");
    let sp_cert = body["sp_certificate"].clone();
    // An update keeps Sesame's key and certificate (the IdP has them).
    let (status, body) = s
        .admin(
            Method::PATCH,
            &format!("/tenants/{T}/sso/corp"),
            Some(json!({ "display_name": "Acme" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["sp_certificate"], sp_cert);

    // HTTP-POST binding: an auto-submitted form carrying a signed AuthnRequest.
    let rp = new_rp(&s).await;
    let b = Browser::new();
    let (_, challenge) = pkce();
    let login = b.get(&authorize_url(&s, &rp, &challenge)).await;
    let start = b.get(&login.sso_button("corp").unwrap()).await;
    assert_eq!(start.status, StatusCode::OK, "{}", start.body);
    let csp = start.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("form-action https://idp.test"), "{csp}");
    let request = String::from_utf8(B64STD.decode(start.hidden("SAMLRequest").unwrap()).unwrap()).unwrap();
    assert!(request.contains("<ds:SignatureValue>"), "{request}");
    assert!(start.hidden("RelayState").is_some());
    let signed = Bergshamra
        .verify(&request, &[B64STD.decode(sp_cert.as_str().unwrap()).unwrap()])
        .expect("the AuthnRequest's signature verifies with the published certificate");
    assert_eq!(signed[0].local_name, "AuthnRequest");

    // Refusals name the problem.
    for (spec, problem) in [
        (json!({ "id": "x1", "kind": "saml" }), "needs idp_certificates"),
        (
            json!({ "id": "x2", "kind": "saml", "idp_entity_id": IDP, "sso_url": SSO_URL, "idp_certificates": ["bm90IGEgY2VydA=="] }),
            "certificate cannot be used",
        ),
        (
            json!({ "id": "x3", "kind": "saml", "idp_metadata_xml": "<x/>" }),
            "metadata cannot be used",
        ),
        (
            json!({ "id": "x4", "kind": "saml", "idp_metadata_url": "http://127.0.0.1:9/metadata" }),
            "cannot be fetched",
        ),
    ] {
        let (status, body) = s
            .admin(Method::POST, &format!("/tenants/{T}/sso"), Some(spec))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(
            body["error_description"].as_str().unwrap().contains(problem),
            "{body}"
        );
    }
}

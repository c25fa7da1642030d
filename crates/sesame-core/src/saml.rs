//! SAML 2.0 service provider (Web Browser SSO profile) for brokered SSO: a connection's settings,
//! the IdP's metadata, Sesame's own metadata, the AuthnRequest (HTTP-Redirect and HTTP-POST
//! bindings) and the checks of a Response at the assertion consumer service. What comes out is
//! the same [`UpstreamIdentity`] an OpenID Connect connection hands to
//! [`federation::sign_in`](crate::federation::sign_in).
//!
//! XML signatures go through [`XmlSignatures`](crate::xmldsig::XmlSignatures); the Response is
//! read only through the element a verified signature's reference points at.

use crate::federation::{ClaimNames, Refusal, UpstreamIdentity};
use crate::keys::SigningKeyPair;
use crate::model::SigningAlg;
use crate::xmldsig::{signature_template, XmlSignatures};
use crate::{Error, Result};
use base64::engine::general_purpose::STANDARD as B64STD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub const PROTOCOL_NS: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
pub const ASSERTION_NS: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
pub const METADATA_NS: &str = "urn:oasis:names:tc:SAML:2.0:metadata";
const DSIG_NS: &str = "http://www.w3.org/2000/09/xmldsig#";
pub const BINDING_REDIRECT: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect";
pub const BINDING_POST: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST";
pub const RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
const STATUS_SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";
const BEARER: &str = "urn:oasis:names:tc:SAML:2.0:cm:bearer";
/// The unique-id attribute name that means the Subject's `NameID` (the default).
pub const NAME_ID: &str = "NameID";
/// Clock skew allowed on `NotBefore` / `NotOnOrAfter`.
pub const SKEW: i64 = 60;
/// The largest SAMLResponse (decoded) and IdP metadata document accepted.
pub const MAX_XML: usize = 256 * 1024;
/// An assertion id is remembered at most this long, whatever the assertion says.
const MAX_REPLAY_WINDOW: i64 = 24 * 3600;

/// How Sesame sends the AuthnRequest to the IdP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SamlBinding {
    /// HTTP-Redirect (SAML Bindings §3.4): DEFLATE, the signature in the query.
    #[default]
    Redirect,
    /// HTTP-POST (SAML Bindings §3.5): an auto-submitted form, the signature enveloped.
    Post,
}

impl SamlBinding {
    pub fn uri(self) -> &'static str {
        match self {
            SamlBinding::Redirect => BINDING_REDIRECT,
            SamlBinding::Post => BINDING_POST,
        }
    }
}

/// The settings only a SAML connection has (the connection's `settings` JSON).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SamlSettings {
    /// Where the IdP metadata came from, when from a URL (fetched again on update).
    pub idp_metadata_url: Option<String>,
    /// The IdP's entity id, compared exactly with the `Issuer`s.
    pub idp_entity_id: String,
    /// The IdP's SingleSignOnService for `sso_binding`.
    pub sso_url: String,
    pub sso_binding: SamlBinding,
    /// The IdP's signing certificates (base64 DER), several for rollover.
    pub idp_certificates: Vec<String>,
    /// Sesame's self-signed certificate for its AuthnRequest key (base64 DER), published in
    /// the SP metadata; the key is the connection's sealed private key.
    pub sp_certificate: String,
}

impl SamlSettings {
    pub fn idp_certificates_der(&self) -> Vec<Vec<u8>> {
        self.idp_certificates
            .iter()
            .filter_map(|c| B64STD.decode(c).ok())
            .collect()
    }
}

/// What an IdP's metadata says Sesame needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdpMetadata {
    pub entity_id: String,
    pub sso_url: String,
    pub sso_binding: SamlBinding,
    /// base64 DER
    pub certificates: Vec<String>,
}

fn parse_xml(xml: &str) -> Result<roxmltree::Document<'_>, String> {
    if xml.len() > MAX_XML {
        return Err("the XML is larger than 256 KiB".into());
    }
    // SAML messages and metadata have no DTD; refusing one keeps entities out altogether.
    if xml.contains("<!DOCTYPE") || xml.contains("<!ENTITY") {
        return Err("the XML has a DTD".into());
    }
    roxmltree::Document::parse(xml).map_err(|e| format!("the XML is not well-formed: {e}"))
}

fn is(node: &roxmltree::Node, ns: &str, name: &str) -> bool {
    node.is_element() && node.tag_name().namespace() == Some(ns) && node.tag_name().name() == name
}

fn child<'a, 'i>(node: roxmltree::Node<'a, 'i>, ns: &str, name: &str) -> Option<roxmltree::Node<'a, 'i>> {
    node.children().find(|c| is(c, ns, name))
}

fn children<'a, 'i>(
    node: roxmltree::Node<'a, 'i>,
    ns: &'a str,
    name: &'a str,
) -> impl Iterator<Item = roxmltree::Node<'a, 'i>> + 'a {
    node.children().filter(move |c| is(c, ns, name))
}

fn text(node: roxmltree::Node) -> String {
    node.descendants()
        .filter(|n| n.is_text())
        .filter_map(|n| n.text())
        .collect::<String>()
        .trim()
        .to_owned()
}

/// Reads an IdP's metadata (SAML Metadata §2.4.3): the first `EntityDescriptor` with an
/// `IDPSSODescriptor`, its SingleSignOnService (HTTP-Redirect preferred, else HTTP-POST) and its
/// signing certificates (`KeyDescriptor` with `use="signing"` or no `use`).
pub fn parse_idp_metadata(xml: &str) -> Result<IdpMetadata> {
    let bad = |m: String| Error::InvalidRequest(format!("the IdP metadata cannot be used: {m}"));
    let doc = parse_xml(xml).map_err(bad)?;
    let entity = doc
        .descendants()
        .find(|n| {
            is(n, METADATA_NS, "EntityDescriptor") && child(*n, METADATA_NS, "IDPSSODescriptor").is_some()
        })
        .ok_or_else(|| bad("it has no EntityDescriptor with an IDPSSODescriptor".into()))?;
    let entity_id = entity
        .attribute("entityID")
        .filter(|e| !e.is_empty())
        .ok_or_else(|| bad("the EntityDescriptor has no entityID".into()))?
        .to_owned();
    let idp = child(entity, METADATA_NS, "IDPSSODescriptor").expect("found above");
    let services: Vec<_> = children(idp, METADATA_NS, "SingleSignOnService").collect();
    let pick = |binding: &str| {
        services
            .iter()
            .find(|s| s.attribute("Binding") == Some(binding))
            .and_then(|s| s.attribute("Location"))
    };
    let (sso_url, sso_binding) = match (pick(BINDING_REDIRECT), pick(BINDING_POST)) {
        (Some(url), _) => (url, SamlBinding::Redirect),
        (None, Some(url)) => (url, SamlBinding::Post),
        _ => {
            return Err(bad(
                "it has no SingleSignOnService with the HTTP-Redirect or HTTP-POST binding".into(),
            ))
        }
    };
    let mut certificates = Vec::new();
    for kd in children(idp, METADATA_NS, "KeyDescriptor") {
        if !matches!(kd.attribute("use"), None | Some("signing")) {
            continue;
        }
        for cert in kd.descendants().filter(|n| is(n, DSIG_NS, "X509Certificate")) {
            let b64: String = text(cert).chars().filter(|c| !c.is_whitespace()).collect();
            certificates.push(normalise_certificate(&b64)?);
        }
    }
    if certificates.is_empty() {
        return Err(bad("it has no signing certificate".into()));
    }
    Ok(IdpMetadata {
        entity_id,
        sso_url: sso_url.to_owned(),
        sso_binding,
        certificates,
    })
}

/// A certificate given as PEM or base64 DER, as base64 DER; an error if it is not an X.509
/// certificate with an RSA or EC key.
pub fn normalise_certificate(input: &str) -> Result<String> {
    let b64: String = input
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<String>()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let der = B64STD
        .decode(&b64)
        .map_err(|_| Error::invalid_request("an IdP certificate is not base64 or PEM"))?;
    bergshamra_keys::loader::load_x509_cert_der(&der)
        .map_err(|e| Error::InvalidRequest(format!("an IdP certificate cannot be used: {e}")))?;
    Ok(B64STD.encode(der))
}

/// A new RSA key for a connection's AuthnRequests and its self-signed certificate (ten years;
/// the IdP pins it from the SP metadata). Returns (PKCS#8 DER, certificate DER).
pub fn generate_sp_key(common_name: &str) -> Result<(Vec<u8>, Vec<u8>)> {
    let pair = SigningKeyPair::generate(SigningAlg::RS256)?;
    let der = pair.to_pkcs8()?;
    let key = rcgen::KeyPair::from_pem_and_sign_algo(
        &crate::xmldsig::pem("PRIVATE KEY", &der),
        &rcgen::PKCS_RSA_SHA256,
    )
    .map_err(|e| Error::Internal(format!("SAML key: {e}")))?;
    let mut params = rcgen::CertificateParams::default();
    let cn: String = common_name.chars().take(64).collect();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(rcgen::DnType::CommonName, cn);
    let now = crate::now();
    params.not_before =
        rcgen::date_time_ymd(1970, 1, 1) + std::time::Duration::from_secs((now - 3600).max(0) as u64);
    params.not_after = params.not_before + std::time::Duration::from_secs(10 * 365 * 86400);
    let cert = params
        .self_signed(&key)
        .map_err(|e| Error::Internal(format!("SAML certificate: {e}")))?;
    Ok((der, cert.der().to_vec()))
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// xs:dateTime in UTC, seconds (SAML Core §1.3.3).
pub fn format_instant(t: i64) -> String {
    let days = t.div_euclid(86400);
    let secs = t.rem_euclid(86400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

// Howard Hinnant's civil-calendar algorithms (proleptic Gregorian).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 } as i64;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses an xs:dateTime (SAML requires UTC, `Z`; an offset is applied; fractions dropped).
pub fn parse_instant(s: &str) -> Option<i64> {
    let s = s.trim();
    let (date, time) = s.split_once('T')?;
    let mut dp = date.splitn(3, '-');
    let y: i64 = dp.next()?.parse().ok()?;
    let m: u32 = dp.next()?.parse().ok()?;
    let d: u32 = dp.next()?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let (clock, offset) = if let Some(c) = time.strip_suffix('Z') {
        (c, 0)
    } else if let Some(i) = time.rfind(['+', '-']) {
        let (c, off) = time.split_at(i);
        let sign = if off.starts_with('-') { -1 } else { 1 };
        let (oh, om) = off[1..].split_once(':')?;
        (
            c,
            sign * (oh.parse::<i64>().ok()? * 3600 + om.parse::<i64>().ok()? * 60),
        )
    } else {
        (time, 0)
    };
    let clock = clock.split('.').next()?;
    let mut cp = clock.splitn(3, ':');
    let h: i64 = cp.next()?.parse().ok()?;
    let mi: i64 = cp.next()?.parse().ok()?;
    let se: i64 = cp.next()?.parse().ok()?;
    if h > 23 || mi > 59 || se > 60 {
        return None;
    }
    Some(days_from_civil(y, m, d) * 86400 + h * 3600 + mi * 60 + se - offset)
}

/// A new AuthnRequest id: an xs:ID (starts with a letter or `_`), 128 random bits.
pub fn new_request_id() -> String {
    format!("_{}", hex::encode(crate::crypto::random_bytes::<16>()))
}

/// The AuthnRequest (SAML Core §3.4.1), unsigned. The ACS is named by URL with the HTTP-POST
/// binding, and NameIDPolicy leaves the format to the IdP.
pub fn authn_request(id: &str, sp_entity_id: &str, acs_url: &str, destination: &str, now: i64) -> String {
    format!(
        "<samlp:AuthnRequest xmlns:samlp=\"{PROTOCOL_NS}\" xmlns:saml=\"{ASSERTION_NS}\" ID=\"{}\" \
Version=\"2.0\" IssueInstant=\"{}\" Destination=\"{}\" AssertionConsumerServiceURL=\"{}\" \
ProtocolBinding=\"{BINDING_POST}\"><saml:Issuer>{}</saml:Issuer>\
<samlp:NameIDPolicy AllowCreate=\"true\"/></samlp:AuthnRequest>",
        xml_escape(id),
        format_instant(now),
        xml_escape(destination),
        xml_escape(acs_url),
        xml_escape(sp_entity_id),
    )
}

/// HTTP-Redirect binding (SAML Bindings §3.4.4.1): the query string
/// `SAMLRequest=…&RelayState=…&SigAlg=…&Signature=…`, the request DEFLATEd and base64'd, the
/// signature RSA-SHA256 over the first three parameters exactly as they appear.
pub fn redirect_query(request_xml: &str, relay_state: &str, key_pkcs8: &[u8]) -> Result<String> {
    use std::io::Write;
    let mut deflate = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    deflate
        .write_all(request_xml.as_bytes())
        .map_err(|e| Error::Internal(format!("deflate: {e}")))?;
    let compressed = deflate
        .finish()
        .map_err(|e| Error::Internal(format!("deflate: {e}")))?;
    let signed: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("SAMLRequest", &B64STD.encode(compressed))
        .append_pair("RelayState", relay_state)
        .append_pair("SigAlg", RSA_SHA256)
        .finish();
    let pair = SigningKeyPair::from_pkcs8(SigningAlg::RS256, key_pkcs8)?;
    let sig = pair.sign(signed.as_bytes())?;
    let tail: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("Signature", &B64STD.encode(sig))
        .finish();
    Ok(format!("{signed}&{tail}"))
}

/// HTTP-POST binding (SAML Bindings §3.5.4): the request with an enveloped signature after its
/// `Issuer` (SAML Core §5.4.2), base64'd for the form's `SAMLRequest`.
pub fn post_request(
    dsig: &dyn XmlSignatures,
    request_xml: &str,
    id: &str,
    key_pkcs8: &[u8],
    certificate: &[u8],
) -> Result<String> {
    let template = request_xml.replacen(
        "</saml:Issuer>",
        &format!("</saml:Issuer>{}", signature_template(id, certificate)),
        1,
    );
    let signed = dsig.sign(&template, key_pkcs8).map_err(Error::Internal)?;
    Ok(B64STD.encode(signed))
}

/// Sesame's SP metadata for one connection (SAML Metadata §2.4.4).
pub fn sp_metadata(sp_entity_id: &str, acs_url: &str, certificate_b64: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
<md:EntityDescriptor xmlns:md=\"{METADATA_NS}\" xmlns:ds=\"{DSIG_NS}\" entityID=\"{}\">\
<md:SPSSODescriptor AuthnRequestsSigned=\"true\" WantAssertionsSigned=\"true\" \
protocolSupportEnumeration=\"{PROTOCOL_NS}\">\
<md:KeyDescriptor use=\"signing\"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{}</ds:X509Certificate>\
</ds:X509Data></ds:KeyInfo></md:KeyDescriptor>\
<md:NameIDFormat>urn:oasis:names:tc:SAML:2.0:nameid-format:persistent</md:NameIDFormat>\
<md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress</md:NameIDFormat>\
<md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified</md:NameIDFormat>\
<md:AssertionConsumerService Binding=\"{BINDING_POST}\" Location=\"{}\" index=\"0\" isDefault=\"true\"/>\
</md:SPSSODescriptor></md:EntityDescriptor>\n",
        xml_escape(sp_entity_id),
        certificate_b64,
        xml_escape(acs_url),
    )
}

/// What the ACS checks a Response against.
pub struct Expected<'a> {
    pub sp_entity_id: &'a str,
    pub acs_url: &'a str,
    pub idp_entity_id: &'a str,
    pub idp_certificates: &'a [Vec<u8>],
    /// The AuthnRequest id from the sealed SSO cookie.
    pub request_id: &'a str,
    pub now: i64,
}

/// Why a Response was refused; the text names the check, never the assertion's content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SamlError {
    /// The IdP answered a status other than Success (its status code's last part).
    Status(String),
    /// Encrypted assertions are not supported.
    Encrypted,
    /// A check failed.
    Invalid(String),
}

impl std::fmt::Display for SamlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SamlError::Status(s) => write!(f, "the IdP answered status {s}"),
            SamlError::Encrypted => f.write_str("the assertion is encrypted, which Sesame does not support"),
            SamlError::Invalid(s) => f.write_str(s),
        }
    }
}

fn invalid(s: impl Into<String>) -> SamlError {
    SamlError::Invalid(s.into())
}

/// An assertion that passed every check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedAssertion {
    pub id: String,
    /// Remember `id` until then (replay).
    pub expires_at: i64,
    pub name_id: String,
    /// Attributes by `Name` (and by `FriendlyName` when no attribute has that as its `Name`):
    /// a string for one value, an array for several.
    pub attributes: Map<String, Value>,
}

fn status_of(response: roxmltree::Node) -> Result<(), SamlError> {
    let code = child(response, PROTOCOL_NS, "Status")
        .and_then(|s| child(s, PROTOCOL_NS, "StatusCode"))
        .and_then(|c| c.attribute("Value"))
        .ok_or_else(|| invalid("the Response has no StatusCode"))?;
    if code != STATUS_SUCCESS {
        let last: String = code
            .rsplit(':')
            .next()
            .unwrap_or("")
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(64)
            .collect();
        return Err(SamlError::Status(last));
    }
    Ok(())
}

fn instant_attr(node: roxmltree::Node, name: &str) -> Result<Option<i64>, SamlError> {
    match node.attribute(name) {
        None => Ok(None),
        Some(v) => parse_instant(v)
            .map(Some)
            .ok_or_else(|| invalid(format!("{name} is not a dateTime"))),
    }
}

/// Checks a SAMLResponse (HTTP-POST binding, SAML Bindings §3.5; Web Browser SSO profile,
/// SAML Profiles §4.1.4.3) and returns its one assertion. `saml_response` is the form field
/// (base64). Only elements a verified signature covers are read for the assertion; the
/// Response's own fields (`Destination`, `InResponseTo`, `Status`) are read from the signed
/// Response when it is signed, else from the envelope and checked all the same.
pub fn read_response(
    dsig: &dyn XmlSignatures,
    saml_response: &str,
    expected: &Expected,
) -> Result<VerifiedAssertion, SamlError> {
    let compact: String = saml_response.chars().filter(|c| !c.is_whitespace()).collect();
    let bytes = B64STD
        .decode(compact)
        .map_err(|_| invalid("SAMLResponse is not base64"))?;
    let xml = String::from_utf8(bytes).map_err(|_| invalid("SAMLResponse is not UTF-8"))?;
    let doc = parse_xml(&xml).map_err(invalid)?;
    let root = doc.root_element();
    if !is(&root, PROTOCOL_NS, "Response") {
        return Err(invalid("the message is not a samlp:Response"));
    }
    if doc
        .descendants()
        .any(|n| is(&n, ASSERTION_NS, "EncryptedAssertion"))
    {
        return Err(SamlError::Encrypted);
    }
    // One assertion, wherever it is: a second one (signed or not, hidden in Extensions or an
    // Object) is what signature-wrapping attacks bring along.
    let assertions = doc
        .descendants()
        .filter(|n| is(n, ASSERTION_NS, "Assertion"))
        .count();
    if assertions != 1 {
        return Err(invalid(format!(
            "the Response holds {assertions} assertions, not one"
        )));
    }
    let signed = dsig
        .verify(&xml, expected.idp_certificates)
        .map_err(|e| invalid(format!("the Response: {e}")))?;
    let response_signed = signed
        .iter()
        .find(|s| s.is_document_element && s.namespace == PROTOCOL_NS && s.local_name == "Response");
    let assertion_signed = signed
        .iter()
        .find(|s| s.parent_is_document_element && s.namespace == ASSERTION_NS && s.local_name == "Assertion");
    // The signed Response (its canonical form), or the envelope when only the assertion is signed.
    let response_text = response_signed.map(|s| s.canonical.clone());
    let response_doc = match &response_text {
        Some(t) => Some(parse_xml(t).map_err(invalid)?),
        None => None,
    };
    let response = response_doc.as_ref().map_or(root, |d| d.root_element());
    // SAML Bindings §3.5.5.2: a signed message names its Destination; when present it must be
    // this ACS.
    match response.attribute("Destination") {
        Some(d) if d != expected.acs_url => {
            return Err(invalid("the Response's Destination is not this ACS"))
        }
        None if response_signed.is_some() => return Err(invalid("the signed Response has no Destination")),
        _ => {}
    }
    if let Some(irt) = response.attribute("InResponseTo") {
        if irt != expected.request_id {
            return Err(invalid(
                "the Response's InResponseTo is not the request started in this browser",
            ));
        }
    }
    if let Some(issuer) = child(response, ASSERTION_NS, "Issuer") {
        if text(issuer) != expected.idp_entity_id {
            return Err(invalid("the Response's Issuer is not the connection's IdP"));
        }
    }
    status_of(response)?;

    // The assertion: inside the signed Response, else the signed assertion itself.
    let assertion_doc;
    let assertion = match (&response_doc, assertion_signed) {
        (Some(d), _) => child(d.root_element(), ASSERTION_NS, "Assertion")
            .ok_or_else(|| invalid("the signed Response holds no assertion"))?,
        (None, Some(a)) => {
            assertion_doc = parse_xml(&a.canonical).map_err(invalid)?;
            assertion_doc.root_element()
        }
        (None, None) => {
            return Err(invalid(
                "no valid signature of the IdP covers the assertion (unsigned assertions are refused)",
            ))
        }
    };
    check_assertion(assertion, expected)
}

fn check_assertion(a: roxmltree::Node, x: &Expected) -> Result<VerifiedAssertion, SamlError> {
    let now = x.now;
    if !is(&a, ASSERTION_NS, "Assertion") || a.attribute("Version") != Some("2.0") {
        return Err(invalid("the signed element is not a SAML 2.0 assertion"));
    }
    let id = a
        .attribute("ID")
        .filter(|i| !i.is_empty() && i.len() <= 256)
        .ok_or_else(|| invalid("the assertion has no ID"))?
        .to_owned();
    let issuer = child(a, ASSERTION_NS, "Issuer").ok_or_else(|| invalid("the assertion has no Issuer"))?;
    if text(issuer) != x.idp_entity_id {
        return Err(invalid("the assertion's Issuer is not the connection's IdP"));
    }
    // Conditions (SAML Core §2.5.1): the validity window and the audience.
    let conditions =
        child(a, ASSERTION_NS, "Conditions").ok_or_else(|| invalid("the assertion has no Conditions"))?;
    if let Some(nb) = instant_attr(conditions, "NotBefore")? {
        if now + SKEW < nb {
            return Err(invalid("the assertion is not valid yet (NotBefore)"));
        }
    }
    let cond_end = instant_attr(conditions, "NotOnOrAfter")?;
    if let Some(end) = cond_end {
        if now - SKEW >= end {
            return Err(invalid("the assertion has expired (NotOnOrAfter)"));
        }
    }
    let restrictions: Vec<_> = children(conditions, ASSERTION_NS, "AudienceRestriction").collect();
    if restrictions.is_empty() {
        return Err(invalid("the assertion has no AudienceRestriction"));
    }
    // Each AudienceRestriction must name Sesame (SAML Core §2.5.1.4).
    for r in &restrictions {
        if !children(*r, ASSERTION_NS, "Audience").any(|au| text(au) == x.sp_entity_id) {
            return Err(invalid("the assertion's Audience is not this connection"));
        }
    }
    // Subject and its bearer confirmation (SAML Profiles §4.1.4.2).
    let subject = child(a, ASSERTION_NS, "Subject").ok_or_else(|| invalid("the assertion has no Subject"))?;
    let name_id = child(subject, ASSERTION_NS, "NameID")
        .map(text)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| invalid("the assertion's Subject has no NameID"))?;
    let mut confirmed_until = None;
    let mut last_reason = "the assertion has no bearer SubjectConfirmation";
    for sc in children(subject, ASSERTION_NS, "SubjectConfirmation") {
        if sc.attribute("Method") != Some(BEARER) {
            continue;
        }
        let Some(data) = child(sc, ASSERTION_NS, "SubjectConfirmationData") else {
            last_reason = "the SubjectConfirmation has no SubjectConfirmationData";
            continue;
        };
        if data.attribute("Recipient") != Some(x.acs_url) {
            last_reason = "the SubjectConfirmationData's Recipient is not this ACS";
            continue;
        }
        if data.attribute("InResponseTo") != Some(x.request_id) {
            last_reason =
                "the SubjectConfirmationData's InResponseTo is not the request started in this browser";
            continue;
        }
        let Some(end) = instant_attr(data, "NotOnOrAfter")? else {
            last_reason = "the SubjectConfirmationData has no NotOnOrAfter";
            continue;
        };
        if now - SKEW >= end {
            last_reason = "the SubjectConfirmationData has expired (NotOnOrAfter)";
            continue;
        }
        if let Some(nb) = instant_attr(data, "NotBefore")? {
            if now + SKEW < nb {
                last_reason = "the SubjectConfirmationData is not valid yet (NotBefore)";
                continue;
            }
        }
        confirmed_until = Some(end);
        break;
    }
    let confirmed_until = confirmed_until.ok_or_else(|| invalid(last_reason))?;
    let mut attributes = Map::new();
    let mut friendly = Map::new();
    for statement in children(a, ASSERTION_NS, "AttributeStatement") {
        for attr in children(statement, ASSERTION_NS, "Attribute") {
            let values: Vec<Value> = children(attr, ASSERTION_NS, "AttributeValue")
                .map(|v| Value::String(text(v)))
                .collect();
            let value = match values.len() {
                0 => continue,
                1 => values.into_iter().next().expect("one"),
                _ => Value::Array(values),
            };
            if let Some(name) = attr.attribute("Name") {
                attributes.insert(name.to_owned(), value.clone());
            }
            if let Some(name) = attr.attribute("FriendlyName") {
                friendly.insert(name.to_owned(), value);
            }
        }
    }
    for (k, v) in friendly {
        attributes.entry(k).or_insert(v);
    }
    let end = cond_end.map_or(confirmed_until, |c| c.min(confirmed_until));
    Ok(VerifiedAssertion {
        id,
        expires_at: (end + SKEW).min(now + MAX_REPLAY_WINDOW),
        name_id,
        attributes,
    })
}

/// The identity an assertion describes, by the connection's attribute names. The unique id
/// `NameID` (the default) is the Subject's NameID. SAML has no `email_verified`: an email is
/// trusted for linking only when the connection is trusted for email.
pub fn identity(names: &ClaimNames, assertion: &VerifiedAssertion) -> Result<UpstreamIdentity, Refusal> {
    let mut claims = assertion.attributes.clone();
    claims.remove("email_verified");
    claims.insert(NAME_ID.into(), Value::String(assertion.name_id.clone()));
    // A single-valued attribute may hold an array when the IdP sends it twice; the first wins.
    let mut flat = Map::new();
    for (k, v) in claims {
        let v = match (&v, Some(k.as_str()) == names.groups.as_deref()) {
            (Value::Array(items), false) => items.first().cloned().unwrap_or(Value::Null),
            _ => v,
        };
        flat.insert(k, v);
    }
    crate::federation::identity_from_claims(names, &flat)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_round_trip() {
        for t in [0, 951_782_400, 1_796_000_000, 4_102_444_800] {
            assert_eq!(parse_instant(&format_instant(t)), Some(t));
        }
        assert_eq!(
            parse_instant("2026-12-02T09:22:17.123Z"),
            parse_instant("2026-12-02T09:22:17Z")
        );
        assert_eq!(
            parse_instant("2026-12-02T10:22:17+01:00"),
            parse_instant("2026-12-02T09:22:17Z")
        );
        assert_eq!(parse_instant("yesterday"), None);
    }

    #[test]
    fn metadata_is_read() {
        let (_, cert) = generate_sp_key("idp").unwrap();
        let c = B64STD.encode(&cert);
        let xml = format!(
            "<md:EntityDescriptor xmlns:md=\"{METADATA_NS}\" xmlns:ds=\"{DSIG_NS}\" entityID=\"https://idp.example/\">\
<md:IDPSSODescriptor protocolSupportEnumeration=\"{PROTOCOL_NS}\">\
<md:KeyDescriptor use=\"encryption\"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>AAAA</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>\
<md:KeyDescriptor use=\"signing\"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>\n{c}\n</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>\
<md:SingleSignOnService Binding=\"{BINDING_POST}\" Location=\"https://idp.example/post\"/>\
<md:SingleSignOnService Binding=\"{BINDING_REDIRECT}\" Location=\"https://idp.example/redirect\"/>\
</md:IDPSSODescriptor></md:EntityDescriptor>"
        );
        let m = parse_idp_metadata(&xml).unwrap();
        assert_eq!(m.entity_id, "https://idp.example/");
        assert_eq!(m.sso_url, "https://idp.example/redirect");
        assert_eq!(m.sso_binding, SamlBinding::Redirect);
        assert_eq!(m.certificates, vec![c]);
        assert!(parse_idp_metadata("<!DOCTYPE x [<!ENTITY a 'b'>]><x/>").is_err());
    }

    /// What `XmlSignatures::verify` hands over is the element the signature references, read
    /// from the bytes it covered, whatever else the document holds.
    #[test]
    fn verify_returns_only_the_signed_element() {
        use crate::xmldsig::{signature_template, Bergshamra, XmlSignatures};
        let (key, cert) = generate_sp_key("idp").unwrap();
        let assertion = |id: &str, who: &str| {
            format!(
                "<saml:Assertion xmlns:saml=\"{ASSERTION_NS}\" ID=\"{id}\" Version=\"2.0\">\
<saml:Issuer>idp</saml:Issuer><saml:Subject><saml:NameID>{who}</saml:NameID></saml:Subject></saml:Assertion>"
            )
        };
        let xml = assertion("_good", "alice");
        let template = xml.replacen(
            "</saml:Issuer>",
            &format!("</saml:Issuer>{}", signature_template("_good", &cert)),
            1,
        );
        let good = Bergshamra.sign(&template, &key).unwrap();
        let response = |body: &str| {
            format!("<samlp:Response xmlns:samlp=\"{PROTOCOL_NS}\" ID=\"_r\">{body}</samlp:Response>")
        };

        // An unsigned assertion before the signed one is not what comes out.
        let doc = response(&format!("{}{good}", assertion("_evil", "mallory")));
        let signed = Bergshamra.verify(&doc, std::slice::from_ref(&cert)).unwrap();
        assert_eq!(signed.len(), 1);
        assert_eq!(
            (signed[0].id.as_str(), signed[0].local_name.as_str()),
            ("_good", "Assertion")
        );
        assert!(signed[0].canonical.contains("alice") && !signed[0].canonical.contains("mallory"));
        assert!(!signed[0].canonical.contains("SignatureValue"));
        assert!(signed[0].parent_is_document_element && !signed[0].is_document_element);

        // Moved into an Extensions element: still verifies, but not as a child of the Response,
        // which is where `read_response` takes an assertion from.
        let doc = response(&format!(
            "<samlp:Extensions>{good}</samlp:Extensions>{}",
            assertion("_evil", "mallory")
        ));
        assert!(Bergshamra
            .verify(&doc, std::slice::from_ref(&cert))
            .map_or(true, |s| s.iter().all(|e| !e.parent_is_document_element)));

        // Another IdP's certificate, or the content changed after signing: nothing verifies.
        let (_, other) = generate_sp_key("other").unwrap();
        assert!(Bergshamra.verify(&response(&good), &[other]).is_err());
        let changed = response(&good.replace("alice", "mallory"));
        assert!(Bergshamra.verify(&changed, std::slice::from_ref(&cert)).is_err());
        // Two elements with one ID: refused whole.
        let dup = response(&format!("{good}{}", assertion("_good", "mallory")));
        assert!(Bergshamra.verify(&dup, std::slice::from_ref(&cert)).is_err());
    }

    #[test]
    fn redirect_signature_verifies() {
        let (key, _) = generate_sp_key("sp").unwrap();
        let xml = authn_request("_abc", "https://sp", "https://sp/acs", "https://idp/sso", 0);
        let q = redirect_query(&xml, "rs", &key).unwrap();
        let (signed, sig) = q.rsplit_once("&Signature=").unwrap();
        let sig: String = form_urlencoded::parse(format!("s={sig}").as_bytes())
            .next()
            .unwrap()
            .1
            .into_owned();
        use aws_lc_rs::signature::KeyPair;
        let pair = aws_lc_rs::signature::RsaKeyPair::from_pkcs8(&key).unwrap();
        let pk = pair.public_key().as_ref().to_vec();
        aws_lc_rs::signature::UnparsedPublicKey::new(&aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256, pk)
            .verify(signed.as_bytes(), &B64STD.decode(sig).unwrap())
            .unwrap();
        assert!(signed.starts_with("SAMLRequest="));
    }
}

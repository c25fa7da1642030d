//! XML Signatures for SAML behind one narrow trait, [`XmlSignatures`], so the implementation can
//! be swapped. Canonicalization and XML-DSig are never written here: [`Bergshamra`] hands both
//! to the `bergshamra` crates (pure Rust, tested against the xmlsec1 interop suite).
//!
//! What `verify` returns is the defence against signature wrapping: for each valid signature,
//! the element its one `Reference` resolved to, as the exclusive canonical form of that element
//! (without the enveloped signature), i.e. the bytes the digest covered. The caller reads those
//! bytes and nothing else of the document, so an unsigned element placed beside, before or
//! around the signed one is never read.

use bergshamra_c14n::C14nMode;
use bergshamra_dsig::{DsigContext, VerifyResult};
use bergshamra_keys::{loader, KeysManager};
use bergshamra_xml::nodeset::NodeSet;

/// An element covered by a valid signature made with one of the configured certificates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedElement {
    /// The element's namespace URI and local name.
    pub namespace: String,
    pub local_name: String,
    /// Its `ID` attribute (what the Reference's `URI="#…"` named).
    pub id: String,
    /// Whether it is the document element.
    pub is_document_element: bool,
    /// Whether its parent is the document element.
    pub parent_is_document_element: bool,
    /// Exclusive C14N 1.0 of the element, the enveloped signature left out: the signed bytes.
    pub canonical: String,
}

/// XML-DSig verification and signing (enveloped signatures, RSA-SHA256).
pub trait XmlSignatures: Send + Sync {
    /// The elements covered by the document's valid signatures, each verified with one of
    /// `certificates` (DER X.509; the signature's own `KeyInfo` is never trusted). Only
    /// enveloped signatures with exactly one same-document reference count. An error when no
    /// signature is valid; the message names why, never the document's content.
    fn verify(&self, xml: &str, certificates: &[Vec<u8>]) -> Result<Vec<SignedElement>, String>;

    /// Fills in a signature template (`<ds:Signature>` with empty `DigestValue` and
    /// `SignatureValue`) with the RSA key `pkcs8` (DER).
    fn sign(&self, template: &str, pkcs8: &[u8]) -> Result<String, String>;
}

/// [`XmlSignatures`] over the `bergshamra` crates, in their SAML-hardened mode: only the
/// configured keys, reference targets checked for position (XSW), every digest computed.
#[derive(Clone, Copy, Debug, Default)]
pub struct Bergshamra;

const DSIG_NS: &str = "http://www.w3.org/2000/09/xmldsig#";

pub(crate) fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

impl XmlSignatures for Bergshamra {
    fn verify(&self, xml: &str, certificates: &[Vec<u8>]) -> Result<Vec<SignedElement>, String> {
        let mut keys = KeysManager::new();
        for der in certificates {
            let key = loader::load_x509_cert_der(der)
                .map_err(|e| format!("an IdP certificate cannot be read: {e}"))?;
            keys.add_key(key);
        }
        if keys.is_empty() {
            return Err("the connection has no IdP signing certificate".into());
        }
        // `ID` is among the ID attributes bergshamra registers (with `Id`, `id`, `AssertionID`);
        // a document where two elements share an ID is refused whole.
        let mut ctx = DsigContext::new(keys);
        // The IdP's certificate is pinned by the administrator: its dates are not what vouches
        // for it (IdPs commonly sign with long-expired self-signed certificates).
        ctx.skip_time_checks = true;
        let doc = uppsala::parse(xml).map_err(|e| format!("the XML is not well-formed: {e}"))?;
        let results = match bergshamra_dsig::verify::verify_all_document_with_source(&ctx, &doc, Some(xml)) {
            Ok(r) => r,
            Err(bergshamra_core::Error::MissingElement(_)) => return Err("it is not signed".into()),
            Err(e) => return Err(format!("its signatures cannot be processed: {e}")),
        };
        let root = doc.document_element();
        let mut out = Vec::new();
        let mut reasons = Vec::new();
        for result in results {
            let (signature_node, references) = match result {
                VerifyResult::Valid {
                    signature_node,
                    references,
                    ..
                } => (signature_node, references),
                VerifyResult::Invalid { reason } => {
                    reasons.push(reason);
                    continue;
                }
            };
            // SAML's profile of XML-DSig (SAML Core §5.4.2): one reference, to the signed
            // element by its ID, and the signature enveloped in that element.
            let [reference] = references.as_slice() else {
                reasons.push("a signature with other than one reference".into());
                continue;
            };
            let Some(target) = reference.resolved_node.filter(|_| reference.digest_verified) else {
                reasons.push("a reference that is not to an element of the document".into());
                continue;
            };
            if doc.parent(signature_node) != Some(target) {
                reasons.push("a signature that is not enveloped in the element it signs".into());
                continue;
            }
            let Some(element) = doc.element(target) else {
                reasons.push("a reference that is not to an element".into());
                continue;
            };
            let id = element.get_attribute("ID").unwrap_or_default().to_owned();
            if reference.uri != format!("#{id}") {
                reasons.push("a reference that does not name its element's ID".into());
                continue;
            }
            let mut nodes = NodeSet::tree_without_comments(target, &doc);
            nodes = nodes.subtract(&NodeSet::tree_with_comments(signature_node, &doc));
            let canonical =
                bergshamra_c14n::canonicalize_doc(&doc, C14nMode::Exclusive, Some(&nodes), &[] as &[&str])
                    .map_err(|e| format!("the signed element cannot be canonicalized: {e}"))?;
            let canonical =
                String::from_utf8(canonical).map_err(|_| "the signed element is not UTF-8".to_owned())?;
            out.push(SignedElement {
                namespace: element.name.namespace_uri.as_deref().unwrap_or("").to_owned(),
                local_name: element.name.local_name.to_string(),
                id,
                is_document_element: Some(target) == root,
                parent_is_document_element: doc.parent(target).is_some() && doc.parent(target) == root,
                canonical,
            });
        }
        if out.is_empty() {
            let reason = reasons
                .into_iter()
                .next()
                .unwrap_or_else(|| "no signature is valid".into());
            return Err(format!("its signature is not valid ({reason})"));
        }
        Ok(out)
    }

    fn sign(&self, template: &str, pkcs8: &[u8]) -> Result<String, String> {
        let key = loader::load_pem_auto(pem("PRIVATE KEY", pkcs8).as_bytes(), None)
            .map_err(|e| format!("the signing key cannot be read: {e}"))?;
        let mut keys = KeysManager::new();
        keys.add_key(key);
        let ctx = DsigContext::new(keys);
        bergshamra_dsig::sign::sign(&ctx, template).map_err(|e| format!("signing failed: {e}"))
    }
}

/// An enveloped-signature template (RSA-SHA256, SHA-256 digest, exclusive C14N) for the element
/// whose `ID` is `id`, with `certificate` (DER) in its `KeyInfo`. Insert it where SAML wants it
/// (after the `Issuer`), then [`XmlSignatures::sign`].
pub fn signature_template(id: &str, certificate: &[u8]) -> String {
    use base64::Engine;
    let cert = base64::engine::general_purpose::STANDARD.encode(certificate);
    format!(
        "<ds:Signature xmlns:ds=\"{DSIG_NS}\"><ds:SignedInfo>\
<ds:CanonicalizationMethod Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"/>\
<ds:SignatureMethod Algorithm=\"http://www.w3.org/2001/04/xmldsig-more#rsa-sha256\"/>\
<ds:Reference URI=\"#{id}\"><ds:Transforms>\
<ds:Transform Algorithm=\"http://www.w3.org/2000/09/xmldsig#enveloped-signature\"/>\
<ds:Transform Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"/></ds:Transforms>\
<ds:DigestMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#sha256\"/>\
<ds:DigestValue></ds:DigestValue></ds:Reference></ds:SignedInfo>\
<ds:SignatureValue></ds:SignatureValue>\
<ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo>\
</ds:Signature>"
    )
}

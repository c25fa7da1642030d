//! `sesame apply -f FILE` against a real sesamed: the plan it prints, what it changes (and does
//! not), pruning, and a malformed file.

mod support;

use serde_json::Value;

const FILE: &str = r#"
# Server settings in the same file are not the admin API's business; they are ignored.
listen = "127.0.0.1:8080"

[[tenants]]
id = "acme"
display_name = "Acme Corp"

[[tenants.clients]]
client_id = "web"
name = "Acme Web"
redirect_uris = ["https://app.acme.example/callback"]
secret_env = "ACME_WEB_SECRET"

[[tenants.clients]]
client_id = "cli"
client_type = "public"
redirect_uris = ["http://127.0.0.1/callback"]
"#;

const SECRET: &str = "the-file-secret-never-printed";

fn write(dir: &tempfile::TempDir, text: &str) -> String {
    let path = dir.path().join("sesame.toml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

async fn apply(s: &support::Server, args: &[&str]) -> (i32, String, String) {
    let url = s.running.public_url.clone();
    let mut all = vec!["apply", "--url", &url, "--token", &s.admin_token];
    all.extend_from_slice(args);
    s.sesame(&all).await
}

async fn get(s: &support::Server, path: &str) -> Value {
    reqwest::Client::new()
        .get(format!("{}/admin/v1{path}", s.running.public_url))
        .bearer_auth(&s.admin_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn client_ids(s: &support::Server, tenant: &str) -> Vec<String> {
    let mut ids: Vec<String> = get(s, &format!("/tenants/{tenant}/clients")).await["clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["client_id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn applying_twice_changes_nothing_the_second_time() {
    let mut s = support::server().await;
    s.env.push(("ACME_WEB_SECRET".into(), SECRET.into()));
    let dir = tempfile::tempdir().unwrap();
    let file = write(&dir, FILE);

    let (code, out, err) = apply(&s, &["-f", &file]).await;
    assert_eq!(code, 0, "{out}{err}");
    for line in [
        "+ tenant acme\n",
        "+ client acme/web\n",
        "+ client acme/cli\n",
        "applied 3 change(s)",
    ] {
        assert!(out.contains(line), "{line:?} in {out}");
    }
    // The confidential client's generated secret, once; the file's secret source never.
    assert!(out.contains("client_secret of acme/web: "), "{out}");
    assert!(!out.contains("client_secret of acme/cli"), "{out}");
    assert!(out.contains("secret_env"), "the note says why: {out}");
    assert!(!out.contains(SECRET) && !err.contains(SECRET));
    let tenant = get(&s, "/tenants/acme").await;
    assert_eq!(tenant["display_name"], "Acme Corp");
    let web = get(&s, "/tenants/acme/clients/web").await;
    assert_eq!(web["name"], "Acme Web");
    assert_eq!(web["client_type"], "confidential");
    assert_eq!(web["redirect_uris"][0], "https://app.acme.example/callback");
    assert_eq!(
        get(&s, "/tenants/acme/clients/cli").await["client_type"],
        "public"
    );

    let (code, out, err) = apply(&s, &["-f", &file]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("nothing to change"), "{out}");
    assert!(
        !out.contains("+ ") && !out.contains("~ ") && !out.contains("client_secret of"),
        "{out}"
    );
}

#[tokio::test]
async fn a_dry_run_prints_the_diff_and_changes_nothing() {
    let s = support::server().await;
    let dir = tempfile::tempdir().unwrap();
    let file = write(&dir, FILE);
    let (code, out, err) = apply(&s, &["-f", &file, "--dry-run"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("+ tenant acme\n") && out.contains("+ client acme/web\n"),
        "{out}"
    );
    assert!(out.contains("dry run: 3 change(s) planned, none made"), "{out}");
    assert!(!out.contains("client_secret of"), "{out}");
    let tenants = get(&s, "/tenants").await;
    assert!(
        !tenants["tenants"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["id"] == "acme"),
        "{tenants}"
    );

    assert_eq!(apply(&s, &["-f", &file]).await.0, 0);
    let changed = FILE
        .replace("https://app.acme.example/callback", "https://new.acme.example/cb")
        .replace("Acme Corp", "Acme");
    let file = write(&dir, &changed);
    let (code, out, err) = apply(&s, &["-f", &file, "--dry-run"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("~ tenant acme: display_name \"Acme Corp\" -> \"Acme\"\n"),
        "{out}"
    );
    assert!(
        out.contains(
            "~ client acme/web: redirect_uris [\"https://app.acme.example/callback\"] -> \
             [\"https://new.acme.example/cb\"]\n"
        ),
        "{out}"
    );
    assert!(
        !out.contains("acme/cli"),
        "unchanged clients are not listed: {out}"
    );
    let web = get(&s, "/tenants/acme/clients/web").await;
    assert_eq!(web["redirect_uris"][0], "https://app.acme.example/callback");
    assert_eq!(get(&s, "/tenants/acme").await["display_name"], "Acme Corp");

    // Applied for real, the same diff takes effect.
    let (code, out, err) = apply(&s, &["-f", &file]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("applied 2 change(s)"), "{out}");
    let web = get(&s, "/tenants/acme/clients/web").await;
    assert_eq!(web["redirect_uris"][0], "https://new.acme.example/cb");
    assert_eq!(web["name"], "Acme Web", "fields the file keeps are kept");
    assert_eq!(get(&s, "/tenants/acme").await["display_name"], "Acme");
}

#[tokio::test]
async fn prune_removes_exactly_what_the_file_dropped() {
    let s = support::server().await;
    let dir = tempfile::tempdir().unwrap();
    let file = write(&dir, FILE);
    assert_eq!(apply(&s, &["-f", &file]).await.0, 0);
    assert_eq!(client_ids(&s, "acme").await, ["cli", "web"]);

    // `cli` leaves the file; tenant `default` is in the file without clients, so its own
    // client (`sesame-cli`) is not managed and stays.
    let dropped = format!(
        "{}[[tenants]]\nid = \"default\"\n",
        &FILE[..FILE.find("[[tenants.clients]]\nclient_id = \"cli\"").unwrap()]
    );
    let file = write(&dir, &dropped);
    // Without --prune nothing is deleted.
    let (code, out, err) = apply(&s, &["-f", &file]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("nothing to change"), "{out}");
    assert_eq!(client_ids(&s, "acme").await, ["cli", "web"]);

    let (code, out, err) = apply(&s, &["-f", &file, "--prune", "--dry-run"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("- client acme/cli\n"), "{out}");
    assert_eq!(client_ids(&s, "acme").await, ["cli", "web"]);

    let (code, out, err) = apply(&s, &["-f", &file, "--prune"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out.matches("- ").count(), 1, "{out}");
    assert_eq!(client_ids(&s, "acme").await, ["web"]);
    assert_eq!(client_ids(&s, "default").await, ["sesame-cli"]);
    assert!(get(&s, "/tenants/default").await["id"] == "default");

    // `--tenant` limits the run to one tenant of the file.
    let (code, out, err) = apply(&s, &["-f", &file, "--tenant", "nope"]).await;
    assert_eq!(code, 1, "{out}");
    assert!(err.contains("declares no tenant 'nope'"), "{err}");
}

#[tokio::test]
async fn a_malformed_file_is_refused_naming_the_field() {
    let s = support::server().await;
    let dir = tempfile::tempdir().unwrap();
    let file = write(&dir, &FILE.replace("[\"http://127.0.0.1/callback\"]", "[5]"));
    let (code, out, err) = apply(&s, &["-f", &file]).await;
    assert_eq!(code, 1, "{out}");
    assert!(
        err.contains("tenants[0].clients[1].redirect_uris[0]: expected a string, found integer"),
        "{err}"
    );
    let file = write(&dir, &FILE.replace("name = \"Acme Web\"", "nmae = \"Acme Web\""));
    let (code, _, err) = apply(&s, &["-f", &file]).await;
    assert_eq!(code, 1);
    assert!(
        err.contains("tenants[0].clients[0]: unknown field `nmae`"),
        "{err}"
    );
    // Nothing was sent.
    let tenants = get(&s, "/tenants").await;
    assert!(!tenants["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["id"] == "acme"));
    // A refusal from the server names the step.
    let file = write(
        &dir,
        &FILE.replace("https://app.acme.example/callback", "not a url"),
    );
    let (code, out, err) = apply(&s, &["-f", &file]).await;
    assert_eq!(code, 1, "{out}");
    assert!(err.contains("+ client acme/web: "), "{err}");
}

/// `sesame apply` and sesamed read one file format: the fields sesame-declare knows are exactly
/// those of sesamed's `[[tenants]]` and `[[tenants.clients]]`, so neither can drift alone.
#[test]
fn the_declared_fields_are_sesameds() {
    use std::collections::BTreeSet;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sesame.toml");
    std::fs::write(
        &path,
        "[[tenants]]\nid = \"acme\"\n[[tenants.clients]]\nclient_id = \"c\"\nsecret_env = \"X\"\n",
    )
    .unwrap();
    let config = sesame_server::config::Config::load(Some(&path), &Default::default()).unwrap();
    let keys = |v: Value| -> BTreeSet<String> { v.as_object().unwrap().keys().cloned().collect() };
    let names = |k: &sesame_declare::Kind| -> BTreeSet<String> {
        k.fields.iter().map(|(n, _, _)| (*n).to_owned()).collect()
    };
    let mut tenant = keys(serde_json::to_value(&config.tenants[0]).unwrap());
    // The sub-tables: clients are their own kind; the rest are named in the plan's notes.
    for sub in ["clients", "trust_policies", "sources", "sso"] {
        assert!(tenant.remove(sub), "{sub}");
    }
    assert_eq!(tenant, names(&sesame_declare::TENANT));
    // A trust policy is the admin API's own spec type (sesame-core's), every field optional or set.
    let spec: sesame_core::trust::TrustPolicySpec = serde_json::from_value(serde_json::json!({
        "name": "n", "issuer": "https://i.example", "jwks_uri": "https://i.example/jwks",
        "discovery_url": "https://i.example", "jwks": {"keys": []}, "audience": "a",
        "subject": "s", "claims": {"c": "v"}, "max_age": 60, "typ": "JWT", "identity": "x",
        "scopes": ["s"], "audiences": ["a"], "assertion_reuse": true,
    }))
    .unwrap();
    assert_eq!(
        keys(serde_json::to_value(&spec).unwrap()),
        names(&sesame_declare::TRUST_POLICY)
    );
    let client = keys(serde_json::to_value(&config.tenants[0].clients[0]).unwrap());
    assert_eq!(client, names(&sesame_declare::CLIENT));
    // A source and an SSO connection are the admin API's spec types too; a connection's secret
    // is the kind's write-only secret, read from `client_secret_file` / `client_secret_env`.
    let source: sesame_core::workload::SourceSpec = serde_json::from_value(serde_json::json!({
        "id": "7f3b8e21-4d9a-4c2e-9b7d-8a5f3c9e0b4f", "name": "n", "client_id": "c",
        "audiences": ["a"], "token_ttl": 60,
    }))
    .unwrap();
    assert_eq!(
        keys(serde_json::to_value(&source).unwrap()),
        names(&sesame_declare::SOURCE)
    );
    let spec: sesame_core::federation::ConnectionSpec =
        serde_json::from_value(serde_json::json!({"id": "c"})).unwrap();
    let mut sso = keys(serde_json::to_value(&spec).unwrap());
    // Write-only, so not serialized back.
    for f in ["idp_metadata_xml", "client_secret_file", "client_secret_env"] {
        sso.insert(f.to_owned());
    }
    assert_eq!(sso, names(&sesame_declare::SSO));
    assert_eq!(sesame_declare::SSO.secret.unwrap().0, "client_secret");
}

#[tokio::test]
async fn trust_policies_are_created_replaced_and_pruned() {
    let s = support::server().await;
    let dir = tempfile::tempdir().unwrap();
    let policy = r#"
[[tenants.trust_policies]]
name = "ci"
issuer = "https://ci.example"
jwks_uri = "https://ci.example/jwks"
audience = "sesame"
identity = "ci-deployer"
scopes = ["deploy"]
claims = { repository = "acme/app", ref = ["refs/heads/main", "refs/heads/release"] }
"#;
    let file = write(&dir, &format!("[[tenants]]\nid = \"acme\"\n{policy}"));
    let (code, out, err) = apply(&s, &["-f", &file]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("+ trust_policy acme/ci\n"), "{out}");
    let shown = get(&s, "/tenants/acme/trust-policies/ci").await;
    assert_eq!(shown["identity"], "ci-deployer");
    assert_eq!(shown["claims"]["repository"], "acme/app");
    let (code, out, _) = apply(&s, &["-f", &file]).await;
    assert_eq!(code, 0);
    assert!(out.contains("nothing to change"), "{out}");

    let file = write(
        &dir,
        &format!(
            "[[tenants]]\nid = \"acme\"\n{}",
            policy.replace("[\"deploy\"]", "[\"deploy\", \"read\"]")
        ),
    );
    let (code, out, err) = apply(&s, &["-f", &file]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("~ trust_policy acme/ci: scopes [\"deploy\"] -> [\"deploy\",\"read\"]\n"),
        "{out}"
    );
    let shown = get(&s, "/tenants/acme/trust-policies/ci").await;
    assert_eq!(shown["scopes"][1], "read");
    assert_eq!(
        shown["claims"]["ref"][1], "refs/heads/release",
        "replaced whole from the file"
    );

    let file = write(&dir, "[[tenants]]\nid = \"acme\"\ntrust_policies = []\n");
    let (code, out, err) = apply(&s, &["-f", &file, "--prune"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("- trust_policy acme/ci\n"), "{out}");
    let listed = get(&s, "/tenants/acme/trust-policies").await;
    assert_eq!(listed["trust_policies"].as_array().unwrap().len(), 0, "{listed}");
}

// ---------------------------------------------------------------------------------------------
// Sources, SSO connections (OIDC and SAML) and workload settings, and start agreeing with apply

const SOURCE_ID: &str = "7f3b8e21-4d9a-4c2e-9b7d-8a5f3c9e0b4f";
const WORKLOAD_GRANT: &str = "urn:sesame:params:oauth:grant-type:workload-token";
const IDP_SECRET: &str = "the-upstream-secret-never-printed";
const IDP_ENTITY: &str = "https://idp.corp.example/saml";
const IDP_SSO_URL: &str = "https://idp.corp.example/saml/sso";

/// A SAML IdP's metadata with a fresh signing certificate.
fn saml_metadata() -> String {
    use base64::Engine as _;
    let (_, cert) = sesame_core::saml::generate_sp_key("test idp").unwrap();
    let cert = base64::engine::general_purpose::STANDARD.encode(cert);
    format!(
        "<md:EntityDescriptor xmlns:md=\"urn:oasis:names:tc:SAML:2.0:metadata\" \
         xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\" entityID=\"{IDP_ENTITY}\">\
         <md:IDPSSODescriptor protocolSupportEnumeration=\"urn:oasis:names:tc:SAML:2.0:protocol\">\
         <md:KeyDescriptor use=\"signing\"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert}\
         </ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>\
         <md:SingleSignOnService Binding=\"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST\" \
         Location=\"{IDP_SSO_URL}\"/></md:IDPSSODescriptor></md:EntityDescriptor>"
    )
}

/// Tenant `acme` with a workload client and its source, an OIDC connection whose secret comes
/// from the environment, and a SAML connection with its IdP's metadata inline.
fn everything(metadata: &str, audience: &str, oidc_name: &str) -> String {
    format!(
        r#"
[[tenants]]
id = "default"

[[tenants]]
id = "acme"
display_name = "Acme Corp"
workload_issuer = "https://static.acme.example"
session_max_ttl = 3600

[[tenants.clients]]
client_id = "sync"
secret_env = "ACME_SYNC_SECRET"
grant_types = ["{WORKLOAD_GRANT}"]

[[tenants.sources]]
id = "{SOURCE_ID}"
name = "sync"
client_id = "sync"
audiences = ["{audience}"]

[[tenants.sso]]
id = "corp"
display_name = "{oidc_name}"
issuer = "https://oidc.corp.example"
discovery = false
authorization_endpoint = "https://oidc.corp.example/authorize"
token_endpoint = "https://oidc.corp.example/token"
jwks_uri = "https://oidc.corp.example/jwks"
client_id = "sesame"
client_secret_env = "CORP_OIDC_SECRET"
email_domains = ["acme.example"]

[[tenants.sso]]
id = "partner"
kind = "saml"
display_name = "Partner"
idp_metadata_xml = '''{metadata}'''
"#
    )
}

fn with_secrets(s: &mut support::Server) {
    s.env.push(("ACME_SYNC_SECRET".into(), "s".repeat(40)));
    s.env.push(("CORP_OIDC_SECRET".into(), IDP_SECRET.into()));
}

#[tokio::test]
async fn sources_sso_connections_and_workload_settings_are_applied_idempotently() {
    let mut s = support::server().await;
    with_secrets(&mut s);
    let dir = tempfile::tempdir().unwrap();
    let metadata = saml_metadata();
    let file = write(&dir, &everything(&metadata, "https://wh.example", "Corp"));

    // A dry run shows every step, never a secret or the metadata, and changes nothing.
    let (code, out, err) = apply(&s, &["-f", &file, "--dry-run"]).await;
    assert_eq!(code, 0, "{out}{err}");
    for line in [
        "+ tenant acme\n",
        "~ workload acme: ",
        "session_max_ttl null -> 3600",
        "workload_issuer null -> \"https://static.acme.example\"",
        "+ client acme/sync\n",
        &format!("+ source acme/{SOURCE_ID}\n"),
        "+ sso acme/corp (client_secret: (set))\n",
        "+ sso acme/partner\n",
        "dry run: 6 change(s) planned, none made",
    ] {
        assert!(out.contains(line), "{line:?} in {out}");
    }
    assert!(!out.contains(IDP_SECRET) && !err.contains(IDP_SECRET));
    assert!(!out.contains("EntityDescriptor"), "{out}");
    assert_eq!(
        get(&s, "/tenants/acme").await["error"],
        "not_found",
        "nothing was made"
    );

    let (code, out, err) = apply(&s, &["-f", &file]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("applied 6 change(s)"), "{out}");
    assert!(!out.contains(IDP_SECRET) && !err.contains(IDP_SECRET));
    let workload = get(&s, "/tenants/acme/workload").await;
    assert_eq!(workload["workload_issuer"], "https://static.acme.example");
    assert_eq!(workload["session_max_ttl"], 3600);
    let source = get(&s, &format!("/tenants/acme/sources/{SOURCE_ID}")).await;
    assert_eq!(source["audiences"], serde_json::json!(["https://wh.example"]));
    let corp = get(&s, "/tenants/acme/sso/corp").await;
    assert_eq!(corp["client_secret_set"], true, "{corp}");
    assert_eq!(corp["display_name"], "Corp");
    let partner = get(&s, "/tenants/acme/sso/partner").await;
    assert_eq!(partner["idp_entity_id"], IDP_ENTITY, "{partner}");
    assert_eq!(partner["sso_url"], IDP_SSO_URL);

    // Twice is a no-op: the secret the server never shows is not sent again (the plan says so).
    let (code, out, err) = apply(&s, &["-f", &file]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("nothing to change"), "{out}");
    assert!(out.contains("sso acme/corp: client_secret: (set)"), "{out}");
    assert_eq!(get(&s, "/tenants/acme/sso/corp").await, corp);

    // A changed file: the source is replaced (same id), the connection patched, the new
    // metadata sent; the diff shows the metadata only as changed.
    let new_metadata = saml_metadata();
    let file = write(
        &dir,
        &everything(&new_metadata, "https://other.example", "Corp SSO"),
    );
    let (code, out, err) = apply(&s, &["-f", &file, "--dry-run"]).await;
    assert_eq!(code, 0, "{out}{err}");
    for line in [
        &format!(
            "~ source acme/{SOURCE_ID}: audiences [\"https://wh.example\"] -> [\"https://other.example\"]\n"
        ),
        "~ sso acme/corp: display_name \"Corp\" -> \"Corp SSO\"\n",
        "~ sso acme/partner: idp_metadata_xml \"(other)\" -> \"(changed)\"\n",
        "dry run: 3 change(s) planned, none made",
    ] {
        assert!(out.contains(line), "{line:?} in {out}");
    }
    assert_eq!(
        get(&s, &format!("/tenants/acme/sources/{SOURCE_ID}")).await,
        source
    );
    let (code, out, err) = apply(&s, &["-f", &file]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("applied 3 change(s)"), "{out}");
    let replaced = get(&s, &format!("/tenants/acme/sources/{SOURCE_ID}")).await;
    assert_eq!(
        replaced["audiences"],
        serde_json::json!(["https://other.example"])
    );
    assert_eq!(replaced["resource_id"], source["resource_id"], "same id");
    assert_ne!(
        get(&s, "/tenants/acme/sso/partner").await["idp_certificates"],
        partner["idp_certificates"]
    );
    let (_, out, _) = apply(&s, &["-f", &file]).await;
    assert!(out.contains("nothing to change"), "{out}");

    // `--send-secrets` sends the file's secret again (to rotate it), still never printed.
    let (code, out, err) = apply(&s, &["-f", &file, "--send-secrets"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("~ sso acme/corp: client_secret \"(set)\" -> \"(sent again)\"\n"),
        "{out}"
    );
    assert!(!out.contains(IDP_SECRET) && !err.contains(IDP_SECRET));

    // A secret the file names but this machine cannot read stops before anything is sent.
    s.env.retain(|(k, _)| k != "CORP_OIDC_SECRET");
    let (code, _, err) = apply(&s, &["-f", &file]).await;
    assert_eq!(code, 1);
    assert!(
        err.contains(
            "tenant 'acme' sso 'corp': client_secret_env: environment variable CORP_OIDC_SECRET is not set"
        ),
        "{err}"
    );
}

#[tokio::test]
async fn prune_removes_exactly_the_dropped_sources_and_connections() {
    let mut s = support::server().await;
    with_secrets(&mut s);
    let dir = tempfile::tempdir().unwrap();
    let metadata = saml_metadata();
    let full = everything(&metadata, "https://wh.example", "Corp");
    let file = write(&dir, &full);
    assert_eq!(apply(&s, &["-f", &file]).await.0, 0);

    // The SAML connection and the source leave the file (`sources = []` keeps sources managed).
    let (a, b) = (
        full.find("[[tenants.sources]]").unwrap(),
        full.find("[[tenants.sso]]").unwrap(),
    );
    let without_source = format!("{}{}", &full[..a], &full[b..]);
    let partner = without_source.find("[[tenants.sso]]\nid = \"partner\"").unwrap();
    let dropped = without_source[..partner].replace(
        "session_max_ttl = 3600\n",
        "session_max_ttl = 3600\nsources = []\n",
    );
    assert!(
        !dropped.contains("partner") && !dropped.contains(SOURCE_ID),
        "{dropped}"
    );
    let file = write(&dir, &dropped);

    let (code, out, err) = apply(&s, &["-f", &file]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("nothing to change"), "without --prune: {out}");
    let (code, out, err) = apply(&s, &["-f", &file, "--prune", "--dry-run"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("- sso acme/partner\n"), "{out}");
    assert!(out.contains(&format!("- source acme/{SOURCE_ID}\n")), "{out}");
    assert_eq!(
        out.matches("\n- ").count() + usize::from(out.starts_with("- ")),
        2,
        "{out}"
    );
    assert_eq!(get(&s, "/tenants/acme/sso/partner").await["id"], "partner");

    let (code, out, err) = apply(&s, &["-f", &file, "--prune"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("applied 2 change(s)"), "{out}");
    let connections = get(&s, "/tenants/acme/sso").await;
    let ids: Vec<&str> = connections["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["corp"]);
    let sources = get(&s, "/tenants/acme/sources").await;
    assert_eq!(sources["sources"].as_array().unwrap().len(), 0, "{sources}");
    assert_eq!(client_ids(&s, "acme").await, ["sync"], "clients stay");
}

/// sesamed started with a file and `sesame apply` of the same file end in the same state: the
/// dry run after the start has nothing to change. On SQLite, and on PostgreSQL when
/// `SESAME_TEST_DATABASE_URL` is set.
#[tokio::test]
async fn the_file_applied_at_start_is_what_apply_would_make() {
    let mut dbs = vec![sesame_store::testing::TestDb::sqlite()];
    if let Some(pg) = sesame_store::testing::TestDb::postgres().await {
        dbs.push(pg);
    }
    for db in dbs {
        let dir = tempfile::tempdir().unwrap();
        let metadata = saml_metadata();
        let path = dir.path().join("sesame.toml");
        std::fs::write(&path, everything(&metadata, "https://wh.example", "Corp")).unwrap();
        // sesamed reads the secrets from its own environment, as `sesame apply` from its own.
        std::env::set_var("ACME_SYNC_SECRET", "s".repeat(40));
        std::env::set_var("CORP_OIDC_SECRET", IDP_SECRET);
        let mut s = support::server_on(db, Some(&path)).await;
        with_secrets(&mut s);
        let corp = get(&s, "/tenants/acme/sso/corp").await;
        assert_eq!(corp["client_secret_set"], true, "{corp}");
        let file = path.display().to_string();
        let (code, out, err) = apply(&s, &["-f", &file, "--dry-run"]).await;
        assert_eq!(code, 0, "{out}{err}");
        assert!(out.contains("nothing to change"), "{out}");
        // And the other way round: what `sesame apply` changes, a restart with the old file
        // puts back, field by field (the source's audience here).
        let changed = dir.path().join("changed.toml");
        std::fs::write(&changed, everything(&metadata, "https://other.example", "Corp")).unwrap();
        let changed = changed.display().to_string();
        assert_eq!(apply(&s, &["-f", &changed]).await.0, 0);
        let config = sesame_server::config::Config::load(Some(&path), &Default::default()).unwrap();
        sesame_server::bootstrap::apply_declared(&s.running.app, &config.tenants)
            .await
            .unwrap();
        let source = get(&s, &format!("/tenants/acme/sources/{SOURCE_ID}")).await;
        assert_eq!(source["audiences"], serde_json::json!(["https://wh.example"]));
        let (_, out, _) = apply(&s, &["-f", &file, "--dry-run"]).await;
        assert!(out.contains("nothing to change"), "{out}");
    }
}

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
        "scopes": ["s"], "audiences": ["a"],
    }))
    .unwrap();
    assert_eq!(
        keys(serde_json::to_value(&spec).unwrap()),
        names(&sesame_declare::TRUST_POLICY)
    );
    let client = keys(serde_json::to_value(&config.tenants[0].clients[0]).unwrap());
    assert_eq!(client, names(&sesame_declare::CLIENT));
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

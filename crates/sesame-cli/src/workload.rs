//! `sesame admin workload-issuer export`: the workload issuer's documents as static files, and
//! the check of a published copy against them.

use crate::cli::WorkloadExport;
use crate::output::clean;
use crate::Failure;
use serde_json::Value;
use std::path::Path;

/// Writes the files and/or checks the published copy; what to print.
pub async fn export(answer: Option<&Value>, args: &WorkloadExport) -> Result<String, Failure> {
    let answer = answer.ok_or_else(|| Failure("the server sent no documents".into()))?;
    let issuer = answer["issuer"]
        .as_str()
        .ok_or_else(|| Failure("the server's answer has no issuer".into()))?;
    let conf = &answer["openid_configuration"];
    let jwks = &answer["jwks"];
    if !conf.is_object() || !jwks.is_object() {
        return Err(Failure("the server's answer lacks a document".into()));
    }
    let mut out = String::new();
    if let Some(dir) = &args.out {
        write(&dir.join(".well-known").join("openid-configuration"), conf)?;
        write(&dir.join("jwks.json"), jwks)?;
        out.push_str(&format!(
            "wrote {0}/.well-known/openid-configuration and {0}/jwks.json\n\
             serve that directory at {1} (jwks_uri: {2})\n",
            dir.display(),
            clean(issuer),
            clean(conf["jwks_uri"].as_str().unwrap_or("")),
        ));
    }
    if args.check {
        let stale = check(issuer, conf, jwks).await?;
        if stale.is_empty() {
            out.push_str(&format!(
                "the copy published at {} is up to date\n",
                clean(issuer)
            ));
        }
        for warning in stale {
            eprintln!("warning: {warning}");
        }
    }
    Ok(out)
}

fn write(path: &Path, doc: &Value) -> Result<(), Failure> {
    let fail = |e: std::io::Error| Failure(format!("cannot write {}: {e}", path.display()));
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(fail)?;
    }
    let mut text = serde_json::to_string_pretty(doc).expect("JSON serializes");
    text.push('\n');
    // Whole or not at all: a verifier fetching mid-write never sees half a document.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(fail)
}

/// What differs between the published documents and the ones that would be exported.
async fn check(issuer: &str, conf: &Value, jwks: &Value) -> Result<Vec<String>, Failure> {
    // The one HTTP set-up of the CLI (sesame-client's): timeouts, no redirects.
    let http =
        sesame_client::http_client().map_err(|e| Failure(format!("cannot set up the HTTP client: {e}")))?;
    let mut stale = Vec::new();
    let conf_url = format!("{issuer}/.well-known/openid-configuration");
    let jwks_url = conf["jwks_uri"].as_str().unwrap_or_default().to_owned();
    for (url, want) in [(conf_url, conf), (jwks_url, jwks)] {
        match fetch(&http, &url).await {
            Ok(got) if &got == want => {}
            Ok(_) => stale.push(format!(
                "{} is stale: it differs from what would be exported; export again and publish",
                clean(&url)
            )),
            Err(why) => stale.push(format!("{} could not be checked: {why}", clean(&url))),
        }
    }
    Ok(stale)
}

async fn fetch(http: &sesame_client::reqwest::Client, url: &str) -> Result<Value, String> {
    let resp = http.get(url).send().await.map_err(|e| e.to_string())?;
    if !resp.status().is_success() {
        return Err(format!("HTTP {}", resp.status()));
    }
    let bytes = resp.bytes().await.map_err(|e| e.to_string())?;
    serde_json::from_slice(&bytes).map_err(|e| format!("not JSON: {e}"))
}

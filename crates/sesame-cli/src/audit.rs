//! `sesame admin audit`: the newest events (printed oldest first), then with `--follow` the new
//! ones as they come, by the cursor (`seq`) of the last one seen. `--json` prints one JSON object
//! per line: the export form.

use crate::cli::AuditArgs;
use crate::output::clean;
use crate::Failure;
use serde_json::Value;
use sesame_client::reqwest::Url;
use sesame_client::AdminClient;
use std::io::Write;
use std::time::Duration;

/// How often `--follow` asks for new events.
const FOLLOW_EVERY: Duration = Duration::from_secs(1);

/// `30m`, `12h`, `7d` ago, or Unix seconds as they are.
fn when(flag: &str, text: &str, now: i64) -> Result<String, Failure> {
    if let Ok(n) = text.parse::<i64>() {
        return Ok(n.to_string());
    }
    let bad = || {
        Failure(format!(
            "--{flag} {}: give a duration such as 30m, 12h or 7d, or Unix seconds",
            clean(text)
        ))
    };
    let (n, unit) = text.split_at(text.len().saturating_sub(1));
    let n: i64 = n.parse().map_err(|_| bad())?;
    let per = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return Err(bad()),
    };
    Ok((now - n * per).to_string())
}

fn path(args: &AuditArgs) -> Vec<String> {
    match &args.tenant {
        Some(t) => vec!["tenants".into(), t.clone(), "audit".into()],
        None => vec!["audit".into()],
    }
}

fn filters(args: &AuditArgs, now: i64) -> Result<Vec<(&'static str, String)>, Failure> {
    let mut q = Vec::new();
    if let Some(s) = &args.since {
        q.push(("since", when("since", s, now)?));
    }
    if let Some(u) = &args.until {
        q.push(("until", when("until", u, now)?));
    }
    if let Some(t) = &args.event_type {
        q.push(("type", t.clone()));
    }
    if let Some(a) = &args.actor {
        q.push(("actor", a.clone()));
    }
    if let Some(o) = &args.outcome {
        q.push(("outcome", o.clone()));
    }
    Ok(q)
}

/// One event as a line: time, type, outcome, tenant, actor, target, request id.
fn line(e: &Value, json: bool) -> String {
    if json {
        return format!("{e}\n");
    }
    let s = |k: &str| e[k].as_str().map(clean).unwrap_or_else(|| "-".into());
    format!(
        "{}  {:<22} {:<8} {:<12} {}:{}  {}  {}\n",
        e["time"].as_i64().unwrap_or(0),
        s("type"),
        s("outcome"),
        s("tenant"),
        s("actor_kind"),
        s("actor_id"),
        s("target"),
        s("request_id"),
    )
}

fn write(text: &str) -> Result<bool, Failure> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(true),
        // The reader went away (`| head`): stop quietly.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(Failure(format!("cannot write the events: {e}"))),
    }
}

pub fn run(base: Url, token: &str, args: &AuditArgs, json: bool) -> Result<(), Failure> {
    let client = AdminClient::new(base, token).map_err(|e| Failure(e.to_string()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async {
        let now = sesame_client::now();
        let path = path(args);
        let mut query = filters(args, now)?;
        query.push(("limit", args.limit.unwrap_or(100).to_string()));
        let page = client
            .get_with_query(&path, &query)
            .await
            .map_err(|e| Failure(e.to_string()))?
            .unwrap_or_default();
        let mut events: Vec<Value> = page["events"].as_array().cloned().unwrap_or_default();
        events.reverse();
        let mut last = events.iter().filter_map(|e| e["seq"].as_i64()).max();
        let text: String = events.iter().map(|e| line(e, json)).collect();
        if !write(&text)? || !args.follow {
            return Ok(());
        }
        loop {
            tokio::time::sleep(FOLLOW_EVERY).await;
            let mut query = filters(args, sesame_client::now())?;
            query.retain(|(k, _)| *k != "since" && *k != "until");
            query.push(("order", "oldest".into()));
            query.push(("limit", "1000".into()));
            if let Some(c) = last {
                query.push(("cursor", c.to_string()));
            }
            let page = client
                .get_with_query(&path, &query)
                .await
                .map_err(|e| Failure(e.to_string()))?
                .unwrap_or_default();
            let events = page["events"].as_array().cloned().unwrap_or_default();
            if let Some(m) = events.iter().filter_map(|e| e["seq"].as_i64()).max() {
                last = Some(m);
            }
            let text: String = events.iter().map(|e| line(e, json)).collect();
            if !write(&text)? {
                return Ok(());
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_durations_ago_or_seconds() {
        assert_eq!(when("since", "1700000000", 5).unwrap(), "1700000000");
        assert_eq!(when("since", "2h", 10_000).unwrap(), "2800");
        assert!(when("since", "yesterday", 0).is_err());
    }
}

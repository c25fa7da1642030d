//! The [`Store`] for SQLite (the embedded default) and PostgreSQL (for any number of replicas).
//!
//! Both dialects run the same SQL text: `$1`-style placeholders work in both, and the schemas
//! differ only in type names (`migrations/sqlite`, `migrations/postgres`). A macro instantiates
//! each query for the pool at hand, so there is one implementation to read and test.

pub mod backup;
mod sql;

pub use sql::SqlStore;

use std::fmt;

/// Where the store lives, parsed from a `sqlite:` or `postgres://` URL.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreUrl {
    Sqlite(String),
    Postgres(String),
}

impl StoreUrl {
    pub fn parse(url: &str) -> Result<StoreUrl, String> {
        if url.starts_with("sqlite:") {
            Ok(StoreUrl::Sqlite(url.to_owned()))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(StoreUrl::Postgres(url.to_owned()))
        } else {
            Err(format!(
                "'{}' is not a store URL: use sqlite:PATH or postgres://USER@HOST:PORT/DB",
                redact(url)
            ))
        }
    }

    /// An SQLite file in a directory.
    pub fn sqlite_file(path: &std::path::Path) -> StoreUrl {
        StoreUrl::Sqlite(format!("sqlite://{}", path.display()))
    }

    pub fn as_str(&self) -> &str {
        match self {
            StoreUrl::Sqlite(u) | StoreUrl::Postgres(u) => u,
        }
    }
}

/// Shows the URL with any password replaced, for logs and error messages.
impl fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact(self.as_str()))
    }
}

impl fmt::Debug for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoreUrl({self})")
    }
}

/// `scheme://user:secret@host/…` → `scheme://user:***@host/…`; also hides `password=` query values.
pub fn redact(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(scheme_end) = out.find("://") {
        let rest_start = scheme_end + 3;
        let authority_end = out[rest_start..].find('/').map_or(out.len(), |i| rest_start + i);
        if let Some(at) = out[rest_start..authority_end].rfind('@') {
            let userinfo = &out[rest_start..rest_start + at];
            if let Some(colon) = userinfo.find(':') {
                out.replace_range(rest_start + colon + 1..rest_start + at, "***");
            }
        }
    }
    if let Some(q) = out.find('?') {
        let (base, query) = out.split_at(q + 1);
        let query = query
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => kv.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("&");
        out = format!("{base}{query}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact("postgres://u:pw@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(
            redact("postgres://u@h/db?password=x&sslmode=off"),
            "postgres://u@h/db?password=***&sslmode=off"
        );
        assert_eq!(redact("sqlite://./a.db"), "sqlite://./a.db");
        assert!(StoreUrl::parse("mysql://x")
            .unwrap_err()
            .contains("not a store URL"));
    }
}

pub mod testing;

//! Isolated stores for tests: an SQLite file in a temporary directory, or a fresh schema in the
//! PostgreSQL named by `SESAME_TEST_DATABASE_URL`, dropped again when the guard is dropped.

use crate::StoreUrl;

pub const DATABASE_URL_VAR: &str = "SESAME_TEST_DATABASE_URL";

/// An isolated store location that is removed on drop.
pub struct TestDb {
    pub url: StoreUrl,
    _dir: Option<tempfile::TempDir>,
    pg_schema: Option<(String, String)>,
}

impl TestDb {
    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = StoreUrl::sqlite_file(&dir.path().join("sesame.db"));
        TestDb {
            url,
            _dir: Some(dir),
            pg_schema: None,
        }
    }

    /// `None` when no PostgreSQL is configured. Under CI (`CI=true`) a missing database is a
    /// failure, not a skip: CI must exercise the real server.
    pub async fn postgres() -> Option<TestDb> {
        let base = match std::env::var(DATABASE_URL_VAR) {
            Ok(u) if !u.is_empty() => u,
            _ => {
                assert!(
                    std::env::var("CI").map_or(true, |v| v != "true"),
                    "{DATABASE_URL_VAR} must be set in CI so that PostgreSQL is tested"
                );
                eprintln!("{DATABASE_URL_VAR} is not set: skipping the PostgreSQL case");
                return None;
            }
        };
        let schema = format!("sesame_test_{}", hex_id());
        let admin = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect(&base)
            .await
            .unwrap_or_else(|e| panic!("{DATABASE_URL_VAR}={}: {e}", crate::redact(&base)));
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(&admin)
            .await
            .expect("create schema");
        admin.close().await;
        let sep = if base.contains('?') { '&' } else { '?' };
        // The schema's name as the connections' application_name too, so that dropping the
        // schema can end the connections still open on it (see `Drop`).
        let url = StoreUrl::Postgres(format!(
            "{base}{sep}options=-c%20search_path%3D{schema}&application_name={schema}"
        ));
        Some(TestDb {
            url,
            _dir: None,
            pg_schema: Some((base, schema)),
        })
    }
}

fn hex_id() -> String {
    let bytes = sesame_core::crypto::random_bytes::<8>();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((base, schema)) = self.pg_schema.take() else {
            return;
        };
        // Drop may run inside a runtime; a thread with its own runtime avoids blocking it.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let pool = sqlx::postgres::PgPoolOptions::new()
                    .max_connections(1)
                    .connect(&base)
                    .await
                    .ok()?;
                // A server the test started in-process may still hold a transaction open on
                // this schema: its task runs on the test's runtime, which is blocked here until
                // the drop is done. End those connections first, or DROP SCHEMA waits forever.
                sqlx::query(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                     WHERE application_name = $1 AND pid <> pg_backend_pid()",
                )
                .bind(&schema)
                .execute(&pool)
                .await
                .ok()?;
                sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                    .execute(&pool)
                    .await
                    .ok()?;
                pool.close().await;
                Some(())
            })
        })
        .join();
    }
}

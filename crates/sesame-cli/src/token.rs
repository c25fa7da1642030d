//! Where the admin token comes from.

use crate::Failure;
use std::path::{Path, PathBuf};

/// Where the server leaves the token in `--dev` mode with its default data directory.
pub const DEFAULT_TOKEN_FILE: &str = "sesame-data/admin-token";

/// The places a token may be given, in the order they are considered.
#[derive(Debug, Default)]
pub struct Sources {
    pub arg_token: Option<String>,
    pub arg_file: Option<PathBuf>,
    pub env_token: Option<String>,
    pub env_file: Option<PathBuf>,
    pub default_file: PathBuf,
}

impl Sources {
    pub fn from_env(arg_token: Option<String>, arg_file: Option<PathBuf>) -> Self {
        // An empty variable counts as unset, as for most tools that read the environment.
        let var = |name| std::env::var_os(name).filter(|v| !v.is_empty());
        Sources {
            arg_token,
            arg_file,
            env_token: var("SESAME_ADMIN_TOKEN").map(|v| v.to_string_lossy().into_owned()),
            env_file: var("SESAME_ADMIN_TOKEN_FILE").map(PathBuf::from),
            default_file: PathBuf::from(DEFAULT_TOKEN_FILE),
        }
    }
}

/// A command-line option beats the environment, so a one-off `--token-file` works in a shell
/// that exports `SESAME_ADMIN_TOKEN`; two sources at the same level are a mistake.
pub fn resolve(s: Sources) -> Result<String, Failure> {
    let token = match (s.arg_token, s.arg_file, s.env_token, s.env_file) {
        (Some(_), Some(_), _, _) => return Err(Failure("give either --token or --token-file, not both".into())),
        (Some(t), None, _, _) => t,
        (None, Some(f), _, _) => read_file(&f)?,
        (None, None, Some(_), Some(_)) => {
            return Err(Failure(
                "both SESAME_ADMIN_TOKEN and SESAME_ADMIN_TOKEN_FILE are set; unset one of them".into(),
            ))
        }
        (None, None, Some(t), None) => t,
        (None, None, None, Some(f)) => read_file(&f)?,
        (None, None, None, None) if s.default_file.exists() => read_file(&s.default_file)?,
        (None, None, None, None) => {
            return Err(Failure(format!(
                "no admin token: give --token TOKEN (or set SESAME_ADMIN_TOKEN), --token-file PATH (or set \
                 SESAME_ADMIN_TOKEN_FILE), or run from the directory holding {DEFAULT_TOKEN_FILE} (written by \
                 the server in --dev mode); the server prints a token when it first starts on an empty store"
            )))
        }
    };
    check(token.trim())
}

fn read_file(path: &Path) -> Result<String, Failure> {
    std::fs::read_to_string(path).map_err(|e| {
        Failure(format!(
            "cannot read the admin token from {}: {e}",
            path.display()
        ))
    })
}

/// A token that cannot go into an `Authorization` header is refused here, with a message,
/// rather than by the HTTP library.
fn check(token: &str) -> Result<String, Failure> {
    if token.is_empty() {
        return Err(Failure("the admin token is empty".into()));
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Failure(
            "the admin token contains spaces or characters other than printable ASCII".into(),
        ));
    }
    Ok(token.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn missing() -> PathBuf {
        PathBuf::from("/nonexistent/sesame-cli-test/admin-token")
    }

    fn sources() -> Sources {
        Sources {
            default_file: missing(),
            ..Sources::default()
        }
    }

    fn temp_file(name: &str, contents: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!("sesame-cli-{}-{name}", std::process::id()));
        std::fs::write(&path, contents).expect("write temp file");
        path
    }

    #[test]
    fn command_line_beats_environment() {
        let file = temp_file("cli-file", "from-file\n");
        let s = Sources {
            arg_file: Some(file.clone()),
            env_token: Some("from-env".into()),
            ..sources()
        };
        assert_eq!(resolve(s).expect("resolves"), "from-file");
        let s = Sources {
            arg_token: Some("from-arg".into()),
            env_file: Some(file.clone()),
            ..sources()
        };
        assert_eq!(resolve(s).expect("resolves"), "from-arg");
        let _ = std::fs::remove_file(file);
    }

    #[test]
    fn two_sources_at_one_level_are_refused() {
        let s = Sources {
            arg_token: Some("a".into()),
            arg_file: Some(missing()),
            ..sources()
        };
        assert!(resolve(s).is_err());
        let s = Sources {
            env_token: Some("a".into()),
            env_file: Some(missing()),
            ..sources()
        };
        assert!(resolve(s).is_err());
    }

    #[test]
    fn environment_is_used_when_no_option_is_given() {
        let s = Sources {
            env_token: Some("tok".into()),
            ..sources()
        };
        assert_eq!(resolve(s).expect("resolves"), "tok");
    }

    #[test]
    fn default_file_is_read_and_trimmed() {
        let file = temp_file("default", "  abc123\r\n");
        let s = Sources {
            default_file: file.clone(),
            ..Sources::default()
        };
        assert_eq!(resolve(s).expect("resolves"), "abc123");
        let _ = std::fs::remove_file(file);
    }

    #[test]
    fn no_token_says_how_to_give_one() {
        let err = resolve(sources()).expect_err("no token");
        assert!(err.0.contains("--token"), "{}", err.0);
        assert!(err.0.contains("--token-file"), "{}", err.0);
        assert!(err.0.contains("SESAME_ADMIN_TOKEN"), "{}", err.0);
    }

    #[test]
    fn unreadable_file_is_named() {
        let s = Sources {
            arg_file: Some(missing()),
            ..sources()
        };
        let err = resolve(s).expect_err("missing file");
        assert!(
            err.0.contains("/nonexistent/sesame-cli-test/admin-token"),
            "{}",
            err.0
        );
    }

    #[test]
    fn tokens_that_cannot_be_sent_are_refused() {
        for bad in ["", "   ", "a b", "tök", "a\u{7}b"] {
            let s = Sources {
                arg_token: Some(bad.into()),
                ..sources()
            };
            assert!(resolve(s).is_err(), "{bad:?}");
        }
    }
}

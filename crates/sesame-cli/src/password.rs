//! Where a user's password comes from: the first line of stdin with `--password-stdin`, or a
//! prompt without echo when stdin is a terminal. Never the command line, where other local users
//! would see it in the process list and where it would stay in shell history.

use crate::api::PasswordInput;
use crate::output::clean;
use crate::Failure;
use std::io::{BufRead, IsTerminal};

/// Whether this build can turn off echo for a prompt (with `stty`, so without a new dependency).
const CAN_PROMPT: bool = cfg!(unix);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum How {
    Stdin,
    Prompt,
    /// `create` with neither `--password-stdin` nor a terminal: a user without a password.
    Without,
}

/// A password to read, once the rest of the command has been checked.
#[derive(Debug)]
pub struct Pending {
    how: How,
    input: PasswordInput,
}

/// Decided before the admin token is looked for, so that a command that has no way to get its
/// password says so first.
pub fn source(input: &PasswordInput) -> Result<Pending, Failure> {
    let how = how(input, std::io::stdin().is_terminal())?;
    Ok(Pending {
        how,
        input: input.clone(),
    })
}

fn how(input: &PasswordInput, stdin_is_terminal: bool) -> Result<How, Failure> {
    if input.from_stdin {
        Ok(How::Stdin)
    } else if stdin_is_terminal && CAN_PROMPT {
        Ok(How::Prompt)
    } else if !input.required && !stdin_is_terminal {
        Err(Failure(
            "no password: stdin is not a terminal to prompt on; give the password as the first line \
             of stdin with --password-stdin, or create the user without one with --no-password \
             (passwords are never taken as arguments)"
                .into(),
        ))
    } else if !input.required {
        Ok(How::Without)
    } else if stdin_is_terminal {
        Err(Failure(
            "cannot prompt for a password without echo on this system; give it on stdin with \
             --password-stdin (passwords are never taken as arguments)"
                .into(),
        ))
    } else {
        Err(Failure(
            "no password: stdin is not a terminal to prompt on; give the password as the first line \
             of stdin with --password-stdin (passwords are never taken as arguments)"
                .into(),
        ))
    }
}

impl Pending {
    /// `None` only for `create` without a password.
    pub fn read(self) -> Result<Option<String>, Failure> {
        match self.how {
            How::Without => Ok(None),
            How::Stdin => first_line(std::io::stdin().lock()).map(Some),
            How::Prompt => prompted(&self.input, ask),
        }
    }
}

/// One line, without its line ending; anything after it is ignored.
fn first_line(mut reader: impl BufRead) -> Result<String, Failure> {
    let mut line = String::new();
    let n = reader.read_line(&mut line).map_err(|e| match e.kind() {
        std::io::ErrorKind::InvalidData => Failure("the password on stdin is not valid UTF-8".into()),
        _ => Failure(format!("cannot read the password from stdin: {e}")),
    })?;
    if n == 0 {
        return Err(Failure(
            "--password-stdin: stdin is empty; give the password as its first line".into(),
        ));
    }
    let password = strip_line_ending(line);
    if password.is_empty() {
        return Err(Failure(
            "--password-stdin: the password (the first line of stdin) is empty".into(),
        ));
    }
    Ok(password)
}

fn strip_line_ending(mut line: String) -> String {
    if line.ends_with('\n') {
        line.pop();
        if line.ends_with('\r') {
            line.pop();
        }
    }
    line
}

/// Asks twice and requires the same answer; for `create`, an empty first answer means no
/// password (a user can be given one later with `set-password`).
fn prompted(
    input: &PasswordInput,
    mut ask: impl FnMut(&str) -> Result<String, Failure>,
) -> Result<Option<String>, Failure> {
    let who = clean(&input.user);
    let first = if input.required {
        ask(&format!("New password for '{who}': "))?
    } else {
        ask(&format!("Password for new user '{who}' (empty for none): "))?
    };
    if first.is_empty() {
        return if input.required {
            Err(Failure("the password is empty".into()))
        } else {
            Ok(None)
        };
    }
    if ask("Repeat the password: ")? != first {
        return Err(Failure("the passwords do not match".into()));
    }
    Ok(Some(first))
}

/// The prompt goes to stderr, so that stdout holds only the answer (`--json`).
fn ask(prompt: &str) -> Result<String, Failure> {
    use std::io::Write;
    let mut stderr = std::io::stderr();
    let line = {
        // Echo goes off before the prompt shows: what is typed (or pasted) as soon as it
        // appears would otherwise be echoed while `stty` is still starting.
        let _no_echo = tty::NoEcho::start()?;
        let _ = write!(stderr, "{prompt}").and_then(|()| stderr.flush());
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).map(|n| (n, line))
    };
    // The Enter that ended the answer was not echoed either.
    let _ = writeln!(stderr);
    match line {
        Ok((0, _)) => Err(Failure("no password given (end of input)".into())),
        Ok((_, line)) => Ok(strip_line_ending(line)),
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
            Err(Failure("the password is not valid UTF-8".into()))
        }
        Err(e) => Err(Failure(format!("cannot read the password: {e}"))),
    }
}

/// One line read without echo when stdin is a terminal (a pasted authorization code), or the
/// next line of stdin when it is not (a script, a test). Prompts go to stderr.
pub fn hidden_line(prompt: &str) -> Result<String, Failure> {
    use std::io::Write;
    let terminal = std::io::stdin().is_terminal();
    let mut stderr = std::io::stderr();
    let line = {
        // Before the prompt, as in `ask`.
        let _no_echo = if terminal {
            Some(tty::NoEcho::start()?)
        } else {
            None
        };
        let _ = write!(stderr, "{prompt}").and_then(|()| stderr.flush());
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).map(|n| (n, line))
    };
    let _ = writeln!(stderr);
    match line {
        Ok((0, _)) => Err(Failure("no answer (end of input)".into())),
        Ok((_, line)) => Ok(strip_line_ending(line)),
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
            Err(Failure("the answer is not valid UTF-8".into()))
        }
        Err(e) => Err(Failure(format!("cannot read the answer: {e}"))),
    }
}

#[cfg(unix)]
mod tty {
    //! Echo is turned off with `stty`, which works on the terminal that is its stdin (ours), and
    //! turned back on when the prompt ends, also when the process is interrupted: a shell left
    //! without echo after a Ctrl-C at a password prompt is a poor way to leave an admin.

    use crate::Failure;
    use std::process::{Command, Stdio};
    use std::sync::{mpsc, Mutex, MutexGuard, OnceLock, PoisonError};

    /// The terminal settings (`stty -g`) to restore while echo is off.
    static SAVED: Mutex<Option<String>> = Mutex::new(None);

    pub struct NoEcho {
        saved: String,
    }

    impl NoEcho {
        pub fn start() -> Result<Self, Failure> {
            restore_on_signals();
            let saved = stty(&["-g"])?;
            // Before echo goes off, so that a signal from now on restores it.
            *saved_settings() = Some(saved.clone());
            if let Err(e) = stty(&["-echo"]) {
                saved_settings().take();
                return Err(e);
            }
            Ok(NoEcho { saved })
        }
    }

    impl Drop for NoEcho {
        fn drop(&mut self) {
            // Restored before it is forgotten: a signal in between restores it once more.
            let _ = stty(&[&self.saved]);
            saved_settings().take();
        }
    }

    fn saved_settings() -> MutexGuard<'static, Option<String>> {
        SAVED.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn stty(args: &[&str]) -> Result<String, Failure> {
        let fail = |why: String| {
            Failure(format!(
                "cannot turn off echo for the password prompt: {why}; give the password on stdin \
                 with --password-stdin instead"
            ))
        };
        let out = Command::new("stty")
            .args(args)
            .stdin(Stdio::inherit())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| fail(format!("cannot run stty: {e}")))?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            return Err(fail(format!(
                "stty {}: {}",
                args.join(" "),
                crate::output::clean(err.trim())
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// From the first prompt on, SIGINT, SIGTERM and SIGQUIT restore the terminal (if echo is
    /// off) and end the process with the shell's 128 + signal status, as it would have ended
    /// anyway. Best effort: without it, only an interrupted prompt would be worse off.
    fn restore_on_signals() {
        static WATCHING: OnceLock<()> = OnceLock::new();
        WATCHING.get_or_init(|| {
            let (ready, registered) = mpsc::channel();
            let spawned = std::thread::Builder::new()
                .name("signals".into())
                .spawn(move || watch(ready));
            if spawned.is_ok() {
                // Until the handlers are in place a signal would still kill the process at
                // once, so echo goes off only after that.
                let _ = registered.recv();
            }
        });
    }

    fn watch(ready: mpsc::Sender<()>) {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
            return;
        };
        let status = runtime.block_on(async {
            let (Ok(mut int), Ok(mut term), Ok(mut quit)) = (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
                signal(SignalKind::quit()),
            ) else {
                return None;
            };
            let _ = ready.send(());
            tokio::select! {
                _ = int.recv() => Some(130),
                _ = term.recv() => Some(143),
                _ = quit.recv() => Some(131),
            }
        });
        if let Some(status) = status {
            if let Some(saved) = saved_settings().take() {
                let _ = stty(&[&saved]);
                eprintln!();
            }
            std::process::exit(status);
        }
    }
}

#[cfg(not(unix))]
mod tty {
    use crate::Failure;

    pub struct NoEcho;

    impl NoEcho {
        pub fn start() -> Result<Self, Failure> {
            Err(Failure(
                "cannot prompt for a password without echo on this system; give it on stdin with \
                 --password-stdin"
                    .into(),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(from_stdin: bool, required: bool) -> PasswordInput {
        PasswordInput {
            from_stdin,
            required,
            user: "alice".into(),
        }
    }

    #[test]
    fn source_is_stdin_when_asked_else_a_terminal_prompt() {
        for required in [false, true] {
            for terminal in [false, true] {
                assert_eq!(how(&input(true, required), terminal).ok(), Some(How::Stdin));
            }
            let on_terminal = if CAN_PROMPT { How::Prompt } else { How::Without };
            if CAN_PROMPT || !required {
                assert_eq!(how(&input(false, required), true).ok(), Some(on_terminal));
            }
        }
    }

    #[test]
    fn without_a_source_create_names_no_password_and_set_password_fails() {
        let err = how(&input(false, false), false).expect_err("no source");
        assert!(
            err.0.contains("--no-password") && err.0.contains("--password-stdin"),
            "{}",
            err.0
        );
        let err = how(&input(false, true), false).expect_err("no source");
        assert!(err.0.contains("--password-stdin"), "{}", err.0);
    }

    #[test]
    fn stdin_gives_its_first_line_without_the_line_ending() {
        let read = |s: &str| first_line(s.as_bytes());
        assert_eq!(
            read("pw with spaces \nsecond line\n").ok().as_deref(),
            Some("pw with spaces ")
        );
        assert_eq!(read("crlf\r\n").ok().as_deref(), Some("crlf"));
        assert_eq!(read("no newline").ok().as_deref(), Some("no newline"));
        assert_eq!(read("\t x\r\r\n").ok().as_deref(), Some("\t x\r"));
        assert!(read("").is_err());
        assert!(read("\n").is_err());
        assert!(first_line(&b"\xff\xfe\n"[..]).is_err());
    }

    /// Answers prompts from a list, recording them.
    fn answers<'a>(
        list: &'a [&'a str],
        asked: &'a mut Vec<String>,
    ) -> impl FnMut(&str) -> Result<String, Failure> + 'a {
        let mut next = list.iter();
        move |prompt| {
            asked.push(prompt.to_owned());
            next.next()
                .map(|s| s.to_string())
                .ok_or_else(|| Failure("end of input".into()))
        }
    }

    #[test]
    fn prompt_asks_twice_and_needs_the_same_answer() {
        let mut asked = Vec::new();
        let got = prompted(
            &input(false, true),
            answers(&["s3cret-pw", "s3cret-pw"], &mut asked),
        );
        assert_eq!(got.ok().flatten().as_deref(), Some("s3cret-pw"));
        assert_eq!(asked, ["New password for 'alice': ", "Repeat the password: "]);

        let mut asked = Vec::new();
        let err = prompted(
            &input(false, false),
            answers(&["one-pw-here", "another-pw"], &mut asked),
        )
        .expect_err("mismatch");
        assert_eq!(err.0, "the passwords do not match");
    }

    #[test]
    fn an_empty_prompt_answer_means_none_for_create_only() {
        let mut asked = Vec::new();
        let got = prompted(&input(false, false), answers(&[""], &mut asked));
        assert_eq!(got.ok(), Some(None));
        assert_eq!(asked, ["Password for new user 'alice' (empty for none): "]);

        let mut asked = Vec::new();
        assert!(prompted(&input(false, true), answers(&[""], &mut asked)).is_err());
        assert_eq!(asked.len(), 1);
    }

    #[test]
    fn prompts_escape_control_characters_in_the_user_name() {
        let mut asked = Vec::new();
        let mut odd = input(false, true);
        odd.user = "a\u{1b}[2Jb".into();
        let _ = prompted(&odd, answers(&[], &mut asked));
        assert_eq!(asked, ["New password for 'a\\u{1b}[2Jb': "]);
    }
}

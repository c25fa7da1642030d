//! Errors a person can act on, beyond those in `tests/signin.rs`: a TLS certificate the machine
//! does not trust (a real self-signed https listener), and pasted codes that are for another
//! client or have expired.

mod support;

use std::net::TcpStream;
use std::process::{Command, Stdio};
use support::{browser, query_param, rest_of, server};
use tokio::io::AsyncWriteExt;

/// `openssl s_server` with a fresh self-signed certificate for 127.0.0.1; killed on drop.
struct SelfSigned {
    child: std::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for SelfSigned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn self_signed() -> SelfSigned {
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
        ])
        .arg(dir.path().join("key.pem"))
        .arg("-out")
        .arg(dir.path().join("cert.pem"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl(1)");
    assert!(status.success());
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let child = Command::new("openssl")
        .args(["s_server", "-quiet", "-www", "-accept"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("-cert")
        .arg(dir.path().join("cert.pem"))
        .arg("-key")
        .arg(dir.path().join("key.pem"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = SelfSigned {
        child,
        port,
        _dir: dir,
    };
    for _ in 0..100 {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return server;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("openssl s_server did not listen on {port}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_untrusted_certificate_is_a_tls_error_that_says_so() {
    let s = server().await;
    let tls = self_signed();
    let issuer = format!("https://127.0.0.1:{}/t/default", tls.port);
    let (code, _, err) = s
        .sesame(&["login", "--issuer", &issuer, "--client-id", "sesame-cli"])
        .await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("TLS error talking to https://127.0.0.1:"), "{err}");
    assert!(err.to_ascii_lowercase().contains("certificate"), "{err}");
    assert!(!s.config_dir().join("config.toml").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn pasted_codes_for_another_client_or_expired_are_refused_with_what_to_do() {
    let s = server().await;
    // Another application registered for the same /oob page.
    let resp = reqwest::Client::new()
        .post(format!(
            "{}/admin/v1/tenants/default/clients",
            s.running.public_url
        ))
        .bearer_auth(&s.admin_token)
        .json(&serde_json::json!({
            "client_id": "other-app", "name": "Other", "client_type": "public",
            "redirect_uris": [format!("{}/oob", s.issuer)],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    let other = format!(
        "{}/authorize?response_type=code&client_id=other-app&scope=openid&state=s1\
         &redirect_uri={}&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM\
         &code_challenge_method=S256",
        s.issuer,
        form_urlencoded::byte_serialize(format!("{}/oob", s.issuer).as_bytes()).collect::<String>()
    );
    let foreign = query_param(&browser(&other, true).await, "code").unwrap();

    let (mut child, url, lines) = s
        .start(&[
            "login",
            "--issuer",
            &s.issuer,
            "--client-id",
            &s.client_id,
            "--no-browser",
        ])
        .await;
    let own = query_param(&browser(&url, true).await, "code").unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // A code of another application is refused, and the prompt asks again.
    stdin.write_all(format!("{foreign}\n").as_bytes()).await.unwrap();
    // The person's own code, after codes stop being valid (a minute).
    tokio::time::sleep(std::time::Duration::from_secs(62)).await;
    stdin
        .write_all(format!("{own}\n{own}\n").as_bytes())
        .await
        .unwrap();
    drop(stdin);
    assert_eq!(child.wait().await.unwrap().code(), Some(1));
    let err = rest_of(lines).await;
    assert_eq!(err.matches("That code was not accepted").count(), 2, "{err}");
    assert!(
        err.contains("has expired") && err.contains("for another application"),
        "{err}"
    );
    assert!(
        err.contains("run `sesame login --no-browser` again for a new one"),
        "{err}"
    );
    assert!(
        !err.contains(&own) && !err.contains(&foreign),
        "codes are not echoed: {err}"
    );
    assert!(!s.credentials_path().exists());
}

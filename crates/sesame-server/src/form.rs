//! Request bodies: `application/x-www-form-urlencoded` for the protocol endpoints and JSON for
//! the admin API, each capped at 64 KiB, with every rejection answered as a JSON error object.

use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;
use sesame_core::Error;

pub const BODY_LIMIT: usize = 64 * 1024;

async fn body_bytes(req: Request) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, &()).await.map_err(|rej| {
        if rej.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError(Error::PayloadTooLarge(BODY_LIMIT))
        } else {
            ApiError(Error::invalid_request("the request body could not be read"))
        }
    })
}

fn media_type_is(req: &Request, expected: &str) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case(expected))
}

/// A parsed form body. RFC 6749 §3.1: parameters must not repeat, and an empty value is the
/// same as an absent one.
pub struct Form {
    params: Vec<(String, String)>,
}

impl Form {
    pub fn parse(body: &[u8]) -> Result<Form, Error> {
        if std::str::from_utf8(body).is_err() {
            return Err(Error::invalid_request("the form body is not UTF-8"));
        }
        let params = form_urlencoded::parse(body)
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        Ok(Form { params })
    }

    /// Every parameter, in order.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.params
    }

    /// A parameter that may appear at most once.
    pub fn single(&self, name: &str) -> Result<Option<&str>, Error> {
        let mut found = self.params.iter().filter(|(k, _)| k == name);
        let first = found.next().map(|(_, v)| v.as_str());
        if found.next().is_some() {
            return Err(Error::InvalidRequest(format!("parameter '{name}' is repeated")));
        }
        Ok(first)
    }

    /// A parameter that must be present exactly once.
    pub fn required(&self, name: &str) -> Result<&str, Error> {
        self.single(name)?
            .ok_or_else(|| Error::InvalidRequest(format!("parameter '{name}' is missing")))
    }

    /// A parameter that may repeat (RFC 8707 `resource`).
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.params
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl<S: Send + Sync> FromRequest<S> for Form {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &S) -> Result<Self, Self::Rejection> {
        if !media_type_is(&req, "application/x-www-form-urlencoded") {
            return Err(ApiError(Error::invalid_request(
                "the body must be application/x-www-form-urlencoded",
            )));
        }
        Ok(Form::parse(&body_bytes(req).await?)?)
    }
}

/// A form body for the browser-facing routes (authorize, login, consent, logout), which answer a
/// bad body with an HTML page rather than JSON: the outcome is the handler's to render.
pub struct BrowserForm(pub Result<Form, Error>);

impl<S: Send + Sync> FromRequest<S> for BrowserForm {
    type Rejection = std::convert::Infallible;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Ok(BrowserForm(
            Form::from_request(req, state).await.map_err(|ApiError(e)| e),
        ))
    }
}

/// RFC 6750 §2.2: a form body may carry the bearer token; a body of any other type is not
/// read. Bad form bodies are refused like every other form.
pub struct OptionalForm(pub Option<Form>);

impl<S: Send + Sync> FromRequest<S> for OptionalForm {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !media_type_is(&req, "application/x-www-form-urlencoded") {
            return Ok(OptionalForm(None));
        }
        Ok(OptionalForm(Some(Form::from_request(req, state).await?)))
    }
}

/// A JSON body for the admin API; an empty body is read as `{}`.
pub struct Json<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &S) -> Result<Self, Self::Rejection> {
        let has_type = req.headers().contains_key(header::CONTENT_TYPE);
        if has_type && !media_type_is(&req, "application/json") {
            return Err(ApiError(Error::invalid_request(
                "the body must be application/json",
            )));
        }
        let bytes = body_bytes(req).await?;
        let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &bytes
        };
        parse_json(bytes).map(Json).map_err(ApiError)
    }
}

/// Parses an admin API body. The error names the field at fault and what it must be, without
/// the parser's line and column (a person reading it typed no lines; a program gets nothing
/// from them).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let (path, inner) = match serde_path_to_error::deserialize(&mut de) {
        // Trailing characters after the value are an error too, as in `serde_json::from_slice`.
        Ok(v) => match de.end() {
            Ok(()) => return Ok(v),
            Err(e) => (String::new(), e),
        },
        Err(e) => (e.path().to_string(), e.into_inner()),
    };
    let what = without_position(&inner.to_string());
    let message = match inner.classify() {
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
            format!("the body is not valid JSON ({what})")
        }
        _ if path == "." || path.is_empty() => format!("the JSON body: {what}"),
        _ => format!("field `{path}`: {what}"),
    };
    Err(Error::InvalidRequest(message))
}

/// `"… at line 1 column 13"` → `"…"`.
fn without_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) if message[i..].contains(" column ") => message[..i].to_owned(),
        _ => message.to_owned(),
    }
}

/// Path parameters; a segment that cannot be decoded (invalid UTF-8, bad percent-encoding)
/// names nothing that exists, so it answers the JSON `not_found` like any unknown name.
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> axum::extract::FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(v)| Path(v))
            .map_err(|_| ApiError(Error::NotFound("no such tenant or endpoint".into())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_parameters_are_refused_but_resources_may_repeat() {
        let f = Form::parse(b"grant_type=a&grant_type=b&resource=x&resource=y&scope=").unwrap();
        assert!(f
            .single("grant_type")
            .unwrap_err()
            .to_string()
            .contains("repeated"));
        assert_eq!(f.all("resource").collect::<Vec<_>>(), ["x", "y"]);
        assert_eq!(f.single("scope").unwrap(), None, "empty means absent");
        assert!(f.required("code").unwrap_err().to_string().contains("missing"));
        assert!(Form::parse(b"a=\xff").is_err());
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        #[serde(default)]
        uris: Vec<String>,
        ttl: Option<i64>,
    }

    #[test]
    fn json_errors_name_the_field_and_have_no_parser_position() {
        for (body, want) in [
            (
                &br#"{"name": "a", "ttl": "soon"}"#[..],
                "field `ttl`: invalid type: string \"soon\", expected i64",
            ),
            (
                br#"{"name": "a", "uris": [1]}"#,
                "field `uris[0]`: invalid type: integer `1`, expected a string",
            ),
            (
                br#"{"name": "a", "nmae": 1}"#,
                "unknown field `nmae`, expected one of `name`, `uris`, `ttl`",
            ),
            (br#"{"ttl": 5}"#, "missing field `name`"),
            (br#"{"name": "a",}"#, "not valid JSON"),
            (br#"{"name": "a"} x"#, "not valid JSON"),
        ] {
            let err = parse_json::<Body>(body).unwrap_err().to_string();
            assert!(err.contains(want), "{err}");
            assert!(!err.contains("line") && !err.contains("column"), "{err}");
        }
        assert_eq!(parse_json::<Body>(br#"{"name": "a"}"#).unwrap().name, "a");
    }
}

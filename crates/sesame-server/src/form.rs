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
        serde_json::from_slice(bytes)
            .map(Json)
            .map_err(|e| ApiError(Error::InvalidRequest(format!("the JSON body is not valid: {e}"))))
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
}

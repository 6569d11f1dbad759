//! Successful responses as PostgREST shapes them: JSON arrays or a single object,
//! `Content-Range`, `Preference-Applied`, `Location`.

use axum::body::Body;
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::Value as Json;

use super::error::RestError;
use super::negotiate::Accept;
use super::sql::JsonRow;

pub const JSON: &str = "application/json; charset=utf-8";
pub const OBJECT: &str = "application/vnd.pgrst.object+json; charset=utf-8";

/// `Content-Range` for `n` rows starting at `lower`, out of `total` if counted:
/// `0-9/123`, `0-9/*`, or `*/0` / `*/*` when there is no row.
pub fn content_range(lower: u64, n: usize, total: Option<u64>) -> String {
    let total_s = total.map(|t| t.to_string()).unwrap_or_else(|| "*".into());
    if n == 0 || total == Some(0) {
        format!("*/{total_s}")
    } else {
        format!("{lower}-{}/{total_s}", lower + n as u64 - 1)
    }
}

/// The body for `rows`: an array, or the one object a singular `Accept` asked for
/// (`PGRST116` when there is not exactly one row).
pub fn rows_body(rows: Vec<JsonRow>, accept: Accept) -> Result<Vec<u8>, RestError> {
    let value = match accept {
        Accept::Json => Json::Array(rows.into_iter().map(Json::Object).collect()),
        Accept::Object => single(rows)?,
    };
    Ok(serde_json::to_vec(&value).unwrap_or_default())
}

/// The one row of a singular request.
pub fn single(mut rows: Vec<JsonRow>) -> Result<Json, RestError> {
    if rows.len() != 1 {
        return Err(RestError::NotSingular(rows.len()));
    }
    Ok(Json::Object(rows.remove(0)))
}

/// A response under construction.
pub struct Reply {
    status: StatusCode,
    headers: Vec<(HeaderName, String)>,
    body: Option<(Vec<u8>, &'static str)>,
}

impl Reply {
    pub fn new(status: StatusCode) -> Reply {
        Reply { status, headers: Vec::new(), body: None }
    }

    pub fn header(mut self, name: HeaderName, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }

    /// `Preference-Applied`, when any preference was honoured.
    pub fn applied(self, applied: &[String]) -> Reply {
        if applied.is_empty() {
            return self;
        }
        let v = applied.join(", ");
        self.header(HeaderName::from_static("preference-applied"), v)
    }

    pub fn body(mut self, bytes: Vec<u8>, accept: Accept) -> Reply {
        self.body = Some((bytes, if accept == Accept::Object { OBJECT } else { JSON }));
        self
    }

    pub fn json(mut self, value: &Json) -> Reply {
        self.body = Some((serde_json::to_vec(value).unwrap_or_default(), JSON));
        self
    }

    /// Builds the response; `head` drops the body but keeps its headers.
    pub fn finish(self, head: bool) -> Response {
        let mut resp = Response::new(Body::empty());
        *resp.status_mut() = self.status;
        let h = resp.headers_mut();
        for (name, value) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&value) {
                h.append(name, v);
            }
        }
        if let Some((bytes, ct)) = self.body {
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
            if !head {
                *resp.body_mut() = Body::from(bytes);
            }
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_forms() {
        assert_eq!(content_range(0, 10, Some(123)), "0-9/123");
        assert_eq!(content_range(5, 2, None), "5-6/*");
        assert_eq!(content_range(0, 0, Some(0)), "*/0");
        assert_eq!(content_range(0, 0, None), "*/*");
        assert_eq!(content_range(20, 0, Some(5)), "*/5");
    }
}

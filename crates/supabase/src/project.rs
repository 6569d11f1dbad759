//! Where a Supabase project is and how to reach it: its base URL, its API key (the `anon` /
//! publishable key) and one HTTP client, shared by [`crate::auth::Auth`] and
//! [`crate::rest::Rest`] (and cheap to clone: every part is reference-counted).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;

use crate::error::InvalidUrl;

/// How long establishing a connection may take before the request fails as transient.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a whole request (connect, send, answer) may take before it fails as transient.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// What every request sends in `X-Client-Info`.
pub(crate) const CLIENT_INFO: &str = concat!("ruwad-supabase/", env!("CARGO_PKG_VERSION"));

/// A Supabase project (hosted, self-hosted, or the local `ruwad-server`).
#[derive(Clone)]
pub struct Project {
    base: Url,
    anon_key: Arc<str>,
    http: reqwest::Client,
}

impl fmt::Debug for Project {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The key is not secret (it ships in every web client) but has no place in logs either.
        f.debug_struct("Project").field("url", &self.base.as_str()).finish_non_exhaustive()
    }
}

impl Project {
    /// A project at `url` (`https://<ref>.supabase.co`, or `http://127.0.0.1:<port>` for the
    /// local backend; a path prefix is kept) with its API key. Uses a new HTTP client that
    /// gives up connecting after 10 s and on a whole request after 30 s.
    pub fn new(url: &str, anon_key: &str) -> Result<Project, InvalidUrl> {
        let invalid = |reason: &str| InvalidUrl { url: url.to_string(), reason: reason.to_string() };
        let base = Url::parse(url).map_err(|e| invalid(&e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(invalid("the scheme must be http or https"));
        }
        if base.cannot_be_a_base() || base.query().is_some() || base.fragment().is_some() {
            return Err(invalid("expected a base URL without query or fragment"));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .tcp_nodelay(true)
            .build()
            .map_err(|e| invalid(&format!("cannot build the HTTP client: {e}")))?;
        Ok(Project { base, anon_key: anon_key.into(), http })
    }

    /// Uses `http` for every request instead (to share a connection pool with other parts of
    /// the app, or to set other timeouts). Its timeouts decide when a request fails as
    /// transient.
    pub fn with_http_client(mut self, http: reqwest::Client) -> Project {
        self.http = http;
        self
    }

    pub fn url(&self) -> &Url {
        &self.base
    }

    pub fn anon_key(&self) -> &str {
        &self.anon_key
    }

    /// The base URL with `segments` appended, each percent-encoded as one path segment.
    pub(crate) fn endpoint<'a>(&self, segments: impl IntoIterator<Item = &'a str>) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        // `path_segments_mut` only fails for cannot-be-a-base URLs, which `new` refuses.
        url
    }

    /// A request carrying the headers every Supabase service wants: `apikey`, `Authorization:
    /// Bearer <bearer>` and `X-Client-Info`.
    pub(crate) fn request(&self, method: reqwest::Method, url: Url, bearer: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, url)
            .header("apikey", &*self.anon_key)
            .header(reqwest::header::AUTHORIZATION, format!("Bearer {bearer}"))
            .header("X-Client-Info", CLIENT_INFO)
    }
}

/// A whole HTTP answer, read before it is looked at.
pub(crate) struct Answer {
    pub status: reqwest::StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: bytes::Bytes,
}

/// Sends `request` and reads the whole answer; a failure on the way (connect, timeout, a body
/// cut short) is the transport error.
pub(crate) async fn send(request: reqwest::RequestBuilder) -> Result<Answer, reqwest::Error> {
    let response = request.send().await?;
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.bytes().await?;
    Ok(Answer { status, headers, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_keep_a_path_prefix_and_encode_segments() {
        let p = Project::new("http://127.0.0.1:5000", "k").expect("valid");
        assert_eq!(p.endpoint(["rest", "v1", "chat_messages"]).as_str(), "http://127.0.0.1:5000/rest/v1/chat_messages");
        let p = Project::new("https://example.test/supabase/", "k").expect("valid");
        assert_eq!(p.endpoint(["auth", "v1", "token"]).as_str(), "https://example.test/supabase/auth/v1/token");
        assert_eq!(p.endpoint(["rest", "v1", "a b/c"]).as_str(), "https://example.test/supabase/rest/v1/a%20b%2Fc");
    }

    #[test]
    fn only_http_base_urls_are_accepted() {
        for bad in ["not a url", "ftp://example.test", "mailto:a@b.c", "http://example.test/?a=1"] {
            assert!(Project::new(bad, "k").is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn debug_does_not_print_the_key() {
        let p = Project::new("http://127.0.0.1:1", "secret-looking-key").expect("valid");
        assert!(!format!("{p:?}").contains("secret-looking-key"));
    }
}

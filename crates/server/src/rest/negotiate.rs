//! Request headers that shape the answer: `Prefer`, `Accept`, `Range`/`Range-Unit` and the
//! schema profile headers.
//!
//! - `Prefer` values may come in several headers and comma-joined (supabase-js appends them:
//!   `resolution=merge-duplicates, return=representation`). Unknown values are ignored, as
//!   PostgREST does with `handling=lenient` (the default); with `handling=strict` they are a
//!   `PGRST122` error. The ones honoured are echoed in `Preference-Applied`.
//! - `Accept`: JSON arrays (`application/json`, `*/*`, none) or a single object
//!   (`application/vnd.pgrst.object+json`, what `.single()` sends); anything else is
//!   `PGRST107` (406).
//! - `Range: 0-9` (unit `items`) selects a slice like `offset`/`limit`; `PGRST103` (416) when
//!   the lower bound is above the upper one.
//! - `Accept-Profile` / `Content-Profile` must name `public`, the only exposed schema
//!   (`PGRST106`).

use axum::http::HeaderMap;

use super::error::{RangeError, RestError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Return {
    Minimal,
    Representation,
    HeadersOnly,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    MergeDuplicates,
    IgnoreDuplicates,
}

/// The `Prefer` header, parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prefs {
    pub ret: Option<Return>,
    pub count: bool,
    pub resolution: Option<Resolution>,
    /// `missing=default`: keys absent from an object of a `columns=` insert take the column
    /// default instead of NULL.
    pub missing_default: bool,
    /// Values to echo in `Preference-Applied`, in the order received.
    pub applied: Vec<String>,
}

fn header_values<'a>(headers: &'a HeaderMap, name: &str) -> impl Iterator<Item = &'a str> {
    headers.get_all(name).into_iter().filter_map(|v| v.to_str().ok())
}

pub fn prefs(headers: &HeaderMap) -> Result<Prefs, RestError> {
    let mut p = Prefs::default();
    let mut invalid = Vec::new();
    let mut strict = false;
    for item in header_values(headers, "prefer").flat_map(|v| v.split(',')).map(str::trim).filter(|s| !s.is_empty()) {
        let mut applied = true;
        match item {
            "return=minimal" => p.ret = Some(Return::Minimal),
            "return=representation" => p.ret = Some(Return::Representation),
            "return=headers-only" => p.ret = Some(Return::HeadersOnly),
            "count=exact" | "count=planned" | "count=estimated" => p.count = true,
            "resolution=merge-duplicates" => p.resolution = Some(Resolution::MergeDuplicates),
            "resolution=ignore-duplicates" => p.resolution = Some(Resolution::IgnoreDuplicates),
            "missing=default" => p.missing_default = true,
            "missing=null" => p.missing_default = false,
            "handling=strict" => strict = true,
            "handling=lenient" => strict = false,
            _ => {
                applied = false;
                invalid.push(item.to_string());
            }
        }
        if applied && !item.starts_with("handling=") {
            p.applied.push(item.to_string());
        }
    }
    if strict && !invalid.is_empty() {
        return Err(RestError::InvalidPreferences(invalid));
    }
    Ok(p)
}

/// What the client accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accept {
    /// A JSON array of rows.
    Json,
    /// Exactly one row as an object (`application/vnd.pgrst.object+json`).
    Object,
}

pub fn accept(headers: &HeaderMap) -> Result<Accept, RestError> {
    let mut offered = Vec::new();
    for range in header_values(headers, "accept").flat_map(|v| v.split(',')) {
        let media = range.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        if media.is_empty() {
            continue;
        }
        match media.as_str() {
            "*/*" | "application/*" | "application/json" | "application/vnd.pgrst.array+json" => {
                return Ok(Accept::Json)
            }
            "application/vnd.pgrst.object+json" | "application/vnd.pgrst.object" => return Ok(Accept::Object),
            _ => offered.push(media),
        }
    }
    if offered.is_empty() {
        Ok(Accept::Json)
    } else {
        Err(RestError::MediaType(offered.join(", ")))
    }
}

/// The `Range` header of a read: `(first, last)` row indexes, `last` open when absent.
pub fn range(headers: &HeaderMap) -> Result<Option<(u64, Option<u64>)>, RestError> {
    let unit = header_values(headers, "range-unit").next().unwrap_or("items").trim();
    if !unit.eq_ignore_ascii_case("items") {
        return Ok(None);
    }
    let Some(raw) = header_values(headers, "range").next() else { return Ok(None) };
    let raw = raw.trim();
    let raw = raw.strip_prefix("items=").unwrap_or(raw);
    let Some((lo, hi)) = raw.split_once('-') else { return Ok(None) };
    let Ok(lo) = lo.trim().parse::<u64>() else { return Ok(None) };
    let hi = match hi.trim() {
        "" => None,
        h => match h.parse::<u64>() {
            Ok(h) => Some(h),
            Err(_) => return Ok(None),
        },
    };
    if hi.is_some_and(|h| h < lo) {
        return Err(RestError::Range(RangeError::LowerAboveUpper));
    }
    Ok(Some((lo, hi)))
}

/// Refuses a schema other than `public` in `Accept-Profile` (reads) or `Content-Profile`
/// (writes).
pub fn check_profile(headers: &HeaderMap, write: bool) -> Result<(), RestError> {
    let name = if write { "content-profile" } else { "accept-profile" };
    match header_values(headers, name).next().map(str::trim) {
        None | Some("public") => Ok(()),
        Some(other) => Err(RestError::InvalidSchema(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn prefer_values_combine_across_headers() {
        let p = prefs(&headers(&[
            ("prefer", "resolution=merge-duplicates, return=representation"),
            ("prefer", "count=exact"),
        ]))
        .expect("ok");
        assert_eq!(p.ret, Some(Return::Representation));
        assert_eq!(p.resolution, Some(Resolution::MergeDuplicates));
        assert!(p.count);
        assert_eq!(p.applied, vec!["resolution=merge-duplicates", "return=representation", "count=exact"]);
        assert!(prefs(&headers(&[("prefer", "bogus=1")])).is_ok());
        assert!(matches!(
            prefs(&headers(&[("prefer", "handling=strict, bogus=1")])),
            Err(RestError::InvalidPreferences(_))
        ));
    }

    #[test]
    fn accept_picks_object_or_json_or_refuses() {
        assert_eq!(accept(&headers(&[])).expect("ok"), Accept::Json);
        assert_eq!(accept(&headers(&[("accept", "application/vnd.pgrst.object+json")])).expect("ok"), Accept::Object);
        assert_eq!(accept(&headers(&[("accept", "text/csv, */*;q=0.1")])).expect("ok"), Accept::Json);
        assert!(matches!(accept(&headers(&[("accept", "text/csv")])), Err(RestError::MediaType(m)) if m == "text/csv"));
    }

    #[test]
    fn ranges_parse_and_reversed_ones_are_416() {
        assert_eq!(range(&headers(&[("range", "0-9")])).expect("ok"), Some((0, Some(9))));
        assert_eq!(range(&headers(&[("range", "5-")])).expect("ok"), Some((5, None)));
        assert_eq!(range(&headers(&[("range", "junk")])).expect("ok"), None);
        assert!(matches!(range(&headers(&[("range", "9-2")])), Err(RestError::Range(RangeError::LowerAboveUpper))));
    }
}

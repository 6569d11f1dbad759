//! The query string of a REST request: decoding and sorting the parameters by role.
//!
//! supabase-js builds its query strings with `URLSearchParams`, i.e.
//! `application/x-www-form-urlencoded`: `+` is a space and everything else may be
//! percent-encoded (`%2C`, `%28`, `%22`, …). [`decode`] undoes exactly that, on `&`-separated
//! pairs; a pair without `=` has no value and is ignored like PostgREST ignores it.
//!
//! Classification follows PostgREST: `select`, `columns` and `on_conflict` are reserved;
//! `order`, `limit`, `offset`, `and`, `or` are reserved by their last dotted word (a dotted
//! prefix names an embedded resource, which this backend does not offer → `PGRST108`); any
//! other pair is a *filter* when its key is dotted or its value starts with an operator, and
//! otherwise an RPC argument. On a table PostgREST silently ignores such a pair; here it is
//! parsed as a filter instead (see `query.rs`), so that a typo like `id=eqq.1` is a `PGRST100`
//! rather than a `PATCH` or `DELETE` of every row the caller may touch. `apikey` is the
//! gateway's and never a parameter.

use super::error::RestError;

/// Operators PostgREST knows (for classification; which ones this backend can evaluate is
/// decided when the filter is resolved).
pub const OPERATORS: &[&str] = &[
    "eq",
    "gte",
    "gt",
    "lte",
    "lt",
    "neq",
    "like",
    "ilike",
    "cs",
    "cd",
    "ov",
    "sl",
    "sr",
    "nxr",
    "nxl",
    "adj",
    "match",
    "imatch",
    "isdistinct",
];
/// Full-text search operators.
pub const FTS_OPERATORS: &[&str] = &["fts", "plfts", "phfts", "wfts"];

/// The parameters of one request, sorted by role, still unparsed.
#[derive(Debug, Default, Clone)]
pub struct QueryParams {
    pub select: Option<String>,
    pub columns: Option<String>,
    pub on_conflict: Option<String>,
    pub order: Option<String>,
    pub limit: Option<String>,
    pub offset: Option<String>,
    /// `(operator, value)`: operator is `and`, `or`, `not.and` or `not.or`.
    pub logic: Vec<(String, String)>,
    /// `(column, operator expression)` in query order.
    pub filters: Vec<(String, String)>,
    /// Everything else: arguments of an RPC.
    pub args: Vec<(String, String)>,
}

/// Form-decodes a query string into `(key, value)` pairs, in order.
pub fn decode(raw: &str) -> Result<Vec<(String, Option<String>)>, RestError> {
    let mut out = Vec::new();
    for pair in raw.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = match pair.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (pair, None),
        };
        out.push((decode_component(k)?, v.map(decode_component).transpose()?));
    }
    Ok(out)
}

fn decode_component(s: &str) -> Result<String, RestError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| RestError::QueryParam {
        message: "invalid query string".into(),
        details: "a percent-encoded query parameter is not valid UTF-8".into(),
    })
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Whether a parameter value starts with an operator (PostgREST's test for "is a filter").
fn has_operator(value: &str) -> bool {
    let mut parts = value.split('.');
    let first = parts.next().unwrap_or("");
    let more = parts.next().is_some();
    match first {
        "not" => more,
        "is" | "in" => true,
        x if OPERATORS.contains(&x) || FTS_OPERATORS.contains(&x) => true,
        _ => value.split_once('(').is_some_and(|(op, _)| FTS_OPERATORS.contains(&op)),
    }
}

impl QueryParams {
    /// Decodes and classifies a raw query string.
    pub fn parse(raw: Option<&str>) -> Result<QueryParams, RestError> {
        let mut q = QueryParams::default();
        for (key, value) in decode(raw.unwrap_or(""))? {
            let Some(value) = value else { continue };
            if key == "apikey" {
                continue;
            }
            match key.as_str() {
                "select" => {
                    set_first(&mut q.select, value);
                    continue;
                }
                "columns" => {
                    set_first(&mut q.columns, value);
                    continue;
                }
                "on_conflict" => {
                    set_first(&mut q.on_conflict, value);
                    continue;
                }
                _ if value.is_empty() => continue,
                _ => {}
            }
            let words: Vec<&str> = key.split('.').collect();
            let last = words.last().copied().unwrap_or("");
            match last {
                "order" | "limit" | "offset" => {
                    if words.len() > 1 {
                        return Err(RestError::NotEmbedded(words[..words.len() - 1].join(".")));
                    }
                    let slot = match last {
                        "order" => &mut q.order,
                        "limit" => &mut q.limit,
                        _ => &mut q.offset,
                    };
                    set_first(slot, value);
                }
                "and" | "or" => {
                    let path: Vec<&str> = words[..words.len() - 1].iter().copied().filter(|w| *w != "not").collect();
                    if let Some(first) = path.first() {
                        return Err(RestError::NotEmbedded((*first).to_string()));
                    }
                    let op = if words.contains(&"not") { format!("not.{last}") } else { last.to_string() };
                    q.logic.push((op, value));
                }
                _ if words.len() > 1 => {
                    // A dotted key filters an embedded resource.
                    return Err(RestError::NotEmbedded(words[..words.len() - 1].join(".")));
                }
                _ if has_operator(&value) => q.filters.push((key, value)),
                _ => q.args.push((key, value)),
            }
        }
        Ok(q)
    }
}

fn set_first(slot: &mut Option<String>, value: String) {
    if slot.is_none() {
        *slot = Some(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_decoding_handles_plus_and_percent() {
        let pairs = decode("title=eq.hello+world&name=in.%28a%2C%22b%2Cc%22%29&x&bad=%zz%4").expect("decodes");
        assert_eq!(pairs[0], ("title".into(), Some("eq.hello world".into())));
        assert_eq!(pairs[1], ("name".into(), Some("in.(a,\"b,c\")".into())));
        assert_eq!(pairs[2], ("x".into(), None));
        assert_eq!(pairs[3], ("bad".into(), Some("%zz%4".into())));
        assert_eq!(decode("a=%2B").expect("decodes")[0].1.as_deref(), Some("+"));
        assert_eq!(decode("a=%D8%B1%D9%88%D8%A7%D8%AF").expect("decodes")[0].1.as_deref(), Some("رواد"));
        assert!(decode("a=%FF").is_err(), "invalid UTF-8 is refused");
    }

    #[test]
    fn parameters_are_sorted_by_role() {
        let q = QueryParams::parse(Some(
            "select=id&id=eq.1&or=(a.eq.1)&not.and=(b.eq.2)&order=id.desc&limit=5&offset=2&plain=value&apikey=k.e.y&columns=a&on_conflict=id",
        ))
        .expect("parses");
        assert_eq!(q.select.as_deref(), Some("id"));
        assert_eq!(q.filters, vec![("id".to_string(), "eq.1".to_string())]);
        assert_eq!(
            q.logic,
            vec![("or".to_string(), "(a.eq.1)".to_string()), ("not.and".to_string(), "(b.eq.2)".to_string())]
        );
        assert_eq!(q.order.as_deref(), Some("id.desc"));
        assert_eq!((q.limit.as_deref(), q.offset.as_deref()), (Some("5"), Some("2")));
        assert_eq!(q.args, vec![("plain".to_string(), "value".to_string())]);
        assert_eq!((q.columns.as_deref(), q.on_conflict.as_deref()), (Some("a"), Some("id")));
    }

    #[test]
    fn embedded_resource_parameters_are_refused() {
        assert!(matches!(QueryParams::parse(Some("rooms.order=id")), Err(RestError::NotEmbedded(r)) if r == "rooms"));
        assert!(matches!(QueryParams::parse(Some("rooms.id=eq.1")), Err(RestError::NotEmbedded(r)) if r == "rooms"));
    }

    #[test]
    fn operator_detection_matches_postgrest() {
        assert!(has_operator("eq.1"));
        assert!(has_operator("not.eq.1"));
        assert!(has_operator("in.(1)"));
        assert!(has_operator("fts(english).x"));
        assert!(!has_operator("value"));
        assert!(!has_operator("not"));
        assert!(!has_operator("foo.bar"));
    }
}

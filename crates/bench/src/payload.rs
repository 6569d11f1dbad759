//! The benchmark's 64-byte message: a sequence number and a send time (nanoseconds since the
//! bench started, same process for sender and receivers), fixed-width JSON so receivers find
//! both fields without a JSON parser.

pub const SIZE: usize = 64;

/// `{"s":"0000000042","t":"00000000000123456789","p":"xxxxxxxxxxxx"}` — exactly 64 bytes.
pub fn encode(seq: u64, t_nanos: u64) -> Vec<u8> {
    let mut s = format!("{{\"s\":\"{seq:010}\",\"t\":\"{t_nanos:020}\",\"p\":\"");
    while s.len() < SIZE - 2 {
        s.push('x');
    }
    s.push_str("\"}");
    s.into_bytes()
}

/// Finds `(seq, t)` in a payload made by [`encode`], wherever it sits in a larger frame.
pub fn decode(bytes: &[u8]) -> Option<(u64, u64)> {
    let at = find(bytes, b"{\"s\":\"")?;
    let b = &bytes[at..];
    if b.len() < 40 {
        return None;
    }
    Some((digits(&b[6..16])?, digits(&b[23..43])?))
}

fn digits(b: &[u8]) -> Option<u64> {
    b.iter().try_fold(0u64, |acc, c| c.is_ascii_digit().then(|| acc * 10 + u64::from(c - b'0')))
}

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_at_64_bytes() {
        let p = encode(42, 123_456_789);
        assert_eq!(p.len(), SIZE);
        assert!(serde_json::from_slice::<serde_json::Value>(&p).is_ok(), "payload must be JSON");
        let mut framed = b"garbage".to_vec();
        framed.extend_from_slice(&p);
        assert_eq!(decode(&framed), Some((42, 123_456_789)));
    }
}

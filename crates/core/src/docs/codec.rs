//! Small encodings the document code shares: the packed update lists of `doc_log` rows, lib0
//! varints (the integers of Yjs' binary formats), and base64 (how updates travel in JSON: the
//! `document_updates.update` column, the awareness broadcast, the shell's IPC).

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

/// Why bytes do not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DecodeError(pub String);

pub fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

pub fn unb64(text: &str) -> Result<Vec<u8>, DecodeError> {
    STANDARD.decode(text.trim()).map_err(|e| DecodeError(format!("not base64: {e}")))
}

/// Appends `n` as a lib0 varuint (7 bits per byte, low first).
pub fn write_var(out: &mut Vec<u8>, mut n: u64) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Reads a lib0 varuint at `*pos`, advancing it.
pub fn read_var(bytes: &[u8], pos: &mut usize) -> Result<u64, DecodeError> {
    let mut n: u64 = 0;
    let mut shift = 0u32;
    loop {
        let Some(&b) = bytes.get(*pos) else { return Err(DecodeError("truncated varint".into())) };
        *pos += 1;
        if shift > 63 {
            return Err(DecodeError("varint longer than 64 bits".into()));
        }
        n |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(n);
        }
        shift += 7;
    }
}

/// Appends a lib0 varstring (length, then UTF-8).
pub fn write_string(out: &mut Vec<u8>, s: &str) {
    write_var(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

pub fn read_string(bytes: &[u8], pos: &mut usize) -> Result<String, DecodeError> {
    let len = usize::try_from(read_var(bytes, pos)?).map_err(|_| DecodeError("string too long".into()))?;
    let end =
        pos.checked_add(len).filter(|e| *e <= bytes.len()).ok_or_else(|| DecodeError("truncated string".into()))?;
    let s = std::str::from_utf8(&bytes[*pos..end]).map_err(|e| DecodeError(format!("string is not UTF-8: {e}")))?;
    *pos = end;
    Ok(s.to_string())
}

/// Packs updates into one `doc_log` blob: each as its length (varint) and its bytes.
pub fn pack<I, B>(updates: I) -> Vec<u8>
where
    I: IntoIterator<Item = B>,
    B: AsRef<[u8]>,
{
    let mut out = Vec::new();
    for u in updates {
        let u = u.as_ref();
        write_var(&mut out, u.len() as u64);
        out.extend_from_slice(u);
    }
    out
}

/// The updates of a `doc_log` blob.
pub fn unpack(blob: &[u8]) -> Result<Vec<&[u8]>, DecodeError> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < blob.len() {
        let len = usize::try_from(read_var(blob, &mut pos)?).map_err(|_| DecodeError("update too long".into()))?;
        let end =
            pos.checked_add(len).filter(|e| *e <= blob.len()).ok_or_else(|| DecodeError("truncated update".into()))?;
        out.push(&blob[pos..end]);
        pos = end;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_at_every_width() {
        for n in [0u64, 1, 127, 128, 300, 16_383, 16_384, u32::MAX as u64, u64::MAX] {
            let mut buf = Vec::new();
            write_var(&mut buf, n);
            let mut pos = 0;
            assert_eq!(read_var(&buf, &mut pos).expect("decodes"), n);
            assert_eq!(pos, buf.len());
        }
        assert_eq!(
            {
                let mut b = Vec::new();
                write_var(&mut b, 300);
                b
            },
            vec![0xac, 0x02],
            "lib0 layout"
        );
        assert!(read_var(&[0x80], &mut 0).is_err(), "truncated");
        assert!(read_var(&[0xff; 11], &mut 0).is_err(), "too long");
    }

    #[test]
    fn packed_updates_round_trip_and_truncation_is_an_error() {
        let updates: Vec<Vec<u8>> = vec![vec![0, 0], vec![], vec![7; 300]];
        let blob = pack(&updates);
        let back: Vec<Vec<u8>> = unpack(&blob).expect("unpacks").into_iter().map(<[u8]>::to_vec).collect();
        assert_eq!(back, updates);
        assert!(unpack(&blob[..blob.len() - 1]).is_err());
        assert!(unpack(&[]).expect("empty").is_empty());
    }

    #[test]
    fn strings_and_base64() {
        let mut buf = Vec::new();
        write_string(&mut buf, "رواد");
        let mut pos = 0;
        assert_eq!(read_string(&buf, &mut pos).expect("string"), "رواد");
        assert!(read_string(&[5, b'a'], &mut 0).is_err());
        assert_eq!(unb64(&b64(&[1, 2, 3])).expect("b64"), vec![1, 2, 3]);
        assert!(unb64("***").is_err());
    }
}

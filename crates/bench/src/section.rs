//! Each benchmark program owns one section of `docs/benchmarks.md`, between
//! `<!-- ruwad-bench:<name>:start -->` and `<!-- ruwad-bench:<name>:end -->`, and rewrites only
//! that section.

use anyhow::Context;

/// Replaces section `name` in `path` with `body`, keeping everything else (appends the section
/// if it is not there yet).
pub fn write_section(path: &str, name: &str, body: &str) -> anyhow::Result<()> {
    let (start, end) = (format!("<!-- ruwad-bench:{name}:start -->"), format!("<!-- ruwad-bench:{name}:end -->"));
    let old = std::fs::read_to_string(path).unwrap_or_else(|_| {
        "# Benchmarks\n\nFigures are written by the benchmark programs; each section says how it was measured.\n".into()
    });
    let section = format!("{start}\n{body}\n{end}");
    let new = match (old.find(&start), old.find(&end)) {
        (Some(a), Some(b)) if b > a => format!("{}{section}{}", &old[..a], &old[b + end.len()..]),
        _ => format!("{}\n{section}\n", old.trim_end()),
    };
    std::fs::write(path, new).with_context(|| format!("cannot write {path}"))
}

/// The machine a figure was measured on: CPU model and core count, for the report's header.
pub fn machine() -> (String, usize) {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    (cpu, std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn section_is_replaced_and_the_rest_kept() {
        let dir = tempfile::tempdir().expect("temp dir");
        let p = dir.path().join("b.md");
        let path = p.to_str().expect("utf-8 path");
        std::fs::write(&p, "# Benchmarks\n\nother section\n").expect("write");
        write_section(path, "a", "one").expect("first");
        write_section(path, "b", "bee").expect("another section");
        write_section(path, "a", "two").expect("second");
        let text = std::fs::read_to_string(&p).expect("read");
        assert!(text.contains("other section") && text.contains("two") && !text.contains("one"), "{text}");
        assert!(text.contains("bee") && text.find("two") < text.find("bee"), "sections keep their place: {text}");
    }
}

//! The plain-text rendering of a document (for `collaborative_documents.content`: web clients,
//! previews, search).
//!
//! A document's content lives in one of two roots: the rich text the desktop editor binds
//! (Tiptap / y-prosemirror: the `Y.XmlFragment` named [`RICH_ROOT`], one element per block) or
//! plain text in the `Y.Text` named [`TEXT_ROOT`] (documents made by plain-text clients). The
//! server's demo document is rich text, and its seeded `content` is this rendering of it (a test
//! in `tests/it/docs.rs` holds them equal). The rich root wins when it has content. Blocks are separated by a newline;
//! formatting is dropped.

use yrs::types::text::YChange;
use yrs::types::xml::{XmlFragment, XmlOut};
use yrs::{Any, GetString, Out, ReadTxn, Text, TextRef, XmlFragmentRef, XmlTextRef};

/// The `Y.Text` of plain-text documents.
pub const TEXT_ROOT: &str = "content";

/// The `Y.XmlFragment` Tiptap's Collaboration extension binds by default.
pub const RICH_ROOT: &str = "default";

/// The two roots of a document, fetched once (fetching a root outside a transaction).
#[derive(Clone)]
pub struct Roots {
    pub text: TextRef,
    pub rich: XmlFragmentRef,
}

impl Roots {
    pub fn of(doc: &yrs::Doc) -> Roots {
        Roots { text: doc.get_or_insert_text(TEXT_ROOT), rich: doc.get_or_insert_xml_fragment(RICH_ROOT) }
    }
}

/// The document's text (see the module doc).
pub fn render<T: ReadTxn>(txn: &T, roots: &Roots) -> String {
    if roots.rich.len(txn) > 0 {
        let blocks: Vec<String> = roots.rich.children(txn).map(|n| node_text(txn, &n)).collect();
        return blocks.join("\n");
    }
    roots.text.get_string(txn)
}

fn node_text<T: ReadTxn>(txn: &T, node: &XmlOut) -> String {
    match node {
        XmlOut::Text(t) => plain(txn, t),
        XmlOut::Element(e) => children_text(txn, e.children(txn).collect()),
        XmlOut::Fragment(f) => children_text(txn, f.children(txn).collect()),
    }
}

/// Inline children run together; block children (elements) go on lines of their own.
fn children_text<T: ReadTxn>(txn: &T, children: Vec<XmlOut>) -> String {
    let blocks = children.iter().any(|c| !matches!(c, XmlOut::Text(_)));
    let parts: Vec<String> = children.iter().map(|c| node_text(txn, c)).collect();
    parts.join(if blocks { "\n" } else { "" })
}

/// An XML text's characters without its formatting.
fn plain<T: ReadTxn>(txn: &T, t: &XmlTextRef) -> String {
    let mut out = String::new();
    for d in t.diff(txn, YChange::identity) {
        if let Out::Any(Any::String(s)) = d.insert {
            out.push_str(&s);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use yrs::types::xml::{XmlElementPrelim, XmlTextPrelim};
    use yrs::{Doc, Transact};

    use super::*;

    #[test]
    fn plain_text_documents_render_their_text() {
        let doc = Doc::new();
        let roots = Roots::of(&doc);
        roots.text.insert(&mut doc.transact_mut(), 0, "hello");
        assert_eq!(render(&doc.transact(), &roots), "hello");
    }

    #[test]
    fn rich_documents_render_one_line_per_block_without_formatting() {
        let doc = Doc::new();
        let roots = Roots::of(&doc);
        {
            let mut txn = doc.transact_mut();
            let p = roots.rich.push_back(&mut txn, XmlElementPrelim::empty("paragraph"));
            let t = p.push_back(&mut txn, XmlTextPrelim::new("Hello "));
            t.insert_with_attributes(&mut txn, 6, "world", [("bold".into(), Any::Bool(true))].into());
            let list = roots.rich.push_back(&mut txn, XmlElementPrelim::empty("bulletList"));
            for item in ["one", "two"] {
                let li = list.push_back(&mut txn, XmlElementPrelim::empty("listItem"));
                let p = li.push_back(&mut txn, XmlElementPrelim::empty("paragraph"));
                p.push_back(&mut txn, XmlTextPrelim::new(item));
            }
            roots.text.insert(&mut txn, 0, "ignored: the rich root has content");
        }
        assert_eq!(render(&doc.transact(), &roots), "Hello world\none\ntwo");
    }
}

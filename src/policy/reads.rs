//! What a policy's sources may read of the input, decided by looking at their text, so that the
//! request path gathers only what some module can see (`input.usage` costs two store reads).

/// The identifier of the input document in Rego.
const INPUT: &str = "input";

/// The input field whose gathering costs store reads.
const USAGE: &str = "usage";

/// Whether a module with this `source` may read `input.usage`. Conservative: true when the
/// identifier `usage` appears anywhere (code, strings, comments: nothing is skipped), or when
/// `input` appears other than as `input.<identifier>` (bare `input`, `input[…]`, `import
/// input`, `x := input`, `object.get(input, …)`, `with input as …`), since such a use may hand
/// the whole document, usage included, to something we cannot follow.
///
/// NB: a false "yes" costs two counts per request; a false "no" would evaluate a quota rule
/// without the usage it reads. So this errs on "yes", and reads words rather than parsing Rego:
/// any spelling of a read of `usage` must name the word, or take `input` whole.
pub(super) fn may_read_usage(source: &str) -> bool {
    let bytes = source.as_bytes();
    let mut at = 0;
    while at < bytes.len() {
        if !is_word_byte(bytes[at]) {
            at += 1;
            continue;
        }
        let start = at;
        while at < bytes.len() && is_word_byte(bytes[at]) {
            at += 1;
        }
        match &source[start..at] {
            USAGE => return true,
            INPUT if !followed_by_field(&bytes[at..]) => return true,
            _ => {}
        }
    }
    false
}

/// `rest` starts with `.` and an identifier's first character.
fn followed_by_field(rest: &[u8]) -> bool {
    matches!(rest, [b'.', c, ..] if c.is_ascii_alphabetic() || *c == b'_')
}

/// Part of a Rego identifier (ASCII letters, digits, `_`). NB: any other byte, including
/// every byte of a non-ASCII character, ends a word, which can only make more words.
fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

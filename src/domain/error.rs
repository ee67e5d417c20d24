/// A request field that does not parse; the message names the field and what is allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct InvalidField {
    /// The field, as the API spells it (`name`, `ttl`, `labels.team`…).
    pub field: String,
    /// What is wrong and what would be accepted.
    pub reason: String,
}

impl InvalidField {
    /// An error for `field`.
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        // NB: the field can come from the request (an unknown query parameter's name): cut it
        // short like any echoed input.
        let mut field = field.into();
        if field.chars().count() > ECHO_MAX_CHARS {
            field = field.chars().take(ECHO_MAX_CHARS).chain(['…']).collect();
        }
        Self {
            field,
            reason: reason.into(),
        }
    }
}

/// Input longer than this is cut short when echoed in an error message: requests carry up to a
/// megabyte, and an error should not send it back.
const ECHO_MAX_CHARS: usize = 64;

/// `s` quoted for an error message, cut short (with `…`) beyond [`ECHO_MAX_CHARS`].
pub(crate) fn quoted(s: &str) -> String {
    if s.chars().count() <= ECHO_MAX_CHARS {
        format!("{s:?}")
    } else {
        let head: String = s.chars().take(ECHO_MAX_CHARS).collect();
        format!("{head:?}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_name_taken_from_the_request_is_cut_short() {
        let long = "x".repeat(60_000);
        let err = InvalidField::new(long, "unknown query parameter");
        assert!(err.to_string().chars().count() < 200, "{err}");
    }
}

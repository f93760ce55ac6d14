//! Bounded text for messages: a value quoted in an error or a finding is cut at a known
//! length, so hostile input cannot make a message (an Event, a webhook answer, a log line) long.

/// Characters of a user's value quoted in a message at most.
pub const MAX_QUOTED: usize = 64;

/// At most [`MAX_QUOTED`] characters of `value`, with `…` when cut.
pub fn quoted(value: &str) -> String {
    truncate_chars(value, MAX_QUOTED)
}

/// At most `max` characters of `text` (on a character boundary), with `…` when cut.
pub fn truncate_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_string(),
        Some((end, _)) => format!("{}…", &text[..end]),
    }
}

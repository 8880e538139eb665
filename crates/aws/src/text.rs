//! AWS's own words (container reasons, coverage issues), kept within a bound: every
//! reply is hostile input, and these texts are cached and printed.

/// `text` with at most `max_chars` characters, cut at a character boundary and marked
/// with `…` when cut.
pub(crate) fn bounded(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        None => text.to_owned(),
        Some((end, _)) => {
            let mut cut = text[..end].to_owned();
            cut.push('…');
            cut
        }
    }
}

#[cfg(test)]
mod tests {
    use super::bounded;

    #[test]
    fn long_text_is_cut_at_a_character_boundary() {
        assert_eq!(bounded("short", 10), "short");
        assert_eq!(bounded("exactly", 7), "exactly");
        assert_eq!(bounded("ééééé", 2), "éé…");
        assert_eq!(bounded("", 0), "");
        assert_eq!(bounded("x", 0), "…");
    }
}

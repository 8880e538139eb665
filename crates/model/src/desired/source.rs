//! The text being read, with an index of its lines, so that quoting what a mistake found
//! costs the length of one line, not of the file.

/// A desired-state text (line breaks already LF) and where each of its lines starts.
pub(super) struct Source<'a> {
    text: &'a str,
    /// Byte offset of the start of each line.
    starts: Vec<usize>,
}

impl<'a> Source<'a> {
    pub(super) fn new(text: &'a str) -> Self {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Source { text, starts }
    }

    /// The text from a 1-based line and column (in characters) to the end of that line.
    pub(super) fn rest_of_line(&self, line: usize, column: usize) -> Option<&'a str> {
        let start = *self.starts.get(line.checked_sub(1)?)?;
        let whole = self.text.get(start..)?;
        let whole = whole.split('\n').next().unwrap_or(whole);
        let skip = column.checked_sub(1)?;
        match whole.char_indices().nth(skip) {
            Some((at, _)) => whole.get(at..),
            // Just past the last character: the empty rest.
            None if whole.chars().count() == skip => Some(""),
            None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rest_of_a_line_is_found_by_character_column() {
        let src = Source::new("a: 1\nnäme: x # c\n\nlast");
        // (line, column, rest)
        let rows = [
            (1, 1, Some("a: 1")),
            (2, 7, Some("x # c")),
            (2, 12, Some("")),
            (2, 13, None),
            (3, 1, Some("")),
            (4, 2, Some("ast")),
            (5, 1, None),
            (0, 1, None),
            (1, 0, None),
        ];
        for (line, column, rest) in rows {
            assert_eq!(src.rest_of_line(line, column), rest, "{line}:{column}");
        }
    }
}

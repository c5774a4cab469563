//! The standard PDF fonts the certificate is set in, what they can print, and how wide a text is.
//!
//! The certificate uses only the standard Helvetica faces, which every PDF reader has, so we ship
//! no font of our own. printpdf writes their text in `WinAnsiEncoding` (Windows-1252), which holds
//! å, ä, ö, é, ü and the other letters of Western European names, and a reader maps it back to
//! Unicode, so the text stays searchable and copyable. A character outside that encoding would be
//! printed as `?`; [`unprintable`] finds it first, so a name is never printed wrong.

use std::sync::LazyLock;

use printpdf::{BuiltinFont, ParsedFont};

/// The faces the certificate uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Face {
    Regular,
    Bold,
    Oblique,
}

impl Face {
    pub(super) fn builtin(self) -> BuiltinFont {
        match self {
            Face::Regular => BuiltinFont::Helvetica,
            Face::Bold => BuiltinFont::HelveticaBold,
            Face::Oblique => BuiltinFont::HelveticaOblique,
        }
    }

    fn metrics(self) -> &'static Metrics {
        match self {
            Face::Regular => &REGULAR,
            Face::Bold => &BOLD,
            Face::Oblique => &OBLIQUE,
        }
    }

    /// The width of `text` at `size` points, in points: what centring and line breaking need.
    pub(super) fn width(self, text: &str, size: f32) -> f32 {
        let metrics = self.metrics();
        text.chars().map(|c| metrics.advance(c)).sum::<f32>() * size
    }
}

/// Advance widths in ems, read from the metric-compatible outlines printpdf carries for each
/// standard font (the same numbers a reader lays the text out with).
struct Metrics(Option<ParsedFont>);

impl Metrics {
    fn load(font: BuiltinFont) -> Self {
        Metrics(ParsedFont::from_bytes(
            &font.get_subset_font().bytes,
            0,
            &mut Vec::new(),
        ))
    }

    fn advance(&self, c: char) -> f32 {
        // Helvetica's average advance: only used if printpdf's outlines cannot be read or lack the
        // glyph, which would make the layout approximate, never the text wrong.
        const FALLBACK: f32 = 0.556;
        let Some(font) = &self.0 else {
            return FALLBACK;
        };
        font.lookup_glyph_index(u32::from(c))
            .and_then(|glyph| font.get_glyph_width(glyph))
            .map_or(FALLBACK, |width| {
                f32::from(width) / f32::from(font.units_per_em.max(1))
            })
    }
}

static REGULAR: LazyLock<Metrics> = LazyLock::new(|| Metrics::load(BuiltinFont::Helvetica));
static BOLD: LazyLock<Metrics> = LazyLock::new(|| Metrics::load(BuiltinFont::HelveticaBold));
static OBLIQUE: LazyLock<Metrics> = LazyLock::new(|| Metrics::load(BuiltinFont::HelveticaOblique));

/// The first character of `text` that the standard fonts cannot print, if any.
pub(super) fn unprintable(text: &str) -> Option<char> {
    text.chars().find(|&c| !in_win_ansi(c))
}

/// Windows-1252 as PDF's `WinAnsiEncoding` has it (PDF 32000-1, annex D.2): ASCII, Latin-1's upper
/// half, and 27 typographic characters in the range Latin-1 keeps for control codes.
fn in_win_ansi(c: char) -> bool {
    const EXTRAS: &str = "€‚ƒ„…†‡ˆ‰Š‹ŒŽ‘’“”•–—˜™š›œžŸ";
    matches!(c, ' '..='~' | '\u{a0}'..='\u{ff}') || EXTRAS.contains(c)
}

/// `text` broken into lines no wider than `max_width` points, at spaces where it can be; a word
/// wider than a line on its own (a long link) is broken between characters.
pub(super) fn wrap(text: &str, face: Face, size: f32, max_width: f32) -> Vec<String> {
    let fits = |line: &str| face.width(line, size) <= max_width;
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let candidate = if line.is_empty() {
            word.to_owned()
        } else {
            format!("{line} {word}")
        };
        if fits(&candidate) {
            line = candidate;
            continue;
        }
        if !line.is_empty() {
            lines.push(std::mem::take(&mut line));
        }
        for c in word.chars() {
            line.push(c);
            if !fits(&line) && line.chars().count() > 1 {
                line.pop();
                lines.push(std::mem::replace(&mut line, c.to_string()));
            }
        }
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swedish_and_western_european_letters_print_and_others_are_found() {
        assert_eq!(unprintable("Åsa Öberg-Müller, Ærø, François, Šárka"), None);
        assert_eq!(unprintable("Šimić"), Some('ć'));
        assert_eq!(unprintable("Łukasz"), Some('Ł'));
        assert_eq!(unprintable("李"), Some('李'));
    }

    #[test]
    fn widths_follow_the_font() {
        // A wide letter is wider than a narrow one, and bold is wider than regular.
        assert!(Face::Regular.width("W", 10.0) > Face::Regular.width("i", 10.0));
        assert!(Face::Bold.width("Certificate", 10.0) > Face::Regular.width("Certificate", 10.0));
        // Helvetica's "W" is 0.944 em.
        assert!((Face::Regular.width("W", 10.0) - 9.44).abs() < 0.2);
    }

    #[test]
    fn wrapping_breaks_at_spaces_and_inside_words_too_long_for_a_line() {
        let lines = wrap("one two three four", Face::Regular, 10.0, 45.0);
        assert!(lines.len() > 1);
        assert_eq!(lines.join(" "), "one two three four");
        let url = "https://cim.example.se/verify/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
        let lines = wrap(url, Face::Regular, 10.0, 100.0);
        assert!(lines.len() > 1);
        assert_eq!(lines.concat(), url);
        assert!(lines.iter().all(|l| Face::Regular.width(l, 10.0) <= 100.0));
    }
}

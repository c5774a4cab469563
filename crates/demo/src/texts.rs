//! English reflection texts of an exact word count (as the rules count words), for the demo cohort.

use cim::domain::values::word_count;

const SENTENCES: &[&str] = &[
    "Taking part in this activity taught me how much patience and curiosity matter when people share no common language.",
    "I learned to listen carefully, to ask open questions and to explain my own field in simple words.",
    "Working with students from other countries changed the way I think about care, teamwork and communication.",
    "I noticed that my assumptions about other cultures were often wrong, and that was a valuable lesson for me.",
    "In my future workplace I will meet patients and colleagues with many different backgrounds and expectations.",
    "This experience made me more confident when I speak English in front of a group of strangers.",
    "I also understood that inclusion is something we practise every day, not something we only talk about.",
    "My classmates influenced me, and I believe that I influenced some of them by sharing my own story.",
    "Looking back, the most important thing was the courage to start a conversation with someone new.",
    "I want to keep these habits when I graduate and start working in an international environment.",
];

/// English prose of exactly `words` words; `variant` rotates the starting sentence so that students'
/// texts differ.
pub fn english(words: usize, variant: usize) -> String {
    let mut out: Vec<&str> = Vec::with_capacity(words);
    let start = variant % SENTENCES.len();
    'fill: loop {
        for sentence in SENTENCES[start..].iter().chain(&SENTENCES[..start]) {
            for word in sentence.split_whitespace() {
                if out.len() == words {
                    break 'fill;
                }
                out.push(word);
            }
        }
        if words == 0 {
            break;
        }
    }
    let text = out.join(" ");
    debug_assert_eq!(
        word_count(&text),
        words,
        "the demo text generator miscounted"
    );
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_have_the_exact_word_count() {
        for (words, variant) in [(1, 0), (500, 3), (1000, 7), (3000, 11)] {
            assert_eq!(word_count(&english(words, variant)), words);
        }
    }
}

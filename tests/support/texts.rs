//! Reflection texts of an exact length, in English or Swedish, for tests that go through the rules.

const ENGLISH: &[&str] = &[
    "Taking part in the language café taught me how much patience and curiosity matter when people share no common language.",
    "I learned to listen carefully, to ask open questions and to explain my own field in simple words.",
    "Working with students from other countries changed the way I think about care, teamwork and communication.",
    "I noticed that my assumptions about other cultures were often wrong, and that was a valuable lesson.",
    "In the workplace I will meet patients and colleagues with many different backgrounds and expectations.",
    "This experience made me more confident when I speak English in front of a group of strangers.",
    "I also understood that inclusion is something we practise every day, not something we only talk about.",
    "My classmates influenced me, and I believe that I influenced some of them by sharing my own story.",
];

const SWEDISH: &[&str] = &[
    "Jag lärde mig mycket om hur människor från andra länder tänker kring vård och samarbete.",
    "Det var spännande att träffa studenter som hade helt andra erfarenheter än jag själv.",
    "Under veckan pratade vi om våra utbildningar och om hur arbetslivet ser ut i olika länder.",
    "Jag tror att jag kommer att ha stor nytta av det här när jag börjar arbeta efter examen.",
];

/// English prose of exactly `words` words (as the server counts them).
pub fn english(words: usize) -> String {
    exact(ENGLISH, words)
}

/// Swedish prose of exactly `words` words.
pub fn swedish(words: usize) -> String {
    exact(SWEDISH, words)
}

fn exact(sentences: &[&str], words: usize) -> String {
    let mut out: Vec<&str> = Vec::with_capacity(words);
    'fill: loop {
        for sentence in sentences {
            for word in sentence.split_whitespace() {
                if out.len() == words {
                    break 'fill;
                }
                out.push(word);
            }
        }
    }
    let text = out.join(" ");
    assert_eq!(
        cim::domain::values::word_count(&text),
        words,
        "the test text generator miscounted"
    );
    text
}

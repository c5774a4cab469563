//! Reflection texts of an exact length, in English or Swedish, for tests that go through the rules.
//! English comes from the demo's generator; Swedish, which only the tests need, is made here.

const SWEDISH: &[&str] = &[
    "Jag lärde mig mycket om hur människor från andra länder tänker kring vård och samarbete.",
    "Det var spännande att träffa studenter som hade helt andra erfarenheter än jag själv.",
    "Under veckan pratade vi om våra utbildningar och om hur arbetslivet ser ut i olika länder.",
    "Jag tror att jag kommer att ha stor nytta av det här när jag börjar arbeta efter examen.",
];

/// English prose of exactly `words` words (as the server counts them): the demo's generator.
pub fn english(words: usize) -> String {
    cim_demo::texts::english(words, 0)
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

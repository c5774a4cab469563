//! The console's languages: Swedish and English, texts in Fluent files (`locales/<lang>/*.ftl`,
//! one file per area of the console) compiled into the binary, so a missing file fails the build
//! and not a page.
//!
//! The language of a request is the person's choice (the `cim_lang` cookie the language switch
//! sets), else the first of `Accept-Language` we speak, else Swedish: the service is a Swedish
//! university's. Dates follow the language: ISO 8601 (`2026-12-07`), the Swedish standard, in
//! Swedish; `7 December 2026` in English.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use chrono::{DateTime, NaiveDate, Utc};
use fluent_templates::fluent_bundle::FluentValue;
use fluent_templates::{Loader, static_loader};
use std::borrow::Cow;
use std::collections::HashMap;
use std::convert::Infallible;
use unic_langid::{LanguageIdentifier, langid};

static_loader! {
    static LOCALES = {
        locales: "./src/console/locales",
        fallback_language: "en",
        // Fluent wraps placeables in Unicode isolation marks by default; pages are HTML with
        // `lang` set, where the marks only get in the way of copying and of tests.
        customise: |bundle| bundle.set_use_isolating(false),
    };
}

/// The name of the cookie that keeps a person's language choice.
pub const LANG_COOKIE: &str = "cim_lang";

static SV: LanguageIdentifier = langid!("sv");
static EN: LanguageIdentifier = langid!("en");

/// A language the console speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    Sv,
    En,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::Sv, Lang::En];

    /// The BCP 47 tag, for `<html lang>` and the language switch.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::Sv => "sv",
            Lang::En => "en",
        }
    }

    pub fn parse(tag: &str) -> Option<Lang> {
        let primary = tag.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        match primary.as_str() {
            "sv" => Some(Lang::Sv),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The language's name in itself, for the switch (`Svenska`, `English`).
    pub fn own_name(self) -> &'static str {
        match self {
            Lang::Sv => "Svenska",
            Lang::En => "English",
        }
    }

    fn id(self) -> &'static LanguageIdentifier {
        match self {
            Lang::Sv => &SV,
            Lang::En => &EN,
        }
    }

    /// The text of `key`. A key missing in both languages shows as itself, so a mistake is
    /// visible on the page and caught by the tests that compare the two files.
    pub fn t(self, key: &str) -> String {
        LOCALES
            .try_lookup(self.id(), key)
            .unwrap_or_else(|| key.to_owned())
    }

    /// The text of `key` with arguments (`{ $name }` in the file).
    pub fn t_with(self, key: &str, args: &[(&str, Arg)]) -> String {
        let args: HashMap<Cow<'static, str>, FluentValue<'_>> = args
            .iter()
            .map(|(name, value)| {
                let value = match value {
                    Arg::Text(s) => FluentValue::from(s.clone()),
                    Arg::Number(n) => FluentValue::from(*n),
                };
                (Cow::Owned((*name).to_owned()), value)
            })
            .collect();
        LOCALES
            .try_lookup_with_args(self.id(), key, &args)
            .unwrap_or_else(|| key.to_owned())
    }

    /// A calendar date as this language writes it.
    pub fn date(self, date: NaiveDate) -> String {
        match self {
            Lang::Sv => date.format("%Y-%m-%d").to_string(),
            Lang::En => date.format("%-d %B %Y").to_string(),
        }
    }

    /// An instant, in Swedish time, as this language writes it.
    pub fn date_time(self, at: DateTime<Utc>) -> String {
        let local = at.with_timezone(&chrono_tz::Europe::Stockholm);
        match self {
            Lang::Sv => local.format("%Y-%m-%d %H:%M").to_string(),
            Lang::En => local.format("%-d %B %Y, %H:%M").to_string(),
        }
    }

    /// The language of a request (see the module docs).
    pub fn of(parts: &Parts) -> Lang {
        let chosen = cookie(parts, LANG_COOKIE).and_then(|v| Lang::parse(&v));
        chosen
            .or_else(|| {
                let header = parts.headers.get(header::ACCEPT_LANGUAGE)?.to_str().ok()?;
                accepted(header)
            })
            .unwrap_or(Lang::Sv)
    }
}

/// An argument of a text.
#[derive(Debug, Clone)]
pub enum Arg {
    Text(String),
    Number(f64),
}

impl From<&str> for Arg {
    fn from(s: &str) -> Self {
        Arg::Text(s.to_owned())
    }
}

impl From<String> for Arg {
    fn from(s: String) -> Self {
        Arg::Text(s)
    }
}

impl From<i64> for Arg {
    fn from(n: i64) -> Self {
        Arg::Number(n as f64)
    }
}

/// The first language of an `Accept-Language` header we speak, by its quality values.
fn accepted(header: &str) -> Option<Lang> {
    let mut ranges: Vec<(f32, Lang)> = header
        .split(',')
        .filter_map(|range| {
            let mut parts = range.split(';');
            let lang = Lang::parse(parts.next()?)?;
            let q = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            (q > 0.0).then_some((q, lang))
        })
        .collect();
    // Stable: among equal qualities the header's order counts.
    ranges.sort_by(|a, b| b.0.total_cmp(&a.0));
    ranges.first().map(|(_, lang)| *lang)
}

/// The value of cookie `name` in a request.
pub fn cookie(parts: &Parts, name: &str) -> Option<String> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

impl<S: Send + Sync> FromRequestParts<S> for Lang {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(Lang::of(parts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_the_best_language_we_speak() {
        assert_eq!(accepted("de-DE, en;q=0.8, sv;q=0.9"), Some(Lang::Sv));
        assert_eq!(accepted("en-GB,en;q=0.9"), Some(Lang::En));
        assert_eq!(accepted("fr, de"), None);
        assert_eq!(accepted("sv;q=0, en;q=0.1"), Some(Lang::En));
    }

    #[test]
    fn every_key_exists_in_both_languages() {
        for file in std::fs::read_dir("src/console/locales/en").unwrap() {
            let path = file.unwrap().path();
            let name = path.file_name().unwrap().to_owned();
            let en = keys(&std::fs::read_to_string(&path).unwrap());
            let sv_path = std::path::Path::new("src/console/locales/sv").join(&name);
            let sv = keys(&std::fs::read_to_string(&sv_path).unwrap_or_default());
            assert_eq!(en, sv, "the keys of {name:?} differ between en and sv");
        }
    }

    #[test]
    fn no_key_is_in_two_files() {
        // Fluent refuses a bundle where two files define one message: the console would panic at
        // its first page.
        for lang in ["en", "sv"] {
            let mut seen = std::collections::BTreeMap::new();
            for file in std::fs::read_dir(format!("src/console/locales/{lang}")).unwrap() {
                let path = file.unwrap().path();
                for key in keys(&std::fs::read_to_string(&path).unwrap()) {
                    if let Some(other) = seen.insert(key.clone(), path.clone()) {
                        panic!("{key} is in {} and {}", other.display(), path.display());
                    }
                }
            }
        }
    }

    fn keys(ftl: &str) -> std::collections::BTreeSet<String> {
        ftl.lines()
            .filter(|l| !l.starts_with(['#', ' ', '\t', '.', '[', '*']) && l.contains('='))
            .map(|l| l.split('=').next().unwrap().trim().to_owned())
            .collect()
    }

    #[test]
    fn dates_follow_the_language() {
        let d = NaiveDate::from_ymd_opt(2026, 12, 7).unwrap();
        assert_eq!(Lang::Sv.date(d), "2026-12-07");
        assert_eq!(Lang::En.date(d), "7 December 2026");
        assert_eq!(
            Lang::Sv.t("service-name"),
            "Certificate of International Merits"
        );
    }
}

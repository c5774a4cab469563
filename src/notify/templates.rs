//! The texts of the messages, one file per kind and language (`templates/{en,sv}/{kind}.txt`,
//! compiled in): a `Subject:` line, a blank line and the body. `{name}` is replaced by the
//! decision's parameter of that name; dates are written as the language writes them (Swedish:
//! 2026-12-07; English: 7 December 2026). A link into the web console ends the body when one is
//! configured.

use chrono::NaiveDate;
use serde_json::Value;

use super::kind::MessageKind;

/// A language messages are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    Swedish,
    English,
}

impl Language {
    pub fn code(self) -> &'static str {
        match self {
            Language::Swedish => "sv",
            Language::English => "en",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        match code {
            "sv" => Some(Language::Swedish),
            "en" => Some(Language::English),
            _ => None,
        }
    }
}

macro_rules! template_table {
    ($($kind:ident => $file:literal),* $(,)?) => {
        fn source(kind: MessageKind, language: Language) -> &'static str {
            match (kind, language) {
                $(
                    (MessageKind::$kind, Language::English) => include_str!(concat!("templates/en/", $file, ".txt")),
                    (MessageKind::$kind, Language::Swedish) => include_str!(concat!("templates/sv/", $file, ".txt")),
                )*
            }
        }
    };
}

template_table! {
    ReflectionApproved => "reflection_approved",
    ReflectionReturned => "reflection_returned",
    FinalReflectionApproved => "final_reflection_approved",
    FinalReflectionReturned => "final_reflection_returned",
    ExtensionGranted => "extension_granted",
    ApplicationRejected => "application_rejected",
    CertificateApproved => "certificate_approved",
    CertificateRecorded => "certificate_recorded",
    CertificateRevoked => "certificate_revoked",
    FinalReflectionDue => "final_reflection_due",
    Inactive => "inactive",
    CoordinatorDigest => "coordinator_digest",
    BatchReady => "batch_ready",
    LadokRefused => "ladok_refused",
    CertificateHeld => "certificate_held",
    ServiceStuck => "service_stuck",
}

/// Subject and body of a message.
pub fn render(
    kind: MessageKind,
    language: Language,
    params: &Value,
    link: Option<&str>,
) -> (String, String) {
    let text = source(kind, language);
    let (subject, body) = text
        .strip_prefix("Subject: ")
        .and_then(|rest| rest.split_once("\n\n"))
        .expect("every template starts with a Subject line and a blank line");
    let subject = fill(subject, params, language);
    let mut body = fill(body.trim_end(), params, language);
    if let Some(link) = link {
        body.push_str(match language {
            Language::Swedish => "\n\nÖppna: ",
            Language::English => "\n\nOpen: ",
        });
        body.push_str(link);
    }
    body.push_str(match language {
        Language::Swedish => {
            "\n\n-- \nDetta meddelande skickades av Certificate of International Merits. Svara inte på det.\n"
        }
        Language::English => {
            "\n\n-- \nThis message was sent by the Certificate of International Merits service. Please do not reply.\n"
        }
    });
    (subject, body)
}

fn fill(template: &str, params: &Value, language: Language) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        match after.find('}') {
            Some(end) => {
                let name = &after[..end];
                out.push_str(&value(name, params, language));
                rest = &after[end + 1..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

fn value(name: &str, params: &Value, language: Language) -> String {
    if name == "programs" {
        return programs(params.get("programs"), language);
    }
    match params.get(name) {
        Some(Value::String(s)) => match s.parse::<NaiveDate>() {
            Ok(date) => format_date(date, language),
            Err(_) => s.clone(),
        },
        Some(Value::Null) | None => "–".to_owned(),
        Some(other) => other.to_string(),
    }
}

/// Swedish dates in the Swedish standard form; English ones with the month's name.
pub fn format_date(date: NaiveDate, language: Language) -> String {
    match language {
        Language::Swedish => date.format("%Y-%m-%d").to_string(),
        Language::English => date.format("%-d %B %Y").to_string(),
    }
}

/// The digest's lines, one per program: counts and ages only, never a student.
fn programs(list: Option<&Value>, language: Language) -> String {
    let Some(Value::Array(items)) = list else {
        return String::new();
    };
    let n = |item: &Value, key: &str| item.get(key).and_then(Value::as_i64).unwrap_or(0);
    items
        .iter()
        .map(|p| {
            let code = p.get("code").and_then(Value::as_str).unwrap_or("?");
            let (waiting, oldest, risk, quiet) = (
                n(p, "waiting"),
                n(p, "oldest_days"),
                n(p, "at_risk"),
                n(p, "inactive"),
            );
            match language {
                Language::Swedish => format!(
                    "- {code}: {waiting} väntar på granskning (äldsta {oldest} dagar), {risk} studenter nära sista dag utan slutreflektion, {quiet} inaktiva"
                ),
                Language::English => format!(
                    "- {code}: {waiting} waiting for review (oldest {oldest} days), {risk} students near their deadline without a final reflection, {quiet} inactive"
                ),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Value {
        json!({
            "portfolio_id": "0190d3c2-0000-7000-8000-000000000001", "attempt": 2, "until": "2027-05-31",
            "application": 1, "program": "Biomedicine", "decided_on": "2026-12-07",
            "certificate_id": "c", "batch_id": "b", "files": 4, "reason": "rule_error",
            "felgrupp": "commons.fel.grupp", "revoked_on": "2026-12-07", "deadline": "2027-05-03",
            "weeks": 6, "days": 30, "date": "2026-12-07", "part": "export worker",
            "detail": "no successful run for 27 hours", "since": "2026-12-06T02:00:00Z",
            "programs": [{"code": "BIOMED", "waiting": 3, "oldest_days": 5, "at_risk": 1, "inactive": 2}],
        })
    }

    #[test]
    fn every_template_renders_in_both_languages_with_nothing_left_unfilled() {
        for kind in MessageKind::ALL {
            for language in [Language::Swedish, Language::English] {
                let (subject, body) = render(kind, language, &sample(), Some("https://cim/x"));
                assert!(!subject.is_empty() && !subject.contains('{'), "{kind:?}");
                assert!(
                    !body.contains('{') && !body.contains('}'),
                    "{kind:?} {language:?}"
                );
                assert!(
                    !body.contains('–'),
                    "{kind:?} {language:?}: a parameter is missing"
                );
                assert!(body.ends_with('\n') && body.contains("https://cim/x"));
            }
        }
    }

    #[test]
    fn dates_follow_the_language() {
        let params = json!({ "until": "2027-05-31" });
        let (_, sv) = render(
            MessageKind::ExtensionGranted,
            Language::Swedish,
            &params,
            None,
        );
        let (_, en) = render(
            MessageKind::ExtensionGranted,
            Language::English,
            &params,
            None,
        );
        assert!(sv.contains("2027-05-31"), "{sv}");
        assert!(en.contains("31 May 2027"), "{en}");
    }
}

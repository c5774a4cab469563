//! Swedish personal identity numbers (personnummer) and coordination numbers (samordningsnummer).
//!
//! People type these in five shapes; Ladok stores and expects twelve digits. Parsing therefore resolves
//! the century once, at the border, using the date the caller passes in (the domain never reads the clock),
//! and from then on the number exists only in its 12-digit form.

use std::fmt;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

const FORMS: &str = "YYMMDD-NNNC, YYMMDD+NNNC, YYMMDDNNNC, YYYYMMDDNNNC or YYYYMMDD-NNNC";

/// Why an identity number was refused. Messages never repeat the number itself (it is personal data and
/// error messages end up in logs), only the part that is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityNumberError {
    #[error("the identity number is empty")]
    Empty,
    #[error("the identity number is {len} characters; expected one of the forms {FORMS}")]
    Length { len: usize },
    #[error("expected '-' or '+' at position {position}, found {found:?}")]
    Separator { position: usize, found: char },
    #[error(
        "'+' marks a person aged 100 or more and belongs to the 10-digit form; with a 4-digit year use '-' or no separator"
    )]
    PlusWithFullYear,
    #[error("the character {found:?} at position {position} is not a digit")]
    Character { position: usize, found: char },
    #[error(
        "interim numbers (a letter in the serial number) are not accepted; use a personal identity number or a coordination number"
    )]
    Interim,
    #[error("month {month} does not exist")]
    Month { month: u32 },
    #[error(
        "day {day} does not exist (coordination numbers add 60 to the day, so they run from 61 to 91)"
    )]
    Day { day: u32 },
    #[error("{year:04}-{month:02}-{day:02} is not a date")]
    DateDoesNotExist { year: i32, month: u32, day: u32 },
    #[error("the birth date {birth_date} is in the future")]
    Future { birth_date: NaiveDate },
    #[error("the serial number 000 is never issued")]
    SerialZero,
    #[error("the check digit is {found} but should be {expected}")]
    CheckDigit { found: u8, expected: u8 },
}

impl IdentityNumberError {
    pub fn code(&self) -> &'static str {
        use IdentityNumberError::*;
        match self {
            Empty => "identity_number_empty",
            Length { .. } => "identity_number_length",
            Separator { .. } => "identity_number_separator",
            PlusWithFullYear => "identity_number_plus_with_full_year",
            Character { .. } => "identity_number_character",
            Interim => "identity_number_interim",
            Month { .. } => "identity_number_month",
            Day { .. } => "identity_number_day",
            DateDoesNotExist { .. } => "identity_number_date_does_not_exist",
            Future { .. } => "identity_number_future",
            SerialZero => "identity_number_serial_zero",
            CheckDigit { .. } => "identity_number_check_digit",
        }
    }
}

/// A validated personnummer or samordningsnummer, always held as 12 digits `YYYYMMDDNNNC`.
///
/// `Debug` is redacted so that the number cannot reach a log through `{:?}` of a command or state.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct IdentityNumber {
    digits: String,
    birth_date: NaiveDate,
}

/// The separator the person typed in the 10-digit form: it decides the century.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Separator {
    UnderHundred,
    HundredOrMore,
}

struct Parts {
    century: Option<u32>,
    separator: Separator,
    /// `YYMMDDNNNC` as typed (coordination day included), the digits the check digit covers.
    ten: [u8; 10],
}

impl IdentityNumber {
    /// `today` is the caller's current date in Europe/Stockholm: it resolves the century of the 10-digit
    /// forms (the latest century that puts the birth date on or before today, or 100+ years before today
    /// with `+`) and refuses birth dates in the future.
    pub fn parse(input: &str, today: NaiveDate) -> Result<Self, IdentityNumberError> {
        // A number copied from a letter or a PDF often carries a typographic dash (en dash, minus
        // sign) where the person sees '-': the same written form, so it is read as one.
        let typed: String = input.trim().chars().map(plain_dash).collect();
        let parts = split_form(&typed)?;
        let [y1, y2, m1, m2, d1, d2, ..] = parts.ten;
        let yy = u32::from(y1 * 10 + y2);
        let (month, day) = month_and_day(u32::from(m1 * 10 + m2), u32::from(d1 * 10 + d2))?;
        let year = match parts.century {
            Some(century) => (century * 100 + yy) as i32,
            None => resolve_year(yy, month, day, today, parts.separator),
        };
        let birth_date = NaiveDate::from_ymd_opt(year, month, day)
            .ok_or(IdentityNumberError::DateDoesNotExist { year, month, day })?;
        if birth_date > today {
            return Err(IdentityNumberError::Future { birth_date });
        }
        check_serial_and_luhn(&parts.ten)?;
        Ok(Self {
            digits: format!("{:04}{}", year, digits_to_string(&parts.ten[2..])),
            birth_date,
        })
    }

    /// Rebuilds a number that was stored in its normalised form.
    ///
    /// This checks shape, date and check digit but not "not in the future": a number that was valid
    /// when it was recorded stays loadable forever, and deserialisation has no clock to compare with.
    pub fn from_normalized(input: &str) -> Result<Self, IdentityNumberError> {
        if input.len() != 12 {
            return Err(IdentityNumberError::Length {
                len: input.chars().count(),
            });
        }
        let digits = to_digits(input, 0)?;
        let mut ten = [0u8; 10];
        ten.copy_from_slice(&digits[2..]);
        let year = i32::from(digits[0]) * 1000
            + i32::from(digits[1]) * 100
            + i32::from(ten[0]) * 10
            + i32::from(ten[1]);
        let (month, day) = month_and_day(
            u32::from(ten[2] * 10 + ten[3]),
            u32::from(ten[4] * 10 + ten[5]),
        )?;
        let birth_date = NaiveDate::from_ymd_opt(year, month, day)
            .ok_or(IdentityNumberError::DateDoesNotExist { year, month, day })?;
        check_serial_and_luhn(&ten)?;
        Ok(Self {
            digits: input.to_owned(),
            birth_date,
        })
    }

    /// The number whose first eleven digits are `YYYYMMDDNNN` (the day + 60 for a coordination
    /// number), completed with its check digit: for made-up people (the demo, the bench, tests),
    /// never for input, where a wrong check digit must be refused.
    pub fn with_check_digit(eleven: &str) -> Result<Self, IdentityNumberError> {
        if eleven.len() != 11 {
            return Err(IdentityNumberError::Length {
                len: eleven.chars().count(),
            });
        }
        let digits = to_digits(eleven, 0)?;
        let check = luhn_check_digit(&digits[2..]);
        Self::from_normalized(&format!("{eleven}{check}"))
    }

    /// The 12-digit form `YYYYMMDDNNNC` Ladok expects (a coordination number keeps its day + 60).
    pub fn as_str(&self) -> &str {
        &self.digits
    }

    /// The real birth date (for a coordination number, the day minus 60).
    pub fn birth_date(&self) -> NaiveDate {
        self.birth_date
    }

    /// Coordination numbers are issued to people not (yet) registered in Sweden; exports must say so.
    pub fn is_coordination_number(&self) -> bool {
        self.digits[6..8].parse::<u32>().is_ok_and(|day| day > 60)
    }
}

impl fmt::Debug for IdentityNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IdentityNumber(<redacted>)")
    }
}

impl Serialize for IdentityNumber {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.digits)
    }
}

impl<'de> Deserialize<'de> for IdentityNumber {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::from_normalized(&raw).map_err(serde::de::Error::custom)
    }
}

/// Described to the OpenAPI document as what it serialises to: the 12 normalised digits.
impl utoipa::PartialSchema for IdentityNumber {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some("^[0-9]{12}$"))
            .description(Some(
                "Personnummer or samordningsnummer, normalised to 12 digits (YYYYMMDDNNNC)",
            ))
            .examples([serde_json::json!("191212121212")])
            .into()
    }
}

impl utoipa::ToSchema for IdentityNumber {}

/// '-' for the dashes word processors substitute for it (U+2010 to U+2015, U+2212, U+FE63, U+FF0D).
fn plain_dash(c: char) -> char {
    match c {
        '\u{2010}'..='\u{2015}' | '\u{2212}' | '\u{fe63}' | '\u{ff0d}' => '-',
        other => other,
    }
}

fn split_form(s: &str) -> Result<Parts, IdentityNumberError> {
    let chars: Vec<char> = s.chars().collect();
    let (century_len, separator_at) = match chars.len() {
        0 => return Err(IdentityNumberError::Empty),
        10 => (0, None),
        11 => (0, Some(6)),
        12 => (2, None),
        13 => (2, Some(8)),
        len => return Err(IdentityNumberError::Length { len }),
    };
    let separator = match separator_at.map(|at| (at, chars[at])) {
        None | Some((_, '-')) => Separator::UnderHundred,
        Some((_, '+')) if century_len == 0 => Separator::HundredOrMore,
        Some((_, '+')) => return Err(IdentityNumberError::PlusWithFullYear),
        Some((at, found)) => {
            return Err(IdentityNumberError::Separator {
                position: at + 1,
                found,
            });
        }
    };
    let digit_chars: String = chars
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != separator_at)
        .map(|(_, c)| *c)
        .collect();
    // The serial's three digits sit just before the check digit; an interim number puts a letter there.
    let serial = &chars[chars.len() - 4..chars.len() - 1];
    if serial.iter().any(|c| c.is_ascii_alphabetic()) {
        return Err(IdentityNumberError::Interim);
    }
    let digits = to_digits(&digit_chars, 0).map_err(|e| match e {
        IdentityNumberError::Character { position, found } => {
            // Report the position in what the person typed, counting the separator.
            let typed = match separator_at {
                Some(at) if position > at => position + 1,
                _ => position,
            };
            IdentityNumberError::Character {
                position: typed,
                found,
            }
        }
        other => other,
    })?;
    let mut ten = [0u8; 10];
    ten.copy_from_slice(&digits[century_len..]);
    let century = (century_len == 2).then(|| u32::from(digits[0] * 10 + digits[1]));
    Ok(Parts {
        century,
        separator,
        ten,
    })
}

fn to_digits(s: &str, offset: usize) -> Result<Vec<u8>, IdentityNumberError> {
    s.chars()
        .enumerate()
        .map(|(i, c)| {
            c.to_digit(10)
                .filter(|_| c.is_ascii_digit())
                .map(|d| d as u8)
                .ok_or(IdentityNumberError::Character {
                    position: offset + i + 1,
                    found: c,
                })
        })
        .collect()
}

/// Returns (month, real day): a coordination number's day has 60 added.
fn month_and_day(month: u32, day: u32) -> Result<(u32, u32), IdentityNumberError> {
    if !(1..=12).contains(&month) {
        return Err(IdentityNumberError::Month { month });
    }
    let real_day = if day > 60 { day - 60 } else { day };
    if !(1..=31).contains(&real_day) {
        return Err(IdentityNumberError::Day { day });
    }
    Ok((month, real_day))
}

/// The latest year ending in `yy` whose (month, day) is on or before `today`, or on or before the same
/// day 100 years ago when the person wrote `+`. Compared as tuples so that 29 February needs no special
/// case.
fn resolve_year(yy: u32, month: u32, day: u32, today: NaiveDate, separator: Separator) -> i32 {
    let limit_year = match separator {
        Separator::UnderHundred => today.year(),
        Separator::HundredOrMore => today.year() - 100,
    };
    let mut year = limit_year - limit_year.rem_euclid(100) + yy as i32;
    if (year, month, day) > (limit_year, today.month(), today.day()) {
        year -= 100;
    }
    year
}

fn check_serial_and_luhn(ten: &[u8; 10]) -> Result<(), IdentityNumberError> {
    if ten[6..9] == [0, 0, 0] {
        return Err(IdentityNumberError::SerialZero);
    }
    let expected = luhn_check_digit(&ten[..9]);
    if ten[9] != expected {
        return Err(IdentityNumberError::CheckDigit {
            found: ten[9],
            expected,
        });
    }
    Ok(())
}

/// Luhn over `YYMMDDNNN`: weights 2,1,2,… from the left, products above 9 reduced by 9.
fn luhn_check_digit(nine: &[u8]) -> u8 {
    let sum: u32 = nine
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let product = u32::from(*d) * if i % 2 == 0 { 2 } else { 1 };
            if product > 9 { product - 9 } else { product }
        })
        .sum();
    ((10 - sum % 10) % 10) as u8
}

fn digits_to_string(digits: &[u8]) -> String {
    digits.iter().map(|d| char::from(b'0' + d)).collect()
}

#[cfg(test)]
mod tests;

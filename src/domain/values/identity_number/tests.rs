//! Unit and property tests for parsing and checking identity numbers.

use super::*;
use proptest::prelude::*;

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 5, 1).unwrap()
}

fn parse(s: &str) -> Result<IdentityNumber, IdentityNumberError> {
    IdentityNumber::parse(s, today())
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

#[test]
fn with_check_digit_completes_a_number_and_still_checks_the_rest() {
    let n = IdentityNumber::with_check_digit("19121212121").unwrap();
    assert_eq!(n.as_str(), "191212121212");
    let coordination = IdentityNumber::with_check_digit("19811278987").unwrap();
    assert!(coordination.is_coordination_number());
    assert!(IdentityNumber::with_check_digit("19811332987").is_err());
    assert!(IdentityNumber::with_check_digit("1912121212").is_err());
    assert!(IdentityNumber::with_check_digit("19121212000").is_err());
}

#[test]
fn luhn_matches_the_published_examples() {
    // Worked by hand: 1·2+2+1·2+2+1·2+2+1·2+2+1·2 = 18 → 2.
    assert_eq!(luhn_check_digit(&[1, 2, 1, 2, 1, 2, 1, 2, 1]), 2);
    // 16→7,1,2,2,2,8,18→9,8,14→5 = 44 → 6.
    assert_eq!(luhn_check_digit(&[8, 1, 1, 2, 1, 8, 9, 8, 7]), 6);
    // 14→5,0,2,0,12→3,3,4,3,18→9 = 29 → 1.
    assert_eq!(luhn_check_digit(&[7, 0, 1, 0, 6, 3, 2, 3, 9]), 1);
}

#[test]
fn accepts_every_form_and_normalises_to_twelve_digits() {
    for form in [
        "811218-9876",
        "8112189876",
        "198112189876",
        "19811218-9876",
        "  811218-9876\n",
    ] {
        let n = parse(form).unwrap_or_else(|e| panic!("{form}: {e}"));
        assert_eq!(n.as_str(), "198112189876", "{form}");
        assert_eq!(n.birth_date(), date(1981, 12, 18));
        assert!(!n.is_coordination_number());
    }
    let old = parse("19121212-1212").unwrap();
    assert_eq!(old.as_str(), "191212121212");
    assert_eq!(old.birth_date(), date(1912, 12, 12));
}

#[test]
fn ten_digit_forms_take_the_latest_century_not_in_the_future() {
    // 2012-12-12 is before today, so the short form means a 13-year-old.
    assert_eq!(parse("121212-1212").unwrap().as_str(), "201212121212");
    // Tomorrow's day in 2026 has not happened yet: the century before.
    assert_eq!(parse("260502-1233").unwrap().birth_date(), date(1926, 5, 2));
    // Today's own date in the current century is allowed (a newborn).
    assert_eq!(parse("260501-1234").unwrap().birth_date(), date(2026, 5, 1));
    assert_eq!(parse("2605011234").unwrap().birth_date(), date(2026, 5, 1));
}

#[test]
fn plus_means_a_hundred_or_more() {
    assert_eq!(parse("121212+1212").unwrap().as_str(), "191212121212");
    assert_eq!(
        parse("811218+9876").unwrap().birth_date(),
        date(1881, 12, 18)
    );
    // Exactly 100 today counts as "100 or more".
    assert_eq!(parse("260501+1234").unwrap().birth_date(), date(1926, 5, 1));
    // One day short of 100 pushes the birth back another century.
    assert_eq!(parse("260502+1233").unwrap().birth_date(), date(1826, 5, 2));
}

#[test]
fn coordination_numbers_add_sixty_to_the_day() {
    for form in [
        "701063-2391",
        "7010632391",
        "197010632391",
        "19701063-2391",
        "701063+2391",
    ] {
        let n = parse(form).unwrap_or_else(|e| panic!("{form}: {e}"));
        assert!(n.is_coordination_number(), "{form}");
        assert_eq!(n.birth_date().month(), 10);
        assert_eq!(n.birth_date().day(), 3);
    }
    assert_eq!(parse("701063-2391").unwrap().as_str(), "197010632391");
    assert_eq!(parse("701063+2391").unwrap().as_str(), "187010632391");
}

#[test]
fn wrong_check_digit_is_reported_in_every_form() {
    let expected = IdentityNumberError::CheckDigit {
        found: 3,
        expected: 6,
    };
    for form in [
        "811218-9873",
        "811218+9873",
        "8112189873",
        "198112189873",
        "19811218-9873",
    ] {
        assert_eq!(parse(form), Err(expected.clone()), "{form}");
    }
    assert_eq!(
        parse("701063-2398"),
        Err(IdentityNumberError::CheckDigit {
            found: 8,
            expected: 1
        })
    );
    assert_eq!(expected.to_string(), "the check digit is 3 but should be 6");
}

#[test]
fn typographic_dashes_are_read_as_the_dash_they_stand_for() {
    for form in [
        "811218\u{2013}9876",
        "811218\u{2212}9876",
        "19811218\u{2010}9876",
        "811218\u{ff0d}9876",
    ] {
        assert_eq!(parse(form).unwrap().as_str(), "198112189876", "{form:?}");
    }
    // Other punctuation still names the position at fault.
    assert_eq!(
        parse("811218_9876"),
        Err(IdentityNumberError::Separator {
            position: 7,
            found: '_'
        })
    );
}

#[test]
fn every_message_is_a_sentence_without_the_number() {
    for form in [
        "811218-9873",
        "811318-9876",
        "811218/9876",
        "19811218+9876",
        "811218-T876",
        "001231-0009",
        "20260502-1233",
    ] {
        let message = parse(form).unwrap_err().to_string();
        assert!(
            !message.contains("9876") && !message.contains("811218"),
            "{message}"
        );
        assert!(message.len() > 15, "{message}");
    }
}

#[test]
fn wrong_lengths_name_the_accepted_forms() {
    let err = parse("811218-98").unwrap_err();
    assert_eq!(err, IdentityNumberError::Length { len: 9 });
    assert_eq!(
        err.to_string(),
        "the identity number is 9 characters; expected one of the forms YYMMDD-NNNC, YYMMDD+NNNC, YYMMDDNNNC, YYYYMMDDNNNC or YYYYMMDD-NNNC"
    );
    assert_eq!(parse("   "), Err(IdentityNumberError::Empty));
    assert_eq!(
        parse("19811218--9876"),
        Err(IdentityNumberError::Length { len: 14 })
    );
}

#[test]
fn separators_other_than_dash_and_plus_are_refused() {
    assert_eq!(
        parse("811218/9876"),
        Err(IdentityNumberError::Separator {
            position: 7,
            found: '/'
        })
    );
    assert_eq!(
        parse("19811218 9876"),
        Err(IdentityNumberError::Separator {
            position: 9,
            found: ' '
        })
    );
    assert_eq!(
        parse("19811218+9876"),
        Err(IdentityNumberError::PlusWithFullYear)
    );
}

#[test]
fn non_digits_are_refused_with_their_position() {
    assert_eq!(
        parse("81x218-9876"),
        Err(IdentityNumberError::Character {
            position: 3,
            found: 'x'
        })
    );
    // Position counts the separator the person typed.
    assert_eq!(
        parse("811218-987x"),
        Err(IdentityNumberError::Character {
            position: 11,
            found: 'x'
        })
    );
    assert!(matches!(
        parse("８１１２１８９８７６"),
        Err(IdentityNumberError::Character { position: 1, .. })
    ));
}

#[test]
fn interim_numbers_have_their_own_error() {
    for form in ["811218-T876", "811218T876", "19811218-9T76", "198112189R76"] {
        assert_eq!(parse(form), Err(IdentityNumberError::Interim), "{form}");
    }
}

#[test]
fn impossible_months_and_days_are_refused_in_every_form() {
    for form in [
        "811318-9876",
        "811318+9876",
        "8113189876",
        "198113189876",
        "19811318-9876",
    ] {
        assert_eq!(
            parse(form),
            Err(IdentityNumberError::Month { month: 13 }),
            "{form}"
        );
    }
    // Coordination day 93 would be day 33.
    for form in [
        "701093-2391",
        "701093+2391",
        "7010932391",
        "197010932391",
        "19701093-2391",
    ] {
        assert_eq!(
            parse(form),
            Err(IdentityNumberError::Day { day: 93 }),
            "{form}"
        );
    }
}

#[test]
fn impossible_months_and_days_are_refused() {
    let month = parse("811318-9876").unwrap_err();
    assert_eq!(month, IdentityNumberError::Month { month: 13 });
    assert_eq!(month.to_string(), "month 13 does not exist");
    assert_eq!(
        parse("810018-9876"),
        Err(IdentityNumberError::Month { month: 0 })
    );
    assert_eq!(
        parse("811200-9876"),
        Err(IdentityNumberError::Day { day: 0 })
    );
    assert_eq!(
        parse("811232-9876"),
        Err(IdentityNumberError::Day { day: 32 })
    );
    // 60 is day 0 of a coordination number; 92 is day 32.
    assert_eq!(
        parse("811260-9876"),
        Err(IdentityNumberError::Day { day: 60 })
    );
    assert_eq!(
        parse("811292-9876"),
        Err(IdentityNumberError::Day { day: 92 })
    );
    assert_eq!(
        parse("810230-9876"),
        Err(IdentityNumberError::DateDoesNotExist {
            year: 1981,
            month: 2,
            day: 30
        })
    );
    // Coordination day 90 is 30 February.
    assert!(matches!(
        parse("810290-9876"),
        Err(IdentityNumberError::DateDoesNotExist { day: 30, .. })
    ));
}

#[test]
fn leap_days_follow_the_resolved_century() {
    assert_eq!(
        parse("000229-1235").unwrap().birth_date(),
        date(2000, 2, 29)
    );
    // With '+', the century is 1900, which was not a leap year.
    assert_eq!(
        parse("000229+1235"),
        Err(IdentityNumberError::DateDoesNotExist {
            year: 1900,
            month: 2,
            day: 29
        })
    );
    // 2049 is in the future, 1949 was not a leap year.
    assert!(matches!(
        parse("490229-1238"),
        Err(IdentityNumberError::DateDoesNotExist { year: 1949, .. })
    ));
    assert_eq!(
        parse("480229-1239").unwrap().birth_date(),
        date(1948, 2, 29)
    );
}

#[test]
fn twelve_digit_forms_in_the_future_are_refused() {
    assert_eq!(
        parse("20260502-1233"),
        Err(IdentityNumberError::Future {
            birth_date: date(2026, 5, 2)
        })
    );
    assert!(parse("20260501-1234").is_ok());
}

#[test]
fn serial_000_is_refused() {
    assert_eq!(parse("001231-0009"), Err(IdentityNumberError::SerialZero));
    assert_eq!(parse("20001231-0009"), Err(IdentityNumberError::SerialZero));
}

#[test]
fn every_error_has_a_distinct_code() {
    let errors = [
        IdentityNumberError::Empty,
        IdentityNumberError::Length { len: 1 },
        IdentityNumberError::Separator {
            position: 1,
            found: '/',
        },
        IdentityNumberError::PlusWithFullYear,
        IdentityNumberError::Character {
            position: 1,
            found: 'x',
        },
        IdentityNumberError::Interim,
        IdentityNumberError::Month { month: 13 },
        IdentityNumberError::Day { day: 32 },
        IdentityNumberError::DateDoesNotExist {
            year: 1,
            month: 2,
            day: 30,
        },
        IdentityNumberError::Future {
            birth_date: today(),
        },
        IdentityNumberError::SerialZero,
        IdentityNumberError::CheckDigit {
            found: 1,
            expected: 2,
        },
    ];
    let codes: std::collections::BTreeSet<_> = errors.iter().map(|e| e.code()).collect();
    assert_eq!(codes.len(), errors.len());
}

#[test]
fn serialises_as_twelve_digits_and_deserialises_with_the_lite_check() {
    let n = parse("701063-2391").unwrap();
    let json = serde_json::to_string(&n).unwrap();
    assert_eq!(json, "\"197010632391\"");
    assert_eq!(serde_json::from_str::<IdentityNumber>(&json).unwrap(), n);
    assert!(serde_json::from_str::<IdentityNumber>("\"197010632398\"").is_err());
    assert!(serde_json::from_str::<IdentityNumber>("\"701063-2391\"").is_err());
    // A stored number is loadable regardless of today's date.
    assert!(IdentityNumber::from_normalized("202605011234").is_ok());
}

#[test]
fn debug_output_does_not_leak_the_number() {
    let n = parse("811218-9876").unwrap();
    assert!(!format!("{n:?}").contains("9876"));
}

/// The ten digits `YYMMDDNNNC` of a real person born `birth`, with a valid check digit.
fn ten_digits(birth: NaiveDate, serial: u32, coordination: bool) -> String {
    let day = birth.day() + if coordination { 60 } else { 0 };
    let nine = format!(
        "{:02}{:02}{:02}{:03}",
        birth.year() % 100,
        birth.month(),
        day,
        serial
    );
    let digits: Vec<u8> = nine.bytes().map(|b| b - b'0').collect();
    format!("{nine}{}", luhn_check_digit(&digits))
}

proptest! {
    #[test]
    fn plus_names_the_same_person_as_the_twelve_digits_when_aged_a_hundred_or_more(
        days_before in 36_525i64..72_000,
        serial in 1u32..1000,
        coordination in any::<bool>(),
    ) {
        let birth = today() - chrono::Duration::days(days_before);
        let ten = ten_digits(birth, serial, coordination);
        let twelve = format!("{}{}", birth.year() / 100, ten);
        prop_assume!(birth.year() <= today().year() - 100);
        let plus = format!("{}+{}", &ten[..6], &ten[6..]);
        let aged = parse(&plus).unwrap();
        // Exactly 100 years and more: '+' resolves to the century of the birth, unless the
        // same day a century later is also 100+ years ago (born over 200 years ago: not generated).
        if birth <= today().with_year(today().year() - 100).unwrap() {
            prop_assert_eq!(aged.as_str(), twelve.as_str());
            prop_assert_eq!(parse(&twelve).unwrap(), aged);
        }
    }

    #[test]
    fn any_other_check_digit_is_refused_with_the_right_one(
        days_before in 0i64..36_000,
        serial in 1u32..1000,
        coordination in any::<bool>(),
        wrong in 1u8..10,
    ) {
        let birth = today() - chrono::Duration::days(days_before);
        let ten = ten_digits(birth, serial, coordination);
        let right = ten.as_bytes()[9] - b'0';
        let found = (right + wrong) % 10;
        let typed = format!("{}-{}{}", &ten[..6], &ten[6..9], found);
        prop_assert_eq!(
            parse(&typed),
            Err(IdentityNumberError::CheckDigit { found, expected: right })
        );
    }

    #[test]
    fn arbitrary_text_never_panics_and_valid_answers_are_twelve_digits(input in "\\PC{0,16}") {
        if let Ok(n) = parse(&input) {
            prop_assert_eq!(n.as_str().len(), 12);
            prop_assert!(n.as_str().bytes().all(|b| b.is_ascii_digit()));
            prop_assert_eq!(IdentityNumber::from_normalized(n.as_str()).unwrap(), n);
        }
    }

    #[test]
    fn any_real_date_and_serial_with_its_luhn_digit_parses_in_all_forms(
        days_before in 0i64..36_000,
        serial in 1u32..1000,
        coordination in any::<bool>(),
    ) {
        let birth = today() - chrono::Duration::days(days_before);
        let day = birth.day() + if coordination { 60 } else { 0 };
        let nine = format!("{:02}{:02}{:02}{:03}", birth.year() % 100, birth.month(), day, serial);
        let digits: Vec<u8> = nine.bytes().map(|b| b - b'0').collect();
        let ten = format!("{nine}{}", luhn_check_digit(&digits));
        let twelve = format!("{}{}", birth.year() / 100, ten);
        for form in [
            format!("{}-{}", &ten[..6], &ten[6..]),
            ten.clone(),
            twelve.clone(),
            format!("{}-{}", &twelve[..8], &twelve[8..]),
        ] {
            let n = parse(&form).unwrap();
            prop_assert_eq!(n.as_str(), twelve.as_str());
            prop_assert_eq!(n.birth_date(), birth);
            prop_assert_eq!(n.is_coordination_number(), coordination);
        }
    }
}

//! Shared test fixtures: a program with the default catalog, students, texts of exact word counts, and
//! helpers that fold decide/evolve the way the store will.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use uuid::Uuid;

use super::*;
use crate::domain::errors::DomainError;
use crate::domain::ids::*;
use crate::domain::program::{self, ProgramCommand, ProgramState, default_catalog};
use crate::domain::values::*;

/// 2026-03-02 11:00 in Stockholm.
pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 10, 0, 0).unwrap()
}

pub fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

pub fn today() -> NaiveDate {
    date(2026, 3, 2)
}

/// Expected completion far enough ahead that the default deadline (28 days before) is 2026-06-03.
pub fn completion() -> NaiveDate {
    date(2026, 7, 1)
}

pub fn program_id() -> ProgramId {
    ProgramId::new(Uuid::from_u128(0xA))
}

pub fn coordinator() -> StaffId {
    StaffId::parse("coord-1@ki.se").unwrap()
}

pub fn stranger() -> StaffId {
    StaffId::parse("someone-else@ki.se").unwrap()
}

pub fn text(s: &str) -> NonEmptyText {
    NonEmptyText::parse(s, "text", 10_000).unwrap()
}

pub fn item(i: usize) -> CatalogItemId {
    default_catalog()[i].0.clone()
}

pub fn aid(n: u128) -> ActivityId {
    ActivityId::new(Uuid::from_u128(0x100 + n))
}

pub fn media() -> MediaRef {
    MediaRef::new(&"ab".repeat(32), "audio/mpeg", 4096).unwrap()
}

/// A registered program with the whole default catalog and one coordinator.
pub fn program() -> ProgramState {
    let mut commands = vec![ProgramCommand::RegisterProgram {
        id: program_id(),
        name: text("Dental Program"),
        code: ProgramCode::parse("dentistry").unwrap(),
    }];
    commands.extend(default_catalog().into_iter().map(|(item, name)| {
        ProgramCommand::AddCatalogItem {
            item,
            name: text(name),
        }
    }));
    commands.push(ProgramCommand::AssignCoordinator {
        staff: coordinator(),
    });
    commands
        .into_iter()
        .fold(ProgramState::default(), |state, cmd| {
            let events = program::decide(&state, cmd, now()).unwrap();
            events.iter().fold(state, program::evolve)
        })
}

/// The program after `cmd`.
pub fn program_with(state: ProgramState, cmd: ProgramCommand) -> ProgramState {
    let events = program::decide(&state, cmd, now()).unwrap();
    events.iter().fold(state, program::evolve)
}

pub fn open_command() -> PortfolioCommand {
    open_command_with(completion())
}

pub fn open_command_with(expected_completion: NaiveDate) -> PortfolioCommand {
    PortfolioCommand::OpenPortfolio {
        portfolio_id: PortfolioId::new(Uuid::from_u128(0xB)),
        student_uid: StudentUid::new(Uuid::from_u128(0xC)),
        identity_number: IdentityNumber::parse("811218-9876", today()).unwrap(),
        name: PersonName::parse("Anna", "Berg").unwrap(),
        email: Email::parse("anna.berg@stud.ki.se").unwrap(),
        expected_completion,
        identity_check: None,
    }
}

/// Decides and applies `cmd`, returning the new state (and panicking with the code on refusal).
pub fn run(state: PortfolioState, prog: &ProgramState, cmd: PortfolioCommand) -> PortfolioState {
    run_at(state, prog, cmd, now())
}

pub fn run_at(
    state: PortfolioState,
    prog: &ProgramState,
    cmd: PortfolioCommand,
    at: DateTime<Utc>,
) -> PortfolioState {
    match decide(&state, prog, cmd.clone(), at) {
        Ok(events) => events.iter().fold(state, evolve),
        Err(e) => panic!("{cmd:?} refused: {} ({e})", e.code()),
    }
}

/// The refusal of `cmd`, asserting that it is one.
pub fn refuse(state: &PortfolioState, prog: &ProgramState, cmd: PortfolioCommand) -> DomainError {
    refuse_at(state, prog, cmd, now())
}

pub fn refuse_at(
    state: &PortfolioState,
    prog: &ProgramState,
    cmd: PortfolioCommand,
    at: DateTime<Utc>,
) -> DomainError {
    match decide(state, prog, cmd.clone(), at) {
        Ok(events) => panic!("{cmd:?} accepted: {events:?}"),
        Err(e) => e,
    }
}

/// Opened, with the expected completion date confirmed by the coordinator (the usual path: the
/// first final reflection waits for it). `opened_unconfirmed` stops before the confirmation.
pub fn opened(prog: &ProgramState) -> PortfolioState {
    run(opened_unconfirmed(prog), prog, confirm_cmd())
}

pub fn opened_unconfirmed(prog: &ProgramState) -> PortfolioState {
    run(PortfolioState::default(), prog, open_command())
}

pub fn confirm_cmd() -> PortfolioCommand {
    PortfolioCommand::ConfirmExpectedCompletion { by: coordinator() }
}

pub fn log_cmd(n: u128, item_index: usize) -> PortfolioCommand {
    PortfolioCommand::LogActivity {
        activity_id: aid(n),
        item: item(item_index),
        started_on: date(2026, 1, 10),
        ended_on: date(2026, 1, 12),
        description: text("I helped incoming students find their way around campus."),
        evidence: None,
    }
}

pub fn written(words: usize) -> ReflectionContent {
    ReflectionContent::Written {
        text: english_text(words),
    }
}

pub fn submit_cmd(n: u128) -> PortfolioCommand {
    PortfolioCommand::SubmitReflection {
        activity_id: aid(n),
        content: written(1000),
    }
}

pub fn approve_cmd(n: u128) -> PortfolioCommand {
    PortfolioCommand::ApproveReflection {
        activity_id: aid(n),
        by: coordinator(),
    }
}

pub fn final_written() -> PortfolioCommand {
    PortfolioCommand::SubmitFinalReflection {
        content: FinalContent::Written {
            text: english_text(3000),
        },
    }
}

/// Activities 1..=n on items 0..n, each with a submitted reflection; approved if asked.
pub fn with_activities(prog: &ProgramState, n: u128, approved: bool) -> PortfolioState {
    let mut state = opened(prog);
    for i in 1..=n {
        state = run(state, prog, log_cmd(i, i as usize - 1));
        state = run(state, prog, submit_cmd(i));
        if approved {
            state = run(state, prog, approve_cmd(i));
        }
    }
    state
}

/// Three approved activities and an approved final reflection: ready to apply.
pub fn ready_to_apply(prog: &ProgramState) -> PortfolioState {
    let state = with_activities(prog, 3, true);
    let state = run(state, prog, final_written());
    run(
        state,
        prog,
        PortfolioCommand::ApproveFinalReflection { by: coordinator() },
    )
}

pub fn applied(prog: &ProgramState) -> PortfolioState {
    run(ready_to_apply(prog), prog, PortfolioCommand::Apply)
}

pub fn certified(prog: &ProgramState) -> PortfolioState {
    run(
        applied(prog),
        prog,
        PortfolioCommand::ApproveApplication {
            certificate_id: CertificateId::new(Uuid::from_u128(0xCE)),
            by: coordinator(),
        },
    )
}

pub fn portfolio(state: &PortfolioState) -> &Portfolio {
    state.opened().expect("portfolio is open")
}

const ENGLISH_WORDS: &str = "during the exchange semester I learned how much the everyday work of a \
    hospital depends on the culture around it and I had to listen carefully before I explained my own \
    ideas because the students from other countries expected different things from teachers and from \
    each other which made me think about how I will work with patients and colleagues from many \
    backgrounds when I start my career and how I can make the workplace more inclusive for everyone";

const SWEDISH_WORDS: &str = "under utbytesterminen lärde jag mig hur mycket det dagliga arbetet på \
    ett sjukhus beror på kulturen omkring det och jag fick lyssna noga innan jag förklarade mina egna \
    idéer eftersom studenterna från andra länder väntade sig andra saker av lärarna och av varandra \
    vilket fick mig att tänka på hur jag ska arbeta med patienter och kollegor från många bakgrunder";

fn text_of(words: usize, source: &str) -> String {
    let list: Vec<&str> = source.split_whitespace().collect();
    let mut out = String::with_capacity(words * 7);
    for i in 0..words {
        if i > 0 {
            out.push_str(if i % 15 == 0 { ". " } else { " " });
        }
        out.push_str(list[i % list.len()]);
    }
    out.push('.');
    out
}

/// English prose of exactly `words` words.
pub fn english_text(words: usize) -> String {
    text_of(words, ENGLISH_WORDS)
}

/// Swedish prose of exactly `words` words.
pub fn swedish_text(words: usize) -> String {
    text_of(words, SWEDISH_WORDS)
}

/// `n` distinct Instagram post links.
pub fn post_links(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("https://www.instagram.com/p/Post{i}_x/"))
        .collect()
}

#[test]
fn generated_texts_have_exactly_the_requested_word_count() {
    for n in [0, 1, 449, 900, 1100, 3000] {
        assert_eq!(word_count(&english_text(n)), n);
        assert_eq!(word_count(&swedish_text(n)), n);
    }
}

/// The UTC instant of a Stockholm wall-clock time (unambiguous times only).
pub fn stockholm(y: i32, m: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    use chrono_tz::Europe::Stockholm;
    Stockholm
        .with_ymd_and_hms(y, m, d, h, mi, s)
        .single()
        .expect("an unambiguous Stockholm time")
        .with_timezone(&Utc)
}

/// Feedback and reasons used by [`history`], to check that they never leak outside `personal`.
pub const FEEDBACK: &str = "Please describe what you learned about the patients.";
pub const REASON: &str = "Extension for a documented illness.";

/// A history that produces every portfolio event type at least once, with the state it leads to.
pub fn history() -> (Vec<PortfolioEvent>, PortfolioState) {
    let prog = program();
    let mut state = PortfolioState::default();
    let mut events = Vec::new();
    let oral = ReflectionContent::Oral {
        media: Some(media()),
        link: None,
        duration_s: 150,
        duration_measured: true,
    };
    let insta = ReflectionContent::Instagram {
        links: post_links(3),
        text: english_text(500),
    };
    let mut commands = vec![
        open_command(),
        confirm_cmd(),
        // Ladok corrects the typed number.
        PortfolioCommand::CheckIdentityInLadok {
            record: LadokRecord::Student {
                identity_number: Some(IdentityNumber::parse("19900101-0017", today()).unwrap()),
            },
        },
        PortfolioCommand::SetExpectedCompletion {
            expected_completion: date(2026, 7, 15),
            reason: text(REASON),
            by: coordinator(),
        },
        PortfolioCommand::ProposeExpectedCompletion {
            expected_completion: date(2026, 8, 1),
            reason: text(REASON),
        },
        PortfolioCommand::DeclineExpectedCompletion {
            by: coordinator(),
            reason: text(REASON),
        },
        PortfolioCommand::ProposeExpectedCompletion {
            expected_completion: date(2026, 7, 20),
            reason: text(REASON),
        },
        PortfolioCommand::AcceptExpectedCompletion {
            by: coordinator(),
            reason: text(REASON),
        },
        PortfolioCommand::LogActivity {
            activity_id: aid(1),
            item: item(0),
            started_on: date(2025, 9, 1),
            ended_on: date(2026, 1, 20),
            description: text("Exchange semester in Leiden."),
            evidence: Some(media()),
        },
        log_cmd(2, 1),
        log_cmd(3, 2),
        log_cmd(4, 3),
        PortfolioCommand::WithdrawActivity {
            activity_id: aid(4),
        },
        submit_cmd(1),
        PortfolioCommand::SubmitReflection {
            activity_id: aid(2),
            content: oral,
        },
        PortfolioCommand::SubmitReflection {
            activity_id: aid(3),
            content: insta,
        },
        PortfolioCommand::ReturnReflection {
            activity_id: aid(1),
            by: coordinator(),
            feedback: text(FEEDBACK),
        },
        PortfolioCommand::ResubmitReflection {
            activity_id: aid(1),
            content: written(1050),
        },
    ];
    commands.extend((1..=3).map(approve_cmd));
    commands.extend([
        PortfolioCommand::GrantExtension {
            until: date(2026, 6, 30),
            reason: text(REASON),
            by: coordinator(),
        },
        final_written(),
        PortfolioCommand::ReturnFinalReflection {
            by: coordinator(),
            feedback: text(FEEDBACK),
        },
        PortfolioCommand::ResubmitFinalReflection {
            content: FinalContent::Oral {
                media: Some(media()),
                link: None,
                duration_s: 420,
                duration_measured: false,
            },
        },
        PortfolioCommand::ApproveFinalReflection { by: coordinator() },
        PortfolioCommand::Apply,
        PortfolioCommand::RejectApplication {
            by: coordinator(),
            reason: text(REASON),
        },
        PortfolioCommand::Apply,
        PortfolioCommand::ApproveApplication {
            certificate_id: CertificateId::new(Uuid::from_u128(0xCE)),
            by: coordinator(),
        },
        PortfolioCommand::RevokeCertificate {
            by: coordinator(),
            reason: text(REASON),
        },
    ]);
    for cmd in commands {
        let new = decide(&state, &prog, cmd.clone(), now())
            .unwrap_or_else(|e| panic!("{cmd:?}: {}", e.code()));
        state = new.iter().fold(state, evolve);
        events.extend(new);
    }
    // No longer decided (students set their own date before coordinators did), but still in old logs.
    let legacy = PortfolioEvent::from(ExpectedCompletionChanged {
        expected_completion: date(2026, 7, 20),
        previous: date(2026, 7, 20),
    });
    state = evolve(state, &legacy);
    events.push(legacy);
    // Not decided by the rules: the erasure service appends it (src/app/erasure.rs).
    let erased = PortfolioEvent::from(PersonalDataErased {
        student_uid: state.opened().unwrap().student_uid,
        by: StaffId::parse("admin-1").unwrap(),
        reason: NonEmptyText::parse("GDPR request 2026-17", "reason", 500).unwrap(),
        media_deleted: 2,
    });
    state = evolve(state, &erased);
    events.push(erased);
    (events, state)
}

//! The demo cohort of `cim demo`: fake students driven through the real rules by the command handler.
//!
//! Every choice comes from a tiny xorshift generator seeded by `--seed` and the student's index, and
//! every id (student, portfolio, activity, certificate, command) is a UUID v5 of the seed, the index and
//! the step. Running the demo again with the same seed on the same database therefore changes nothing:
//! each command id is already in the log, so the handler answers with the first outcome. A different
//! seed adds a different cohort.
//!
//! What a cohort holds, by student index (`index % 10`): 0 certified and then revoked (only for the
//! first two such students), 6 late (the final reflection is refused past its deadline, a coordinator
//! grants an extension, then it is accepted), 7 rejected once and approved on the second application,
//! 8 dropped off after one or two activities, 9 still in progress, the rest certified. Each student who
//! reflects uses every format (written, oral with a declared duration, Instagram with three links);
//! some reflections and final reflections are returned with feedback and resubmitted.

pub mod texts;

pub use texts::english;

use crate::app::{CommandContext, CommandError, CommandHandler, pilot_program_id};
use crate::domain::portfolio::{FinalContent, ReflectionContent};
use crate::domain::program::{default_catalog, pilot_programs};
use crate::domain::values::{Email, IdentityNumber, NonEmptyText, PersonName};
use crate::domain::{
    ActivityId, CertificateId, PortfolioCommand, PortfolioId, ProgramCommand, ProgramId, StaffId,
    StudentUid, stockholm_date,
};
use crate::store::ActorRole;
use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, Utc};
use futures::StreamExt;
use uuid::Uuid;

/// Namespace of the demo's derived ids; fixed, so that a rerun derives the same ids.
const DEMO_NAMESPACE: Uuid = Uuid::from_u128(0x3d2c_9a41_7e0b_4f6d_a1c3_5b7e_9d0f_2a4c);

/// The actor id of the demo's seeding and coordinator assignments.
pub const DEMO_ADMIN: &str = "admin-demo";

/// How many students are driven at once (each student's commands stay in order).
const CONCURRENCY: usize = 8;

/// A xorshift64 generator: deterministic, tiny, and good enough to pick demo data.
#[derive(Debug, Clone)]
pub struct XorShift(u64);

impl XorShift {
    /// Seeds through splitmix64, so that neighbouring seeds give unrelated sequences.
    pub fn new(seed: u64) -> Self {
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        Self(if z == 0 { 1 } else { z })
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// True with the given percentage.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// What happens to one student of the cohort.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StudentPath {
    Certified,
    /// Certified, then the certificate is revoked.
    Revoked,
    /// The final reflection is refused past its deadline; an extension is granted; then certified.
    Late,
    /// The first application is rejected; the second is approved.
    RejectedThenApproved,
    /// Stops after one or two activities.
    DroppedOff,
    /// Left waiting for a review or for the decision on the application.
    InProgress,
}

/// The path of the student with this index (see the module documentation).
pub fn path_of(index: usize) -> StudentPath {
    match index % 10 {
        0 if index < 20 => StudentPath::Revoked,
        6 => StudentPath::Late,
        7 => StudentPath::RejectedThenApproved,
        8 => StudentPath::DroppedOff,
        9 => StudentPath::InProgress,
        _ => StudentPath::Certified,
    }
}

/// One pilot program with its demo coordinator.
#[derive(Debug, Clone)]
pub struct DemoProgram {
    pub id: ProgramId,
    pub code: &'static str,
    pub coordinator: StaffId,
}

/// A student of the cohort, by ids only.
#[derive(Debug, Clone, Copy)]
pub struct DemoStudent {
    pub index: usize,
    pub student_uid: StudentUid,
    pub portfolio_id: PortfolioId,
    pub program_id: ProgramId,
    pub path: StudentPath,
}

/// What the cohort run did.
#[derive(Debug, Clone)]
pub struct CohortSummary {
    pub programs: Vec<DemoProgram>,
    pub students: Vec<DemoStudent>,
    /// Events this run appended to portfolios (0 on a rerun with the same seed).
    pub new_events: usize,
}

impl CohortSummary {
    pub fn count(&self, path: StudentPath) -> usize {
        self.students.iter().filter(|s| s.path == path).count()
    }
}

/// The demo coordinator's staff id of a program.
pub fn coordinator_of(code: &str) -> StaffId {
    StaffId::parse(&format!("coord-{code}")).expect("program codes have no whitespace")
}

/// Assigns one demo coordinator per pilot program (the programs must be seeded). Safe to run again.
pub async fn assign_coordinators(
    handler: &CommandHandler,
    now: DateTime<Utc>,
) -> Result<Vec<DemoProgram>, CommandError> {
    let mut programs = Vec::new();
    for (code, _) in pilot_programs() {
        let id = pilot_program_id(code);
        let coordinator = coordinator_of(code);
        let command_id = Uuid::new_v5(&DEMO_NAMESPACE, format!("assign/{code}").as_bytes());
        let ctx = CommandContext {
            actor_id: DEMO_ADMIN.to_owned(),
            role: ActorRole::Admin,
            correlation_id: command_id,
            command_id,
            now,
        };
        let assigned = handler
            .program(
                id,
                ProgramCommand::AssignCoordinator {
                    staff: coordinator.clone(),
                },
                &ctx,
            )
            .await;
        match assigned {
            // Refused: assigned already (by someone else), which is what we want.
            Ok(_) | Err(CommandError::Domain(_)) => {}
            Err(e) => return Err(e),
        }
        allow_demo_video_platform(handler, id, &ctx).await?;
        programs.push(DemoProgram {
            id,
            code,
            coordinator,
        });
    }
    Ok(programs)
}

/// The demo's video platform, which its oral reflections link to (they upload nothing).
pub const DEMO_VIDEO_HOST: &str = "play.ki.se";

fn demo_video_link(rng: &mut XorShift) -> String {
    format!(
        "https://{DEMO_VIDEO_HOST}/media/0_{:08x}",
        rng.next_u64() >> 32
    )
}

/// Adds [`DEMO_VIDEO_HOST`] to the program's video platform hosts, keeping the rest of its rules; a
/// program that lists it already is left alone (so a rerun changes nothing).
async fn allow_demo_video_platform(
    handler: &CommandHandler,
    id: crate::domain::ProgramId,
    ctx: &CommandContext,
) -> Result<(), CommandError> {
    let (program, _) = handler.load_program(id).await?;
    let Some(program) = program.registered() else {
        return Ok(());
    };
    let mut rules = program.rules.clone();
    if rules
        .video_platform_hosts
        .iter()
        .any(|h| h == DEMO_VIDEO_HOST)
    {
        return Ok(());
    }
    rules.video_platform_hosts.push(DEMO_VIDEO_HOST.to_owned());
    let command_id = Uuid::new_v5(&DEMO_NAMESPACE, format!("video-host/{id}").as_bytes());
    let ctx = CommandContext {
        command_id,
        correlation_id: command_id,
        ..ctx.clone()
    };
    match handler
        .program(id, ProgramCommand::ChangeRules { rules }, &ctx)
        .await
    {
        Ok(_) | Err(CommandError::Domain(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Drives `students` students through the rules. `programs` comes from [`assign_coordinators`].
pub async fn drive_cohort(
    handler: &CommandHandler,
    programs: &[DemoProgram],
    students: usize,
    seed: u64,
    now: DateTime<Utc>,
) -> Result<CohortSummary, CommandError> {
    assert!(!programs.is_empty(), "the demo needs a program");
    let results: Vec<Result<(DemoStudent, usize), CommandError>> =
        futures::stream::iter(0..students)
            .map(|index| {
                let program = &programs[index % programs.len()];
                let driver = Driver::new(handler, program, seed, index, now);
                async move {
                    let new_events = driver.drive().await?;
                    Ok((driver.student, new_events))
                }
            })
            .buffered(CONCURRENCY)
            .collect()
            .await;
    let mut summary = CohortSummary {
        programs: programs.to_vec(),
        students: Vec::with_capacity(students),
        new_events: 0,
    };
    for result in results {
        let (student, new_events) = result?;
        summary.students.push(student);
        summary.new_events += new_events;
    }
    Ok(summary)
}

const GIVEN_NAMES: &[&str] = &[
    "Alva", "Elias", "Maja", "Noah", "Saga", "Liam", "Ebba", "Omar", "Wilma", "Hugo", "Leila",
    "Arvid", "Nora", "Yusuf", "Ines", "Oskar",
];
const FAMILY_NAMES: &[&str] = &[
    "Lindqvist",
    "Berg",
    "Haddad",
    "Nilsson",
    "Okafor",
    "Sundberg",
    "Karimi",
    "Holm",
    "Virtanen",
    "Ekström",
    "Novak",
    "Andersson",
];

/// Drives one student, one command after the other.
struct Driver<'a> {
    handler: &'a CommandHandler,
    program: &'a DemoProgram,
    seed: u64,
    student: DemoStudent,
    now: DateTime<Utc>,
    today: NaiveDate,
}

#[derive(Clone, Copy)]
enum Format {
    Written,
    Oral,
    Instagram,
}

impl<'a> Driver<'a> {
    fn new(
        handler: &'a CommandHandler,
        program: &'a DemoProgram,
        seed: u64,
        index: usize,
        now: DateTime<Utc>,
    ) -> Self {
        let id =
            |what: &str| Uuid::new_v5(&DEMO_NAMESPACE, format!("{seed}/{index}/{what}").as_bytes());
        let student_uid = StudentUid::new(id("student"));
        Self {
            handler,
            program,
            seed,
            student: DemoStudent {
                index,
                student_uid,
                portfolio_id: PortfolioId::of(student_uid, program.id),
                program_id: program.id,
                path: path_of(index),
            },
            now,
            today: stockholm_date(now),
        }
    }

    fn id(&self, what: &str) -> Uuid {
        Uuid::new_v5(
            &DEMO_NAMESPACE,
            format!("{}/{}/{what}", self.seed, self.student.index).as_bytes(),
        )
    }

    fn ctx(&self, step: &str, as_student: bool) -> CommandContext {
        let (actor_id, role) = if as_student {
            (self.student.student_uid.to_string(), ActorRole::Student)
        } else {
            (self.program.coordinator.to_string(), ActorRole::Coordinator)
        };
        CommandContext {
            actor_id,
            role,
            correlation_id: self.id("correlation"),
            command_id: self.id(&format!("command/{step}")),
            now: self.now,
        }
    }

    /// Runs a command; returns how many events it appended now.
    async fn run(
        &self,
        step: &str,
        as_student: bool,
        command: PortfolioCommand,
    ) -> Result<usize, CommandError> {
        let ctx = self.ctx(step, as_student);
        let handled = if matches!(command, PortfolioCommand::OpenPortfolio { .. }) {
            self.handler
                .open_portfolio(self.program.id, command, &ctx)
                .await?
        } else {
            self.handler
                .portfolio(self.student.portfolio_id, command, &ctx)
                .await?
        };
        Ok(handled.events.len())
    }

    /// A command the rules should refuse (it is not recorded, so a rerun is refused again).
    async fn refused(&self, step: &str, command: PortfolioCommand) -> Result<usize, CommandError> {
        match self.run(step, true, command).await {
            Ok(appended) => Ok(appended),
            Err(CommandError::Domain(_)) => Ok(0),
            Err(e) => Err(e),
        }
    }

    fn text(s: &str) -> NonEmptyText {
        NonEmptyText::parse(s, "text", 5_000).expect("demo texts are valid")
    }

    fn staff(&self) -> StaffId {
        self.program.coordinator.clone()
    }

    fn reflection(&self, rng: &mut XorShift, format: Format, k: usize) -> ReflectionContent {
        let variant = self.student.index * 3 + k;
        match format {
            Format::Written => ReflectionContent::Written {
                text: english(920 + rng.below(160) as usize, variant),
            },
            Format::Oral => ReflectionContent::Oral {
                media: None,
                link: Some(demo_video_link(rng)),
                duration_s: 125 + rng.below(60) as u32,
                duration_measured: false,
            },
            Format::Instagram => ReflectionContent::Instagram {
                links: (0..3)
                    .map(|_| {
                        let kind = if rng.chance(30) { "reel" } else { "p" };
                        format!(
                            "https://www.instagram.com/{kind}/D{:010x}/",
                            rng.next_u64() >> 24
                        )
                    })
                    .collect(),
                text: english(460 + rng.below(80) as usize, variant),
            },
        }
    }

    fn final_reflection(&self, rng: &mut XorShift) -> FinalContent {
        if rng.chance(65) {
            FinalContent::Written {
                text: english(2750 + rng.below(500) as usize, self.student.index),
            }
        } else {
            FinalContent::Oral {
                media: None,
                link: Some(demo_video_link(rng)),
                duration_s: 310 + rng.below(300) as u32,
                duration_measured: false,
            }
        }
    }

    fn identity_number(&self, rng: &mut XorShift) -> IdentityNumber {
        let year = self.today.year() - 20 - rng.below(12) as i32;
        let month = 1 + rng.below(12) as u32;
        let day = 1 + rng.below(28) as u32;
        // One identity number belongs to one student: the serial follows the student's index, so
        // no two demo students share a number (up to 999 of them whatever their dates).
        // (The draw the serial used to come from is kept, so a seed gives the rest as before.)
        let _ = rng.below(999);
        let serial = 1 + (self.student.index % 999) as u32;
        IdentityNumber::with_check_digit(&format!("{year:04}{month:02}{day:02}{serial:03}"))
            .expect("demo identity numbers are valid")
    }

    async fn drive(&self) -> Result<usize, CommandError> {
        let path = self.student.path;
        let mut rng = XorShift::new(
            self.seed
                .wrapping_mul(0x0000_0100_0000_01B3)
                .wrapping_add(self.student.index as u64),
        );
        let mut appended = 0;
        let days = TimeDelta::days;

        let given = GIVEN_NAMES[rng.below(GIVEN_NAMES.len() as u64) as usize];
        let family = FAMILY_NAMES[rng.below(FAMILY_NAMES.len() as u64) as usize];
        let expected_completion = match path {
            // The final reflection was due 28 days before: 18 days ago.
            StudentPath::Late => self.today + days(10),
            _ => self.today + days(90 + rng.below(600) as i64),
        };
        let open = PortfolioCommand::OpenPortfolio {
            portfolio_id: self.student.portfolio_id,
            student_uid: self.student.student_uid,
            identity_number: self.identity_number(&mut rng),
            name: PersonName::parse(given, family).expect("demo names are valid"),
            email: Email::parse(&format!(
                "{}.{}.{}@student.example.se",
                given.to_lowercase(),
                family.to_lowercase().replace(['ö', 'ä', 'å'], "o"),
                self.student.index
            ))
            .expect("demo addresses are valid"),
            expected_completion,
        };
        appended += self.run("open", true, open).await?;

        // Three distinct catalog items (a partial shuffle), each reflected on in a different format.
        let mut catalog: Vec<_> = default_catalog().into_iter().map(|(id, _)| id).collect();
        for k in 0..3 {
            let j = k + rng.below((catalog.len() - k) as u64) as usize;
            catalog.swap(k, j);
        }
        let activities = match path {
            StudentPath::DroppedOff => 1 + rng.below(2) as usize,
            _ => 3,
        };
        let rotation = rng.below(3) as usize;
        let formats: Vec<Format> = (0..3)
            .map(|k| [Format::Written, Format::Oral, Format::Instagram][(rotation + k) % 3])
            .collect();
        let mut ids = Vec::new();
        for (k, item) in catalog.iter().take(activities).enumerate() {
            let activity_id = ActivityId::new(self.id(&format!("activity/{k}")));
            let ended_on = self.today - days(14 + rng.below(300) as i64);
            let started_on = ended_on - days(rng.below(5) as i64);
            appended += self
                .run(
                    &format!("activity/{k}"),
                    true,
                    PortfolioCommand::LogActivity {
                        activity_id,
                        item: item.clone(),
                        started_on,
                        ended_on,
                        description: Self::text(
                            "Met students and staff from other countries and took an active part.",
                        ),
                        evidence: None,
                    },
                )
                .await?;
            ids.push(activity_id);
        }
        if path == StudentPath::DroppedOff {
            if rng.chance(50) {
                let content = self.reflection(&mut rng, formats[0], 0);
                appended += self
                    .run(
                        "reflection/0",
                        true,
                        PortfolioCommand::SubmitReflection {
                            activity_id: ids[0],
                            content,
                        },
                    )
                    .await?;
            }
            return Ok(appended);
        }

        for (k, activity_id) in ids.iter().enumerate() {
            let content = self.reflection(&mut rng, formats[k], k);
            appended += self
                .run(
                    &format!("reflection/{k}"),
                    true,
                    PortfolioCommand::SubmitReflection {
                        activity_id: *activity_id,
                        content,
                    },
                )
                .await?;
        }
        // Leave the last reflection waiting for review for half of those in progress.
        let waiting_on_review = path == StudentPath::InProgress && rng.chance(50);
        for (k, activity_id) in ids.iter().enumerate() {
            if waiting_on_review && k == ids.len() - 1 {
                return Ok(appended);
            }
            let forced = path == StudentPath::Certified && self.student.index % 10 == 1 && k == 0;
            if forced || rng.chance(25) {
                appended += self
                    .run(
                        &format!("return/{k}"),
                        false,
                        PortfolioCommand::ReturnReflection {
                            activity_id: *activity_id,
                            by: self.staff(),
                            feedback: Self::text(
                                "Please say more about what you learned and how you will use it in your profession.",
                            ),
                        },
                    )
                    .await?;
                let content = self.reflection(&mut rng, formats[k], k + 1);
                appended += self
                    .run(
                        &format!("resubmit/{k}"),
                        true,
                        PortfolioCommand::ResubmitReflection {
                            activity_id: *activity_id,
                            content,
                        },
                    )
                    .await?;
            }
            appended += self
                .run(
                    &format!("approve/{k}"),
                    false,
                    PortfolioCommand::ApproveReflection {
                        activity_id: *activity_id,
                        by: self.staff(),
                    },
                )
                .await?;
        }

        let content = self.final_reflection(&mut rng);
        if path == StudentPath::Late {
            appended += self
                .refused(
                    "final/past-deadline",
                    PortfolioCommand::SubmitFinalReflection {
                        content: content.clone(),
                    },
                )
                .await?;
            // The student cannot move the date that sets the deadline, only propose another one;
            // the coordinator declines it (the study plan is unchanged) and extends the deadline.
            appended += self
                .run(
                    "completion/propose",
                    true,
                    PortfolioCommand::ProposeExpectedCompletion {
                        expected_completion: self.today + days(60),
                        reason: Self::text("My placement abroad ends later than planned."),
                    },
                )
                .await?;
            appended += self
                .run(
                    "completion/decline",
                    false,
                    PortfolioCommand::DeclineExpectedCompletion {
                        by: self.staff(),
                        reason: Self::text(
                            "The study plan still ends on the same date; an extension covers the delay.",
                        ),
                    },
                )
                .await?;
            appended += self
                .run(
                    "extension",
                    false,
                    PortfolioCommand::GrantExtension {
                        until: self.today + days(14),
                        reason: Self::text(
                            "Clinical placement abroad delayed the final reflection.",
                        ),
                        by: self.staff(),
                    },
                )
                .await?;
        }
        appended += self
            .run(
                "final",
                true,
                PortfolioCommand::SubmitFinalReflection { content },
            )
            .await?;
        if rng.chance(20) {
            appended += self
                .run(
                    "final/return",
                    false,
                    PortfolioCommand::ReturnFinalReflection {
                        by: self.staff(),
                        feedback: Self::text(
                            "Connect the activities to each other and to your future work.",
                        ),
                    },
                )
                .await?;
            let content = self.final_reflection(&mut rng);
            appended += self
                .run(
                    "final/resubmit",
                    true,
                    PortfolioCommand::ResubmitFinalReflection { content },
                )
                .await?;
        }
        appended += self
            .run(
                "final/approve",
                false,
                PortfolioCommand::ApproveFinalReflection { by: self.staff() },
            )
            .await?;
        appended += self.run("apply", true, PortfolioCommand::Apply).await?;
        match path {
            StudentPath::InProgress => return Ok(appended),
            StudentPath::RejectedThenApproved => {
                appended += self
                    .run(
                        "reject",
                        false,
                        PortfolioCommand::RejectApplication {
                            by: self.staff(),
                            reason: Self::text(
                                "The dates of one activity do not match the attendance list; please check and apply again.",
                            ),
                        },
                    )
                    .await?;
                appended += self.run("apply/2", true, PortfolioCommand::Apply).await?;
            }
            _ => {}
        }
        appended += self
            .run(
                "decision",
                false,
                PortfolioCommand::ApproveApplication {
                    certificate_id: CertificateId::new(self.id("certificate")),
                    by: self.staff(),
                },
            )
            .await?;
        if path == StudentPath::Revoked {
            appended += self
                .run(
                    "revoke",
                    false,
                    PortfolioCommand::RevokeCertificate {
                        by: self.staff(),
                        reason: Self::text("Issued in error: one activity was counted twice."),
                    },
                )
                .await?;
        }
        Ok(appended)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generator_is_deterministic_and_spreads() {
        let a: Vec<u64> = {
            let mut r = XorShift::new(7);
            (0..5).map(|_| r.below(100)).collect()
        };
        let b: Vec<u64> = {
            let mut r = XorShift::new(7);
            (0..5).map(|_| r.below(100)).collect()
        };
        assert_eq!(a, b);
        assert_ne!(XorShift::new(0).next_u64(), 0);
    }

    #[test]
    fn twelve_students_cover_every_path() {
        let paths: Vec<StudentPath> = (0..12).map(path_of).collect();
        for path in [
            StudentPath::Certified,
            StudentPath::Revoked,
            StudentPath::Late,
            StudentPath::RejectedThenApproved,
            StudentPath::DroppedOff,
            StudentPath::InProgress,
        ] {
            assert!(paths.contains(&path), "{path:?}");
        }
        assert_eq!(
            (0..1000)
                .filter(|i| path_of(*i) == StudentPath::Revoked)
                .count(),
            2
        );
    }
}

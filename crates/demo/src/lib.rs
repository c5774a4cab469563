//! The demo cohort of `cim-demo`: fake students driven through the real rules by the command handler.
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

mod driver;
pub mod texts;

pub use texts::english;

use driver::Driver;

use chrono::{DateTime, Utc};
use cim::app::{CommandContext, CommandError, CommandHandler, pilot_program_id};
use cim::domain::program::pilot_programs;
use cim::domain::{PortfolioId, ProgramCommand, ProgramId, StaffId, StudentUid};
use cim::store::ActorRole;
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
    id: cim::domain::ProgramId,
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

//! One demo student's driver: the commands along their path, one after the other.

use super::texts::english;
use super::{
    DEMO_NAMESPACE, DemoProgram, DemoStudent, StudentPath, XorShift, demo_video_link, path_of,
};
use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, Utc};
use cim::app::{CommandContext, CommandError, CommandHandler};
use cim::domain::portfolio::{FinalContent, ReflectionContent};
use cim::domain::program::default_catalog;
use cim::domain::values::{Email, IdentityNumber, NonEmptyText, PersonName};
use cim::domain::{
    ActivityId, CertificateId, PortfolioCommand, PortfolioId, StaffId, StudentUid, stockholm_date,
};
use cim::store::ActorRole;
use uuid::Uuid;

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
pub(super) struct Driver<'a> {
    handler: &'a CommandHandler,
    program: &'a DemoProgram,
    seed: u64,
    pub(super) student: DemoStudent,
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
    pub(super) fn new(
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

    pub(super) async fn drive(&self) -> Result<usize, CommandError> {
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
            // The demo has no Ladok: the numbers are typed and stay unchecked.
            identity_check: None,
        };
        appended += self.run("open", true, open).await?;
        // The date is the student's own until a coordinator confirms it (the first final
        // reflection waits for that).
        appended += self
            .run(
                "completion/confirm",
                false,
                PortfolioCommand::ConfirmExpectedCompletion { by: self.staff() },
            )
            .await?;

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

//! The generated workload of many students: a plan per student and the simulation that drives it,
//! every event type included.

use super::*;

/// What a generated student will do (drawn once per student from a seeded generator).
#[derive(Debug, Clone, Copy)]
struct Plan {
    /// Stops after this many commands (drop-off).
    stop_after: Option<usize>,
    withdraw: bool,
    return_reflection: bool,
    return_final: bool,
    extension: bool,
    change_completion: bool,
    check_identity: bool,
    reject: bool,
    revoke: bool,
}

pub(super) struct Sim {
    n: u32,
    program: usize,
    pub(super) portfolio: PortfolioId,
    pub(super) person: Person,
    plan: Plan,
    rng: StdRng,
    state: PortfolioState,
    commands: usize,
    withdrawn: bool,
    /// How far the date's set / propose / decide sequence has got.
    completion_step: u8,
}

enum Actor {
    Student,
    Coordinator,
    /// The export run's identity check against Ladok.
    System,
}

impl Sim {
    /// Student `n` of the workload: a portfolio opened in one of four programs without a confirmed
    /// date (a step of the simulation confirms or sets it, so some stay pending), and a plan drawn
    /// from `seed`.
    pub(super) async fn open(w: &World, n: u32, seed: &mut StdRng) -> Self {
        let program = (n % 4) as usize;
        let (portfolio, person) = open_unconfirmed(w, program, n).await;
        let (state, _) = w.handler.load_portfolio(portfolio).await.unwrap();
        Sim {
            n,
            program,
            portfolio,
            person,
            plan: plan(seed),
            rng: StdRng::seed_from_u64(u64::from(n)),
            state: (*state).clone(),
            commands: 0,
            withdrawn: false,
            completion_step: 0,
        }
    }

    /// The next command, chosen at random among those the rules allow now; `None` when done.
    fn next(&mut self) -> Option<(Actor, PortfolioCommand)> {
        if self.plan.stop_after.is_some_and(|n| self.commands >= n) {
            return None;
        }
        let p = self.state.opened()?;
        let rules = ProgramRules::default();
        let staff = coordinator(self.program);
        let mut options: Vec<(Actor, PortfolioCommand)> = Vec::new();
        match p.phase {
            Phase::Applied { .. } => {
                let cmd = if self.plan.reject && p.rejections.is_empty() {
                    PortfolioCommand::RejectApplication {
                        by: staff,
                        reason: text("Reflection two does not describe the activity."),
                    }
                } else {
                    PortfolioCommand::ApproveApplication {
                        certificate_id: CertificateId::new(Uuid::now_v7()),
                        by: staff,
                    }
                };
                return Some((Actor::Coordinator, cmd));
            }
            Phase::Certified if self.plan.revoke => {
                return Some((
                    Actor::Coordinator,
                    PortfolioCommand::RevokeCertificate {
                        by: staff,
                        reason: text("The certificate was issued on a mistaken premise."),
                    },
                ));
            }
            Phase::Certified | Phase::Revoked => return None,
            Phase::Collecting => {}
        }
        // Ladok answers the identity check: the number corrected (odd students, to a number of
        // their own) or none in Ladok (even ones).
        if self.plan.check_identity && p.identity_check.is_none() {
            let identity_number = (self.n % 2 == 1)
                .then(|| IdentityNumber::parse(&personnummer(self.n + 5_000), today()).unwrap());
            options.push((
                Actor::System,
                PortfolioCommand::CheckIdentityInLadok {
                    record: LadokRecord::Student { identity_number },
                },
            ));
        }
        // The date: a coordinator sets it, the student proposes another one, a coordinator accepts
        // (even students) or declines (odd ones).
        if self.plan.change_completion {
            let days = |d| p.expected_completion + TimeDelta::days(d);
            match self.completion_step {
                0 => options.push((
                    Actor::Coordinator,
                    PortfolioCommand::SetExpectedCompletion {
                        expected_completion: days(60),
                        reason: text("Study plan prolonged."),
                        by: staff.clone(),
                    },
                )),
                1 => options.push((
                    Actor::Student,
                    PortfolioCommand::ProposeExpectedCompletion {
                        expected_completion: days(30),
                        reason: text("Placement moved."),
                    },
                )),
                2 if self.n.is_multiple_of(2) => options.push((
                    Actor::Coordinator,
                    PortfolioCommand::AcceptExpectedCompletion {
                        by: staff.clone(),
                        reason: text("Confirmed."),
                    },
                )),
                2 => options.push((
                    Actor::Coordinator,
                    PortfolioCommand::DeclineExpectedCompletion {
                        by: staff.clone(),
                        reason: text("Not in the study plan."),
                    },
                )),
                _ => {}
            }
        }
        let active: Vec<_> = p.active_activities().collect();
        let wanted = if self.plan.withdraw && !self.withdrawn {
            4
        } else {
            3
        };
        if active.len() < wanted && p.final_attempts.is_empty() {
            let item = ITEMS[p.activities.len() % ITEMS.len()];
            options.push((
                Actor::Student,
                log_activity(
                    ActivityId::new(Uuid::now_v7()),
                    item,
                    i64::from(self.rng.random_range(5..60u32)),
                ),
            ));
        }
        if self.plan.withdraw && !self.withdrawn && active.len() == 4 {
            let last = active[3];
            if last.status() != ReflectionStatus::Approved {
                options.push((
                    Actor::Student,
                    PortfolioCommand::WithdrawActivity {
                        activity_id: last.id(),
                    },
                ));
            }
        }
        for a in &active {
            let content = match self.rng.random_range(0..3u32) {
                0 => written(),
                1 => oral(),
                _ => instagram(&format!("{}a{}", self.n, a.attempts.len())),
            };
            match a.status() {
                ReflectionStatus::NotSubmitted => options.push((
                    Actor::Student,
                    PortfolioCommand::SubmitReflection {
                        activity_id: a.id(),
                        content,
                    },
                )),
                ReflectionStatus::Returned => options.push((
                    Actor::Student,
                    PortfolioCommand::ResubmitReflection {
                        activity_id: a.id(),
                        content,
                    },
                )),
                ReflectionStatus::AwaitingReview => {
                    let cmd = if self.plan.return_reflection && a.attempts.len() == 1 {
                        PortfolioCommand::ReturnReflection {
                            activity_id: a.id(),
                            by: staff.clone(),
                            feedback: text("Please say more about what you will take with you."),
                        }
                    } else {
                        PortfolioCommand::ApproveReflection {
                            activity_id: a.id(),
                            by: staff.clone(),
                        }
                    };
                    options.push((Actor::Coordinator, cmd));
                }
                ReflectionStatus::Approved => {}
            }
        }
        let final_content = if self.rng.random_bool(0.5) {
            final_written()
        } else {
            final_oral()
        };
        if !p.completion_confirmed {
            options.push((
                Actor::Coordinator,
                PortfolioCommand::ConfirmExpectedCompletion { by: staff.clone() },
            ));
        }
        match p.final_status() {
            // The first final reflection waits for the date's confirmation.
            ReflectionStatus::NotSubmitted if !p.completion_confirmed => {}
            ReflectionStatus::NotSubmitted if p.reflected_count(&rules) >= 3 => {
                if self.plan.extension && p.extensions.is_empty() {
                    options.push((
                        Actor::Coordinator,
                        PortfolioCommand::GrantExtension {
                            until: p.expected_completion + TimeDelta::days(10),
                            reason: text("Parental leave during the spring term."),
                            by: staff.clone(),
                        },
                    ));
                } else {
                    options.push((
                        Actor::Student,
                        PortfolioCommand::SubmitFinalReflection {
                            content: final_content,
                        },
                    ));
                }
            }
            ReflectionStatus::Returned => options.push((
                Actor::Student,
                PortfolioCommand::ResubmitFinalReflection {
                    content: final_content,
                },
            )),
            ReflectionStatus::AwaitingReview => {
                let cmd = if self.plan.return_final && p.final_attempts.len() == 1 {
                    PortfolioCommand::ReturnFinalReflection {
                        by: staff.clone(),
                        feedback: text("Please relate the competencies to your future workplace."),
                    }
                } else {
                    PortfolioCommand::ApproveFinalReflection { by: staff.clone() }
                };
                options.push((Actor::Coordinator, cmd));
            }
            _ => {}
        }
        if p.final_status() == ReflectionStatus::Approved && p.approved_count(&rules) >= 3 {
            options.push((Actor::Student, PortfolioCommand::Apply));
        }
        if options.is_empty() {
            return None;
        }
        let pick = self.rng.random_range(0..options.len());
        Some(options.swap_remove(pick))
    }

    /// Runs one command (if any is left); returns whether it did.
    pub(super) async fn step(&mut self, w: &World) -> bool {
        let Some((actor, cmd)) = self.next() else {
            return false;
        };
        match &cmd {
            PortfolioCommand::WithdrawActivity { .. } => self.withdrawn = true,
            PortfolioCommand::SetExpectedCompletion { .. }
            | PortfolioCommand::ProposeExpectedCompletion { .. }
            | PortfolioCommand::AcceptExpectedCompletion { .. }
            | PortfolioCommand::DeclineExpectedCompletion { .. } => self.completion_step += 1,
            _ => {}
        }
        let handled = match actor {
            Actor::Student => student(w, self.portfolio, &self.person, cmd).await,
            Actor::Coordinator => staff(w, self.program, self.portfolio, cmd).await,
            Actor::System => w
                .handler
                .portfolio(
                    self.portfolio,
                    cmd,
                    &ctx("identity-check", ActorRole::System),
                )
                .await
                .unwrap(),
        };
        self.state = (*handled.state).clone();
        self.commands += 1;
        true
    }
}

fn plan(rng: &mut StdRng) -> Plan {
    Plan {
        stop_after: rng.random_bool(0.15).then(|| rng.random_range(1..12usize)),
        withdraw: rng.random_bool(0.15),
        return_reflection: rng.random_bool(0.3),
        return_final: rng.random_bool(0.2),
        extension: rng.random_bool(0.15),
        change_completion: rng.random_bool(0.2),
        check_identity: rng.random_bool(0.3),
        reject: rng.random_bool(0.15),
        revoke: rng.random_bool(0.15),
    }
}

pub(super) const STUDENTS: u32 = 80;

//! The small known scenario of `known_scenario.rs`: five students in two programs, each at a step
//! of their own, written through the real command handler and projected.

use super::*;

/// What the checks refer to: the portfolios and people of the five students, the activities of
/// the first, the answer to its resubmission, and the two certificates.
pub(super) struct Scenario {
    pub(super) p1: PortfolioId,
    pub(super) p2: PortfolioId,
    pub(super) p4: PortfolioId,
    pub(super) p5: PortfolioId,
    pub(super) s1: Person,
    pub(super) s2: Person,
    pub(super) s3: Person,
    pub(super) s4: Person,
    pub(super) s5: Person,
    pub(super) acts: Vec<ActivityId>,
    pub(super) resubmitted: Outcome,
    pub(super) c2: CertificateId,
    pub(super) c3: CertificateId,
}

/// Writes the scenario and brings every read model up to date with it.
pub(super) async fn known_scenario(w: &World) -> Scenario {
    // S1 (program A): three activities reflected, one returned and resubmitted, one approved.
    let (p1, s1) = open(w, 0, 1).await;
    let acts: Vec<ActivityId> = (0..3).map(|_| ActivityId::new(Uuid::now_v7())).collect();
    for (i, act) in acts.iter().enumerate() {
        student(w, p1, &s1, log_activity(*act, ITEMS[i], 30 - 10 * i as i64)).await;
    }
    for (act, content) in acts.iter().zip([written(), oral(), instagram("s1")]) {
        student(
            w,
            p1,
            &s1,
            PortfolioCommand::SubmitReflection {
                activity_id: *act,
                content,
            },
        )
        .await;
    }
    staff(
        w,
        0,
        p1,
        PortfolioCommand::ApproveReflection {
            activity_id: acts[0],
            by: coordinator(0),
        },
    )
    .await;
    staff(
        w,
        0,
        p1,
        PortfolioCommand::ReturnReflection {
            activity_id: acts[1],
            by: coordinator(0),
            feedback: text("Tell us what you would do differently."),
        },
    )
    .await;
    let resubmitted = student(
        w,
        p1,
        &s1,
        PortfolioCommand::ResubmitReflection {
            activity_id: acts[1],
            content: oral(),
        },
    )
    .await;

    // S2 and S3 (program A) are certified; S3's certificate is then revoked.
    let (p2, s2) = open(w, 0, 2).await;
    complete_and_apply(w, 0, p2, &s2).await;
    let c2 = CertificateId::new(Uuid::now_v7());
    staff(
        w,
        0,
        p2,
        PortfolioCommand::ApproveApplication {
            certificate_id: c2,
            by: coordinator(0),
        },
    )
    .await;
    let (p3, s3) = open(w, 0, 3).await;
    complete_and_apply(w, 0, p3, &s3).await;
    let c3 = CertificateId::new(Uuid::now_v7());
    staff(
        w,
        0,
        p3,
        PortfolioCommand::ApproveApplication {
            certificate_id: c3,
            by: coordinator(0),
        },
    )
    .await;
    staff(
        w,
        0,
        p3,
        PortfolioCommand::RevokeCertificate {
            by: coordinator(0),
            reason: text("Issued by mistake."),
        },
    )
    .await;

    // S4 (program A) logs one activity, reflects on it and withdraws it again.
    let (p4, s4) = open(w, 0, 4).await;
    let act4 = ActivityId::new(Uuid::now_v7());
    student(w, p4, &s4, log_activity(act4, "tedx", 40)).await;
    student(
        w,
        p4,
        &s4,
        PortfolioCommand::SubmitReflection {
            activity_id: act4,
            content: written(),
        },
    )
    .await;
    student(
        w,
        p4,
        &s4,
        PortfolioCommand::WithdrawActivity { activity_id: act4 },
    )
    .await;

    // S5 (program B) applies; the application waits.
    let (p5, s5) = open(w, 1, 5).await;
    complete_and_apply(w, 1, p5, &s5).await;
    // ... and proposes a later expected completion date twice: only the newer proposal waits.
    for days in [400, 420] {
        student(
            w,
            p5,
            &s5,
            PortfolioCommand::ProposeExpectedCompletion {
                expected_completion: today() + TimeDelta::days(days),
                reason: text("Placement moved."),
            },
        )
        .await;
    }

    for model in read_models::all() {
        catch_up(w, model.as_ref(), 50).await;
    }
    Scenario {
        p1,
        p2,
        p4,
        p5,
        s1,
        s2,
        s3,
        s4,
        s5,
        acts,
        resubmitted,
        c2,
        c3,
    }
}

//! Concrete values of the review queue, the registrar's list, the portfolio pages, the audit and the
//! pilot statistics for a small known scenario, and no personal data in any read-model table.

use super::scenario::{Scenario, known_scenario};
use super::*;

#[tokio::test]
async fn queue_registrar_audit_and_statistics_of_a_known_scenario() {
    let w = world().await;
    let pool = &w.db.pool;
    let (a, b) = (w.programs[0], w.programs[1]);

    let Scenario {
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
    } = known_scenario(&w).await;
    let people = [s1.clone(), s2.clone(), s3.clone(), s4.clone(), s5.clone()];

    // --- Review queue: oldest first, with how long each item has waited at `now`.
    let history1 = audit::portfolio_history(pool, p1).await.unwrap();
    let submitted_at = |version: i32| {
        history1
            .iter()
            .find(|e| e.stream_version == version)
            .unwrap()
            .recorded_at
    };
    let resubmitted_at = submitted_at(resubmitted.version);
    let now = resubmitted_at + TimeDelta::days(3);
    let queue = review_queue::review_queue(pool, a, now, None, 100)
        .await
        .unwrap();
    let summary: Vec<_> = queue
        .iter()
        .map(|e| (e.portfolio_id, e.kind, e.activity_id, e.attempt))
        .collect();
    assert_eq!(
        summary,
        [
            (p1, QueueItemKind::Reflection, Some(acts[2]), 1),
            (p1, QueueItemKind::Reflection, Some(acts[1]), 2),
        ]
    );
    assert_eq!(queue[0].item_name.as_deref(), Some("Student ambassador"));
    assert_eq!(queue[0].format.as_deref(), Some("instagram"));
    assert_eq!(queue[0].link_count, Some(3));
    assert_eq!(queue[0].submitted_at, submitted_at(8));
    assert_eq!(queue[1].format.as_deref(), Some("oral"));
    assert_eq!(queue[1].recording.as_deref(), Some("upload"));
    assert_eq!(queue[1].duration_measured, Some(false));
    assert_eq!(queue[1].submitted_at, resubmitted_at);
    assert_eq!(queue[1].waited_seconds, 3 * 86_400);
    assert_eq!(queue[1].waited_days, 3);
    assert_eq!(
        queue[0].waited_seconds,
        (now - submitted_at(8)).num_seconds()
    );
    let queue_b = review_queue::review_queue(pool, b, now, None, 100)
        .await
        .unwrap();
    let waiting_b: Vec<_> = queue_b
        .iter()
        .map(|e| (e.portfolio_id, e.kind, e.attempt))
        .collect();
    assert_eq!(
        waiting_b,
        [
            (p5, QueueItemKind::Application, 1),
            (p5, QueueItemKind::CompletionProposal, 2)
        ]
    );

    // --- Registrar: approved and revoked certificates, filters, keyset pages.
    let all = registrar::certificates(pool, &CertificateFilter::default(), None, 100)
        .await
        .unwrap();
    let ids: Vec<_> = all
        .certificates
        .iter()
        .map(|c| (c.certificate_id, c.status))
        .collect();
    assert_eq!(
        ids,
        [
            (c2, CertificateStatus::Approved),
            (c3, CertificateStatus::Revoked)
        ]
    );
    assert_eq!(all.next, None);
    let cert2 = &all.certificates[0];
    assert_eq!(cert2.portfolio_id, p2);
    assert_eq!(cert2.student_uid, s2.uid);
    assert_eq!(cert2.decided_on, today());
    assert_eq!(cert2.decided_by, coordinator(0));
    assert_eq!(
        cert2.activity_names,
        [
            "Participation in language café, participant and/or coordinator",
            "TEDx",
            "Student ambassador",
        ]
    );
    assert_eq!(cert2.program_name, "Occupational Therapy Program");
    assert_eq!(
        (cert2.export_status.as_str(), cert2.ladok_status.as_str()),
        ("pending", "pending")
    );
    let cert3 = &all.certificates[1];
    assert_eq!(cert3.revoked_on, Some(today()));
    assert_eq!(cert3.revoked_by, Some(coordinator(0)));
    let revoked = registrar::certificates(
        pool,
        &CertificateFilter {
            program_id: Some(a),
            status: Some(CertificateStatus::Revoked),
        },
        None,
        100,
    )
    .await
    .unwrap();
    assert_eq!(revoked.certificates.len(), 1);
    assert_eq!(revoked.certificates[0].certificate_id, c3);
    let none_in_b = registrar::certificates(
        pool,
        &CertificateFilter {
            program_id: Some(b),
            status: None,
        },
        None,
        100,
    )
    .await
    .unwrap();
    assert!(none_in_b.certificates.is_empty());
    let page1 = registrar::certificates(pool, &CertificateFilter::default(), None, 1)
        .await
        .unwrap();
    let page2 = registrar::certificates(pool, &CertificateFilter::default(), page1.next, 1)
        .await
        .unwrap();
    let page3 = registrar::certificates(pool, &CertificateFilter::default(), page2.next, 1)
        .await
        .unwrap();
    assert_eq!(page1.certificates[0].certificate_id, c2);
    assert_eq!(page2.certificates[0].certificate_id, c3);
    assert!(page3.certificates.is_empty() && page3.next.is_none());
    assert_eq!(
        registrar::certificate(pool, c3)
            .await
            .unwrap()
            .unwrap()
            .status,
        CertificateStatus::Revoked
    );

    // --- Portfolio page: next steps, days left, personal content joined from the log.
    let page = portfolio::portfolio_page(pool, p1, today())
        .await
        .unwrap()
        .unwrap();
    let codes: Vec<_> = page.view.next_steps.iter().map(|s| s.code).collect();
    assert_eq!(
        codes,
        [
            NextStepCode::SubmitFinalReflection,
            NextStepCode::AwaitReview
        ]
    );
    assert_eq!(
        page.days_left,
        Some((page.view.deadline.date - today()).num_days())
    );
    assert_eq!(
        page.personal.student.as_ref().unwrap().email.as_str(),
        s1.email
    );
    assert_eq!(
        page.personal.activities[1].attempts[0]
            .feedback
            .as_ref()
            .unwrap()
            .as_str(),
        "Tell us what you would do differently."
    );
    let list = portfolio::portfolios_of_program(pool, a, None, None, 100, today())
        .await
        .unwrap();
    assert_eq!(list.len(), 4);
    let mine = portfolio::portfolios_of_student(pool, s5.uid, None, 100, today())
        .await
        .unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].next_steps, [NextStepCode::AwaitDecision]);

    // --- Audit: history with content, a filtered program log in pages, CSV.
    assert_eq!(history1.len(), 11);
    assert_eq!(history1[0].event_type, "PortfolioOpened");
    assert_eq!(history1[0].actor_role, ActorRole::Student);
    assert_eq!(history1[0].program_id, Some(a));
    assert!(
        history1[0].content["personal"]
            .to_string()
            .contains(&s1.family_name)
    );
    let returned = audit::program_log(
        pool,
        a,
        &AuditFilter {
            event_types: vec!["ReflectionReturned".into()],
            ..AuditFilter::default()
        },
        None,
        100,
    )
    .await
    .unwrap();
    assert_eq!(returned.entries.len(), 1);
    assert_eq!(returned.entries[0].actor_id, coordinator(0).as_str());
    let everything = audit::program_log(pool, a, &AuditFilter::default(), None, 1000)
        .await
        .unwrap();
    // Program A's own events (registration, 13 catalog items, coordinator) and its four
    // portfolios' (S1 11, S2 15, S3 16, S4 5: each with the date's confirmation).
    assert_eq!(everything.entries.len(), 15 + 11 + 15 + 16 + 5);
    let mut paged = Vec::new();
    let mut after = None;
    loop {
        let page = audit::program_log(pool, a, &AuditFilter::default(), after, 7)
            .await
            .unwrap();
        paged.extend(page.entries);
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(paged, everything.entries);
    let by_s4 = audit::program_log(
        pool,
        a,
        &AuditFilter {
            actor_id: Some(s4.uid.to_string()),
            from: Some(history1[0].recorded_at),
            until: Some(Utc::now() + TimeDelta::days(1)),
            ..AuditFilter::default()
        },
        None,
        100,
    )
    .await
    .unwrap();
    assert_eq!(by_s4.entries.len(), 4);
    assert!(by_s4.entries.iter().all(|e| e.portfolio_id == Some(p4)));
    let csv = audit::audit_csv(&history1);
    let lines: Vec<&str> = csv.split("\r\n").collect();
    assert_eq!(
        lines[0],
        "position,recorded_at,event_type,actor_role,actor_id,correlation_id,content"
    );
    assert_eq!(
        lines.len(),
        1 + history1.len() + 1,
        "header, rows, final CRLF"
    );
    assert!(lines[1].contains(",PortfolioOpened,student,"));
    assert!(lines[1].ends_with('"'), "the JSON content is quoted");

    // --- Statistics, overall and per program.
    let overall = statistics::statistics(pool, None).await.unwrap();
    assert_eq!(overall.students_started, 5);
    let reached: Vec<i64> = overall.reached.iter().map(|s| s.portfolios).collect();
    // started, logged one, logged three, reflected three, three approved, final submitted,
    // final approved, applied, certified.
    assert_eq!(reached, [5, 5, 4, 4, 3, 3, 3, 3, 2]);
    assert_eq!((overall.approved, overall.revoked), (2, 1));
    assert_eq!(overall.first_activity_to_approval.portfolios, 2);
    assert_eq!(overall.first_activity_to_approval.mean_days, Some(32.0));
    assert_eq!(overall.first_activity_to_approval.median_days, Some(32.0));
    let mix: Vec<(&str, i64)> = overall
        .activity_mix
        .iter()
        .map(|s| (s.key.as_str(), s.count))
        .collect();
    assert_eq!(
        mix,
        [("language-cafe", 4), ("student-ambassador", 4), ("tedx", 4)]
    );
    let formats: Vec<(&str, i64)> = overall
        .reflection_formats
        .iter()
        .map(|s| (s.key.as_str(), s.count))
        .collect();
    assert_eq!(formats, [("written", 7), ("instagram", 4), ("oral", 1)]);
    assert_eq!(
        (overall.reflections_submitted, overall.reflections_returned),
        (14, 1)
    );
    assert_eq!(overall.return_rate, Some(1.0 / 14.0));
    assert_eq!(overall.final_formats[0].key, "oral");
    let per_program = statistics::statistics_per_program(pool).await.unwrap();
    let started: Vec<_> = per_program
        .iter()
        .map(|s| (s.program_id.unwrap(), s.students_started))
        .collect();
    let mut expected = vec![(a, 4), (b, 1)];
    expected.sort();
    assert_eq!(started, expected);

    let later = statistics::drop_off(pool, None, Utc::now() + TimeDelta::days(40), 30)
        .await
        .unwrap();
    assert_eq!((later.open, later.inactive), (3, 3));
    assert_eq!(
        later.stuck,
        [
            StepCount {
                step: Step::Started,
                portfolios: 1
            },
            StepCount {
                step: Step::ReflectionsSubmitted,
                portfolios: 1
            },
            StepCount {
                step: Step::Applied,
                portfolios: 1
            },
        ]
    );
    let soon = statistics::drop_off(pool, Some(a), Utc::now() + TimeDelta::days(1), 30)
        .await
        .unwrap();
    assert_eq!((soon.open, soon.inactive), (2, 0));

    // --- No personal data in the statistics, nor in any other read-model table.
    let stats_text: Vec<String> =
        sqlx::query_scalar("SELECT row_to_json(t)::text FROM rm_stats_portfolios t")
            .fetch_all(pool)
            .await
            .unwrap();
    let stats_text = stats_text.join("\n");
    assert_no_personal_data(&stats_text, &people, true, "rm_stats_portfolios");
    assert!(!stats_text.contains("Testperson"));
    let everything_text = all_read_model_text(pool).await;
    assert_no_personal_data(&everything_text, &people, false, "a read model");
    // The opening words of every generated reflection text.
    let reflection_words = support::texts::english(12);
    for secret in [
        "Tell us what you would do differently.",
        "Issued by mistake.",
        "Two evenings a week",
        reflection_words.as_str(),
    ] {
        assert!(
            !everything_text.contains(secret),
            "a read model holds {secret:?}"
        );
    }

    // Erasing the personal column in the log is all an erasure takes: the read models do not
    // change, the pages show the portfolio without the student's data.
    let before_erasure = snapshot(pool, &read_models::all()).await;
    sqlx::query("UPDATE events SET personal = NULL, data_subject = NULL WHERE data_subject = $1")
        .bind(s1.uid.as_uuid())
        .execute(pool)
        .await
        .unwrap();
    let erased = portfolio::portfolio_page(pool, p1, today())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(erased.personal.student, None);
    assert_eq!(erased.view, page.view);
    assert!(
        audit::portfolio_history(pool, p1)
            .await
            .unwrap()
            .iter()
            .all(|e| e.content.get("personal").is_none())
    );
    assert_eq!(snapshot(pool, &read_models::all()).await, before_erasure);
    w.db.drop().await;
}

// ---------------------------------------------------------------------------------------------
// Fold caches.
// ---------------------------------------------------------------------------------------------

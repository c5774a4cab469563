//! The audit's portfolio "as of" each event of the portfolio's and its program's streams equals the
//! live row right after it (rules changes and a catalog rename included).

use super::*;

/// Program 0's rules with a final deadline `offset` days before the expected completion.
fn deadline_offset(offset: u32) -> ProgramCommand {
    ProgramCommand::ChangeRules {
        rules: ProgramRules {
            final_deadline_offset_days: offset,
            ..ProgramRules::default()
        },
    }
}

#[tokio::test]
async fn the_portfolio_as_of_each_event_equals_the_live_view_right_after_it() {
    let w = world().await;
    let (p, s) = open(&w, 0, 1).await;
    let acts: Vec<ActivityId> = (0..3).map(|_| ActivityId::new(Uuid::now_v7())).collect();
    for (i, a) in acts.iter().enumerate() {
        student(&w, p, &s, log_activity(*a, ITEMS[i], 30 - 5 * i as i64)).await;
    }
    // Program events between portfolio events: a rules change that moves the deadline (a week
    // later: 21 days before completion instead of 28) re-renders the view ...
    admin(&w, 0, deadline_offset(21)).await;
    staff(
        &w,
        0,
        p,
        PortfolioCommand::SetExpectedCompletion {
            expected_completion: today() + TimeDelta::days(400),
            reason: text("Study plan prolonged."),
            by: coordinator(0),
        },
    )
    .await;
    // ... a catalog rename does not (the activity keeps the name it was logged under) ...
    admin(
        &w,
        0,
        ProgramCommand::RenameCatalogItem {
            item: CatalogItemId::parse(ITEMS[1]).unwrap(),
            name: text("TEDx Karolinska"),
        },
    )
    .await;
    for (a, content) in acts.iter().zip([written(), oral(), instagram("tt")]) {
        student(
            &w,
            p,
            &s,
            PortfolioCommand::SubmitReflection {
                activity_id: *a,
                content,
            },
        )
        .await;
    }
    // ... nor does a rules change the view does not show (the word bands).
    let mut bands = ProgramRules {
        final_deadline_offset_days: 21,
        ..ProgramRules::default()
    };
    bands.written.min = 800;
    admin(&w, 0, ProgramCommand::ChangeRules { rules: bands }).await;
    staff(
        &w,
        0,
        p,
        PortfolioCommand::ReturnReflection {
            activity_id: acts[1],
            by: coordinator(0),
            feedback: text("Say more about what you learned."),
        },
    )
    .await;
    student(
        &w,
        p,
        &s,
        PortfolioCommand::ResubmitReflection {
            activity_id: acts[1],
            content: oral(),
        },
    )
    .await;
    for a in &acts {
        staff(
            &w,
            0,
            p,
            PortfolioCommand::ApproveReflection {
                activity_id: *a,
                by: coordinator(0),
            },
        )
        .await;
    }
    staff(
        &w,
        0,
        p,
        PortfolioCommand::GrantExtension {
            until: today() + TimeDelta::days(390),
            reason: text("Illness."),
            by: coordinator(0),
        },
    )
    .await;
    // Under an extension the regular deadline still moves.
    admin(&w, 0, deadline_offset(14)).await;
    student(
        &w,
        p,
        &s,
        PortfolioCommand::SubmitFinalReflection {
            content: final_written(),
        },
    )
    .await;
    staff(
        &w,
        0,
        p,
        PortfolioCommand::ReturnFinalReflection {
            by: coordinator(0),
            feedback: text("Relate it to the workplace."),
        },
    )
    .await;
    student(
        &w,
        p,
        &s,
        PortfolioCommand::ResubmitFinalReflection {
            content: final_oral(),
        },
    )
    .await;
    staff(
        &w,
        0,
        p,
        PortfolioCommand::ApproveFinalReflection { by: coordinator(0) },
    )
    .await;
    student(&w, p, &s, PortfolioCommand::Apply).await;
    staff(
        &w,
        0,
        p,
        PortfolioCommand::RejectApplication {
            by: coordinator(0),
            reason: text("Not yet."),
        },
    )
    .await;
    student(&w, p, &s, PortfolioCommand::Apply).await;
    staff(
        &w,
        0,
        p,
        PortfolioCommand::ApproveApplication {
            certificate_id: CertificateId::new(Uuid::now_v7()),
            by: coordinator(0),
        },
    )
    .await;
    staff(
        &w,
        0,
        p,
        PortfolioCommand::RevokeCertificate {
            by: coordinator(0),
            reason: text("Mistake."),
        },
    )
    .await;
    // After the portfolio's last event, a rules change is the last thing that changed its view.
    admin(&w, 0, deadline_offset(35)).await;

    // Project one event per batch, capturing the live row (or its absence) after each event of
    // the portfolio's stream and of its program's stream, in log order.
    let projection = read_models::PortfolioProjection::new();
    let pool = &w.db.pool;
    checkpoint::reset(pool, &projection).await.unwrap();
    let hash = definition_hash(&projection);
    let program_stream = w.programs[0].stream_id();
    let mut at = Checkpoint::START;
    let mut captured = Vec::new();
    for _ in 0..event_count(pool).await {
        let batch = next_batch(&w, at, 1).await;
        let event = &batch[0];
        at = checkpoint::apply_batch(pool, &projection, &hash, at, &batch)
            .await
            .unwrap();
        if event.stream_id == p.stream_id() || event.stream_id == program_stream {
            let live = portfolio::stored_portfolio(pool, p).await.unwrap();
            captured.push((event.clone(), live));
        }
    }
    let own: Vec<_> = captured
        .iter()
        .filter(|(e, _)| e.stream_id == p.stream_id())
        .collect();
    assert_eq!(own.len(), 24);
    let rules_changes: Vec<usize> = (0..captured.len())
        .filter(|&i| captured[i].0.event_type == "RulesChanged")
        .collect();
    assert_eq!(rules_changes.len(), 4);
    assert!(
        captured
            .iter()
            .any(|(e, _)| e.event_type == "CatalogItemRenamed")
    );

    // What the rules changes did live: the deadline moved a week later, and each change that
    // altered the view dated the row; the change of the word bands left the row alone.
    let row = |i: usize| captured[i].1.as_ref().unwrap();
    let [later, bands, under_extension, last] = rules_changes[..] else {
        unreachable!()
    };
    assert_eq!(
        row(later).view.deadline.date,
        row(later - 1).view.deadline.date + TimeDelta::days(7)
    );
    assert_eq!(
        row(later).view.expected_completion - row(later).view.deadline.date,
        TimeDelta::days(21)
    );
    assert_eq!(row(bands), row(bands - 1));
    assert_eq!(
        row(under_extension).view.deadline.regular,
        row(under_extension - 1).view.deadline.regular + TimeDelta::days(7)
    );
    assert!(row(under_extension).view.deadline.extended);
    assert_eq!(
        row(last).view.expected_completion - row(last).view.deadline.regular,
        TimeDelta::days(35)
    );
    for i in [later, under_extension, last] {
        assert_eq!(row(i).updated_at, captured[i].0.recorded_at);
        assert_eq!(row(i).version, row(i - 1).version);
    }

    // The as-of view at every event of both streams is the live row right after it, and stays so
    // until the next event.
    let as_of = |t| async move {
        audit::portfolio_as_of(pool, p, t)
            .await
            .unwrap()
            .map(|page| portfolio::StoredPortfolio {
                view: page.view,
                version: page.version,
                updated_at: page.updated_at,
            })
    };
    let first = own[0].0.recorded_at;
    assert_eq!(as_of(first - TimeDelta::microseconds(1)).await, None);
    for (event, live) in &captured {
        let t = event.recorded_at;
        let what = format!("as of {} v{} ({t})", event.event_type, event.version);
        assert_eq!(as_of(t).await, *live, "{what}");
        assert_eq!(
            as_of(t + TimeDelta::microseconds(1)).await,
            *live,
            "just after {what}"
        );
    }
    // The as-of page carries the personal content of the time, from the log.
    let mid = audit::portfolio_as_of(pool, p, own[10].0.recorded_at)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        mid.personal.student.as_ref().unwrap().name.family_name(),
        s.family_name
    );
    assert_eq!(
        mid.personal.activities[1].attempts[0]
            .feedback
            .as_ref()
            .map(|f| f.as_str()),
        Some("Say more about what you learned.")
    );
    assert_eq!(mid.view.activities[1].attempts.len(), 2);
    w.db.drop().await;
}

// ---------------------------------------------------------------------------------------------
// A small known scenario: concrete values of every query.
// ---------------------------------------------------------------------------------------------

//! The whole path of one student through the handler, from enrolment to an approved certificate.

use super::*;

#[tokio::test]
async fn a_student_goes_from_enrolment_to_an_approved_certificate() {
    let w = world().await;
    let (p, s) = open(&w).await;
    let activities: Vec<ActivityId> = (0..3).map(|_| ActivityId::new(Uuid::now_v7())).collect();
    let items = [
        "language-cafe",
        "student-ambassador",
        "course-in-global-health",
    ];
    for (i, (a, item)) in activities.iter().zip(items).enumerate() {
        as_student(&w, p, s, log(*a, item, 30 - i as i64 * 5))
            .await
            .unwrap();
    }

    // Each reflection format once, the written one first too short.
    let short = as_student(
        &w,
        p,
        s,
        PortfolioCommand::SubmitReflection {
            activity_id: activities[0],
            content: ReflectionContent::Written {
                text: texts::english(642),
            },
        },
    )
    .await
    .unwrap_err();
    let CommandError::Domain(refusal) = short else {
        panic!("expected a domain refusal, got {short:?}")
    };
    assert_eq!(refusal.code(), "reflection_word_count_out_of_band");
    assert!(refusal.to_string().contains("642"), "{refusal}");

    let contents = [
        ReflectionContent::Written {
            text: texts::english(1000),
        },
        ReflectionContent::Oral {
            media: Some(MediaRef::new(&"ab".repeat(32), "audio/mpeg", 4096).unwrap()),
            link: None,
            duration_s: 150,
            duration_measured: false,
        },
        ReflectionContent::Instagram {
            links: vec![
                "https://www.instagram.com/p/Cabc123/".into(),
                "https://www.instagram.com/p/Cdef456/".into(),
                "https://instagram.com/reel/Cghi789/".into(),
            ],
            text: texts::english(500),
        },
    ];
    for (a, content) in activities.iter().zip(contents) {
        as_student(
            &w,
            p,
            s,
            PortfolioCommand::SubmitReflection {
                activity_id: *a,
                content,
            },
        )
        .await
        .unwrap();
    }

    // The coordinator returns one with feedback; the student resubmits; all three are approved.
    as_coordinator(
        &w,
        p,
        PortfolioCommand::ReturnReflection {
            activity_id: activities[1],
            by: staff(),
            feedback: text("Please say more about what you will take with you."),
        },
    )
    .await
    .unwrap();
    as_student(
        &w,
        p,
        s,
        PortfolioCommand::ResubmitReflection {
            activity_id: activities[1],
            content: ReflectionContent::Oral {
                media: Some(MediaRef::new(&"ab".repeat(32), "audio/mpeg", 4096).unwrap()),
                link: None,
                duration_s: 170,
                duration_measured: false,
            },
        },
    )
    .await
    .unwrap();
    for a in &activities {
        as_coordinator(
            &w,
            p,
            PortfolioCommand::ApproveReflection {
                activity_id: *a,
                by: staff(),
            },
        )
        .await
        .unwrap();
    }

    // The final reflection must be English.
    let swedish = as_student(
        &w,
        p,
        s,
        PortfolioCommand::SubmitFinalReflection {
            content: FinalContent::Written {
                text: texts::swedish(3000),
            },
        },
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            swedish,
            CommandError::Domain(DomainError::FinalReflectionNotEnglish { .. })
        ),
        "{swedish:?}"
    );
    as_student(
        &w,
        p,
        s,
        PortfolioCommand::SubmitFinalReflection {
            content: FinalContent::Written {
                text: texts::english(3000),
            },
        },
    )
    .await
    .unwrap();
    as_coordinator(
        &w,
        p,
        PortfolioCommand::ApproveFinalReflection { by: staff() },
    )
    .await
    .unwrap();

    as_student(&w, p, s, PortfolioCommand::Apply).await.unwrap();
    let certificate = CertificateId::new(Uuid::now_v7());
    let events = as_coordinator(
        &w,
        p,
        PortfolioCommand::ApproveApplication {
            certificate_id: certificate,
            by: staff(),
        },
    )
    .await
    .unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.event_type() == "CertificateApproved"),
        "{events:?}"
    );

    let (state, version) = w.handler.load_portfolio(p).await.unwrap();
    let portfolio = state.opened().unwrap();
    assert_eq!(portfolio.phase, Phase::Certified);
    assert_eq!(
        portfolio.certificate.as_ref().unwrap().certificate_id,
        certificate
    );
    // Every attempt is kept: the returned oral reflection has two.
    assert_eq!(portfolio.activity(activities[1]).unwrap().attempts.len(), 2);

    // The log holds exactly what happened, personal data in its own column tied to the student.
    let stored = w
        .handler
        .store()
        .read_stream(&p.stream_id(), 0)
        .await
        .unwrap();
    assert_eq!(stored.len() as i32, version);
    let opened = &stored[0];
    assert_eq!(opened.data_subject, Some(*s.as_uuid()));
    assert!(
        opened
            .personal
            .as_ref()
            .unwrap()
            .to_string()
            .contains("191212121212")
    );
    assert!(
        !opened.payload.to_string().contains("191212121212"),
        "personal data leaked into the payload"
    );
    // The opening words of every reflection text submitted above.
    let reflection_words = texts::english(12);
    assert!(
        stored
            .iter()
            .all(|e| !e.payload.to_string().contains(&reflection_words))
    );
    w.db.drop().await;
}

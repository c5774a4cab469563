//! Approved certificates recorded straight into the log, as the command handler records them (the
//! personal part split off and sealed), for the tests of what follows an approval: the export worker,
//! Ladok delivery and the registrar's views. The whole student flow behind an approval is tested
//! elsewhere; here a cohort of any size is one call.

use chrono::NaiveDate;
use cim::domain::PortfolioEvent;
use cim::domain::ids::{
    ActivityId, CatalogItemId, CertificateId, PortfolioId, ProgramCode, ProgramId, StaffId,
    StudentUid,
};
use cim::domain::portfolio::{
    CertificateApproved, CertificateHolder, CertifiedActivity, FinalFormat, ReflectionFormat,
};
use cim::domain::values::{IdentityNumber, PersonName};
use cim::log;
use cim::store::{ActorRole, EventStore, ExpectedVersion, Metadata};
use uuid::Uuid;

pub const NAMES: &[(&str, &str)] = &[
    ("Åsa", "Öberg"),
    ("Seán", "O'Brien"),
    ("Anna-Karin", "Smith & Jones"),
    ("Björn", "Ödmark, Jr."),
    ("李", "小龍"),
];

pub fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

/// A valid 12-digit personnummer for a birth date and serial.
pub fn identity_number(birth: NaiveDate, serial: u32) -> IdentityNumber {
    IdentityNumber::with_check_digit(&format!("{}{serial:03}", birth.format("%Y%m%d"))).unwrap()
}

/// The i-th certificate of a generated cohort (ids are unique per test run).
pub fn approval(i: usize) -> CertificateApproved {
    let (given, family) = NAMES[i % NAMES.len()];
    let activities = (0..3)
        .map(|k| {
            let start = date(2025, 1 + (k as u32) * 3, 1 + (i as u32 % 28));
            CertifiedActivity {
                activity_id: ActivityId::new(Uuid::now_v7()),
                item: CatalogItemId::parse(["tedx", "bip", "mentor"][k]).unwrap(),
                item_name: ["TEDx <KI>", "Blended \"BIP\"", "Mentor & buddy"][k].to_owned(),
                started_on: start,
                ended_on: start + chrono::Days::new(k as u64 * 20),
                reflection_format: ReflectionFormat::Written,
            }
        })
        .collect();
    CertificateApproved {
        certificate_id: CertificateId::new(Uuid::now_v7()),
        portfolio_id: PortfolioId::new(Uuid::now_v7()),
        program_id: ProgramId::new(Uuid::from_u128(0xA0)),
        program_code: ProgramCode::parse("dental").unwrap(),
        program_name: "Dental Program".to_owned(),
        student_uid: StudentUid::new(Uuid::now_v7()),
        application: 1,
        activities,
        final_format: FinalFormat::Oral,
        decided_on: date(2026, 1, 1 + (i as u32 % 28)),
        decided_by: StaffId::parse("coordinator-1@ki.se").unwrap(),
        personal: Some(CertificateHolder {
            identity_number: identity_number(
                date(1995, 1 + i as u32 % 12, 1 + i as u32 % 28),
                100 + i as u32,
            ),
            name: PersonName::parse(given, family).unwrap(),
        }),
    }
}

pub fn metadata() -> Metadata {
    Metadata {
        actor_id: "coordinator-1@ki.se".to_owned(),
        actor_role: ActorRole::Coordinator,
        correlation_id: Uuid::now_v7(),
        causation_id: None,
        command_id: Uuid::now_v7(),
    }
}

/// Appends a portfolio event to its stream as the command handler would (personal part split off).
pub async fn record(store: &EventStore, portfolio: PortfolioId, event: PortfolioEvent) {
    let (event_type, payload) = event.to_payload();
    let new = log::encode(event_type, 1, payload, Some(Uuid::now_v7()));
    store
        .append(
            &portfolio.stream_id(),
            ExpectedVersion::Any,
            &[new],
            &metadata(),
        )
        .await
        .unwrap();
}

pub async fn approve(store: &EventStore, i: usize) -> CertificateApproved {
    let a = approval(i);
    record(
        store,
        a.portfolio_id,
        PortfolioEvent::CertificateApproved(a.clone()),
    )
    .await;
    a
}

/// Revokes `a` as a coordinator would (on 1 March 2026, by `coordinator-2@ki.se`).
pub async fn revoke(store: &EventStore, a: &CertificateApproved) {
    let r = cim::domain::portfolio::CertificateRevoked {
        certificate_id: a.certificate_id,
        by: StaffId::parse("coordinator-2@ki.se").unwrap(),
        revoked_on: date(2026, 3, 1),
        personal: None,
    };
    record(store, a.portfolio_id, PortfolioEvent::CertificateRevoked(r)).await;
}

/// `n` approvals, readable by a tailing consumer when this returns.
pub async fn cohort(store: &EventStore, n: usize) -> Vec<CertificateApproved> {
    let mut out = Vec::new();
    for i in 0..n {
        out.push(approve(store, i).await);
    }
    super::settle(store).await;
    out
}

//! The schema tables against hand-made bodies: refusals by name, XML order and escaping.

use super::*;
use serde_json::json;

fn merit() -> Value {
    json!({
        "AnvandsITillgodoraknande": false, "AnvandsIUtfardatBevis": false, "Attesterad": false,
        "Benamning": "Certifikat <CIM>", "MeritViaEmrex": false, "TillatenIBevis": false,
        "TillatenIGemensamExamen": false, "Examinationsdatum": "2026-01-31",
    })
}

#[test]
fn a_field_the_schema_lacks_is_refused_by_name() {
    let mut body = merit();
    body["ExterntReferens"] = json!("x");
    assert_eq!(
        check(&ANNAN_MERIT, &body),
        Err(Violation::Unknown {
            ty: "AnnanMerit",
            field: "ExterntReferens".to_owned()
        })
    );
    let mut body = merit();
    body.as_object_mut().unwrap().remove("Benamning");
    assert!(matches!(
        check(&ANNAN_MERIT, &body),
        Err(Violation::Missing {
            field: "Benamning",
            ..
        })
    ));
    let mut body = merit();
    body["Examinationsdatum"] = json!("31/01/2026");
    assert!(matches!(
        check(&ANNAN_MERIT, &body),
        Err(Violation::WrongKind { .. })
    ));
}

#[test]
fn xml_follows_the_schema_order_and_escapes_text() {
    let xml = to_xml(ANNAN_MERIT_ROOT, &merit()).unwrap();
    let attested = xml.find("<rr:Attesterad>").unwrap();
    let name = xml
        .find("<rr:Benamning>Certifikat &lt;CIM&gt;</rr:Benamning>")
        .unwrap();
    let allowed = xml.find("<rr:TillatenIBevis>").unwrap();
    assert!(attested < name && name < allowed);
    assert!(xml.starts_with("<?xml") && xml.contains("<rr:AnnanMerit xmlns:dap="));
}

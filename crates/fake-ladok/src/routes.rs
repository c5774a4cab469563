//! The fake's requests: outages and faults first, then media types, then the default paths of the
//! operation table (`ladok::operations`), each body checked against Ladok's schema.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{FakeLadok, FakeState, Fault, ReceivedBody, StoredMerit};
use cim::export::worker::ladok::media;
use cim::export::worker::ladok::schema::{self, Root};
use std::sync::{Arc, Mutex};

pub(super) type Shared = Arc<Mutex<FakeState>>;

fn shared(state: &Shared) -> std::sync::MutexGuard<'_, FakeState> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

const KATALOGINFORMATION: &str = "application/vnd.ladok-kataloginformation+json";

/// `SenastSparad` of a write now, as Ladok's `xs:dateTime`.
pub(super) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Every request: an outage if one lasts, else the next fault if one is queued, then the media-type
/// checks, then the route.
pub(super) async fn handle(
    State(state): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let (outage, fault) = {
        let mut s = shared(&state);
        s.requests.push((method.to_string(), path.clone()));
        let countdown = s.outage_after;
        match countdown {
            Some((0, outage)) => {
                s.outage_after = None;
                s.begin(Some(outage));
            }
            Some((left, outage)) => s.outage_after = Some((left - 1, outage)),
            None => {}
        }
        // Queued faults wait for the end of an outage.
        let fault = if s.outage.is_none() {
            s.faults.pop_front()
        } else {
            None
        };
        (s.outage, fault)
    };
    if outage.is_some() {
        // Unreachable: the answer never leaves (the connection is dead, see `Connection`).
        return ladok_error(StatusCode::SERVICE_UNAVAILABLE, "commons.fel.grupp.okant");
    }
    match fault {
        Some(Fault::ServerError) => {
            return ladok_error(StatusCode::INTERNAL_SERVER_ERROR, "commons.fel.grupp.okant");
        }
        Some(Fault::Hang(how_long)) => {
            tokio::time::sleep(how_long).await;
            return ladok_error(StatusCode::INTERNAL_SERVER_ERROR, "commons.fel.grupp.okant");
        }
        Some(Fault::HtmlLoginPage) => {
            return (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                "<html><body><form action=\"/login\">Logga in</form></body></html>",
            )
                .into_response();
        }
        Some(Fault::LoseAnswer(how_long)) => {
            let answer = route(&state, &method, &uri, &headers, &body);
            tokio::time::sleep(how_long).await;
            return answer;
        }
        Some(Fault::Pass) | None => {}
    }
    route(&state, &method, &uri, &headers, &body)
}

fn route(state: &Shared, method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Response {
    let path = uri.path();
    let service = if path.starts_with("/studentinformation/") {
        media::STUDENTINFORMATION
    } else if path.starts_with("/resultat/") {
        media::RESULTAT
    } else if path.starts_with("/kataloginformation/") {
        KATALOGINFORMATION
    } else {
        return ladok_error(StatusCode::NOT_FOUND, "commons.fel.grupp.hittades_inte");
    };
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    if method == Method::OPTIONS {
        return options(&segments);
    }
    if headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) != Some(service) {
        return ladok_error(
            StatusCode::NOT_ACCEPTABLE,
            "commons.fel.grupp.felaktigt_varde",
        );
    }
    if !body.is_empty()
        && headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            != Some(service)
    {
        return ladok_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "commons.fel.grupp.felaktigt_varde",
        );
    }
    let query = |name: &str| -> Option<u32> {
        uri.query()?
            .split('&')
            .find_map(|pair| pair.strip_prefix(&format!("{name}="))?.parse().ok())
    };
    match (method.clone(), segments.as_slice()) {
        (Method::GET, ["kataloginformation", "anvandare", "autentiserad"]) => ok(
            service,
            json!({"Uid": Uuid::nil().to_string(), "Anvandarnamn": "cim-export-worker"}),
        ),
        (Method::GET, ["studentinformation", "student", "personnummer", pnr]) => {
            if pnr.len() != 12 || !pnr.bytes().all(|b| b.is_ascii_digit()) {
                return ladok_error(StatusCode::NOT_FOUND, "commons.fel.grupp.hittades_inte");
            }
            let s = shared(state);
            let uid = s
                .students
                .iter()
                .find(|(_, n)| n.as_str() == *pnr)
                .map(|(uid, _)| uid.clone())
                .unwrap_or_else(|| FakeLadok::student_uid(pnr));
            ok(service, student(&uid, Some(pnr)))
        }
        (Method::GET, ["studentinformation", "student", uid]) => {
            let s = shared(state);
            if s.strangers.contains(*uid) {
                return ladok_error(StatusCode::NOT_FOUND, "commons.fel.grupp.hittades_inte");
            }
            let uid = s.impostors.get(*uid).cloned().unwrap_or((*uid).to_owned());
            let number = s.students.get(&uid).cloned();
            ok(service, student(&uid, number.as_deref()))
        }
        (Method::GET, ["resultat", "annanmerit", "student", uid]) => {
            let page = query("page").unwrap_or(1).max(1) as usize;
            let asked = query("limit").unwrap_or(100).clamp(1, 1000) as usize;
            let limit = shared(state).page_cap.map_or(asked, |cap| asked.min(cap));
            list(state, service, uid, page, limit)
        }
        (Method::POST, ["resultat", "annanmerit", "student", uid, "skapa"]) => {
            match accept(state, schema::ANNAN_MERIT_ROOT, body) {
                Ok(merit) => create(state, service, uid, merit),
                Err(refusal) => *refusal,
            }
        }
        (Method::PUT, ["resultat", "annanmerit", "attestera"]) => {
            match accept(state, schema::ATTESTERA_ROOT, body) {
                Ok(request) => attest(state, service, &request),
                Err(refusal) => *refusal,
            }
        }
        (Method::PUT, ["resultat", "annanmerit", uid, "ratta"]) => {
            match accept(state, schema::RATTNING_ROOT, body) {
                Ok(correction) => correct(state, service, uid, &correction),
                Err(refusal) => *refusal,
            }
        }
        (Method::PUT, ["resultat", "annanmerit", uid, "makulera"]) => {
            match accept(state, schema::BESLUT_ROOT, body) {
                Ok(_) => withdraw(state, service, uid),
                Err(refusal) => *refusal,
            }
        }
        (Method::GET, ["resultat", "annanmerit", uid]) => {
            let s = shared(state);
            match s
                .merits
                .iter()
                .find(|m| !m.withdrawn && m.merit["Uid"] == *uid)
            {
                Some(stored) => ok(service, stored.merit.clone()),
                None => ladok_error(StatusCode::NOT_FOUND, "commons.fel.grupp.hittades_inte"),
            }
        }
        _ => ladok_error(StatusCode::NOT_FOUND, "commons.fel.grupp.hittades_inte"),
    }
}

/// `OPTIONS` on a write path: which methods it takes.
fn options(segments: &[&str]) -> Response {
    let allow = match segments {
        ["resultat", "annanmerit", "student", _, "skapa"] => "POST, OPTIONS",
        ["resultat", "annanmerit", "attestera"]
        | ["resultat", "annanmerit", _, "ratta"]
        | ["resultat", "annanmerit", _, "makulera"] => "PUT, OPTIONS",
        _ => return ladok_error(StatusCode::NOT_FOUND, "commons.fel.grupp.hittades_inte"),
    };
    (StatusCode::NO_CONTENT, [(header::ALLOW, allow)]).into_response()
}

/// A `si:Student` as Ladok answers it.
fn student(uid: &str, identity_number: Option<&str>) -> Value {
    let mut student = json!({
        "Uid": uid, "Avliden": false, "FelVidEtableringExternt": false,
    });
    if let Some(number) = identity_number {
        student["Personnummer"] = Value::String(number.to_owned());
    }
    student
}

/// The body parsed and checked against the schema, or Ladok's refusal.
fn accept(state: &Shared, root: Root, body: &[u8]) -> Result<Value, Box<Response>> {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return Err(Box::new(ladok_error(
            StatusCode::BAD_REQUEST,
            "commons.fel.grupp.felaktigt_varde",
        )));
    };
    if let Err(violation) = schema::check(root.ty, &value) {
        return Err(Box::new(ladok_error(
            StatusCode::BAD_REQUEST,
            violation.felgrupp(),
        )));
    }
    shared(state).received.push(ReceivedBody {
        root,
        body: value.clone(),
    });
    Ok(value)
}

/// One page of a student's standing merits, ordered by `Uid`, with a `link` array as Ladok's
/// lists have.
fn list(state: &Shared, service: &str, uid: &str, page: usize, limit: usize) -> Response {
    let s = shared(state);
    let mut merits: Vec<&Value> = s
        .merits
        .iter()
        .filter(|m| !m.withdrawn && m.student_uid == uid)
        .map(|m| &m.merit)
        .collect();
    merits.sort_by(|a, b| a["Uid"].as_str().cmp(&b["Uid"].as_str()));
    let page_items: Vec<&Value> = merits
        .into_iter()
        .skip((page - 1) * limit)
        .take(limit)
        .collect();
    let link = json!([{
        "rel": "self",
        "uri": format!("/resultat/annanmerit/student/{uid}?page={page}&limit={limit}"),
        "method": "GET",
        "mediaType": service,
    }]);
    ok(service, json!({ "link": link, "AnnanMerit": page_items }))
}

fn create(state: &Shared, service: &str, student_uid: &str, mut merit: Value) -> Response {
    if merit["Attesterad"] == true || merit["TillatenIBevis"] == true || merit.get("Uid").is_some()
    {
        // A new merit is attested by a decision of its own, and allowed in a degree certificate by
        // an administrator.
        return ladok_error(StatusCode::BAD_REQUEST, "commons.fel.grupp.felaktig_status");
    }
    let mut s = shared(state);
    let certificate = FakeLadok::certificate_of(&merit).unwrap_or_default();
    if let Some(felgrupp) = s.rule_errors.get(&certificate) {
        return ladok_error(StatusCode::BAD_REQUEST, &felgrupp.clone());
    }
    merit["Uid"] = Value::String(Uuid::new_v4().to_string());
    merit["SenastSparad"] = Value::String(now());
    s.merits.push(StoredMerit {
        student_uid: student_uid.to_owned(),
        merit: merit.clone(),
        withdrawn: false,
    });
    ok(service, merit)
}

fn attest(state: &Shared, service: &str, request: &Value) -> Response {
    let mut s = shared(state);
    let uids: Vec<&str> = request["AndraMeriterUIDer"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for uid in &uids {
        match s.merits.iter().find(|m| m.merit["Uid"] == *uid) {
            None => return ladok_error(StatusCode::NOT_FOUND, "commons.fel.grupp.hittades_inte"),
            Some(m) if m.withdrawn || m.merit["Attesterad"] == true => {
                return ladok_error(StatusCode::BAD_REQUEST, "commons.fel.grupp.felaktig_status");
            }
            Some(_) => {}
        }
    }
    for stored in s.merits.iter_mut() {
        if uids.iter().any(|uid| stored.merit["Uid"] == *uid) {
            stored.merit["Attesterad"] = Value::Bool(true);
            stored.merit["Beslut"] = request["Beslut"].clone();
            stored.merit["SenastSparad"] = Value::String(now());
        }
    }
    ok(service, request.clone())
}

fn correct(state: &Shared, service: &str, uid: &str, correction: &Value) -> Response {
    let mut s = shared(state);
    let Some(stored) = standing(&mut s, uid) else {
        return ladok_error(StatusCode::NOT_FOUND, "commons.fel.grupp.hittades_inte");
    };
    // The optimistic lock: a correction of another version than the stored one is refused.
    if let Some(expected) = correction.get("SenasteSenastSparad")
        && *expected != stored.merit["SenastSparad"]
    {
        return ladok_error(
            StatusCode::CONFLICT,
            "commons.fel.grupp.optimistisk_lasning",
        );
    }
    for (name, value) in correction.as_object().into_iter().flatten() {
        if !matches!(name.as_str(), "SenasteSenastSparad" | "Anteckning") {
            stored.merit[name] = value.clone();
        }
    }
    stored.merit["SenastSparad"] = Value::String(now());
    ok(service, stored.merit.clone())
}

fn withdraw(state: &Shared, service: &str, uid: &str) -> Response {
    let mut s = shared(state);
    let Some(stored) = standing(&mut s, uid) else {
        return ladok_error(StatusCode::NOT_FOUND, "commons.fel.grupp.hittades_inte");
    };
    stored.withdrawn = true;
    ok(service, Value::Null)
}

/// The merit with this UID, unless withdrawn.
fn standing<'a>(s: &'a mut FakeState, uid: &str) -> Option<&'a mut StoredMerit> {
    s.merits
        .iter_mut()
        .find(|m| !m.withdrawn && m.merit["Uid"] == uid)
}

fn ok(media_type: &str, body: Value) -> Response {
    let body = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, media_type.to_owned())],
        body,
    )
        .into_response()
}

/// A `LadokException` body: `Meddelande`, `Felgrupp`, `Detaljkod`, `FelUID`.
pub(super) fn ladok_error(status: StatusCode, felgrupp: &str) -> Response {
    let body = json!({
        "Meddelande": "Fake Ladok refused the request",
        "Felgrupp": felgrupp,
        "Detaljkod": "fake",
        "FelUID": Uuid::new_v4().to_string(),
    });
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

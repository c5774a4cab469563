//! The part of Ladok's published XML schemas (version 2.65.2, `shared/formats/ladok/`) that the
//! client sends or reads, as one table per type: element names, namespaces, order, value kinds and
//! which elements are required.
//!
//! One table serves three purposes, so they cannot drift apart:
//! - [`check`]: a JSON body uses only the schema's names with the right kinds and carries what the
//!   schema requires (the client checks what it sends, the fake Ladok refuses what breaks it);
//! - [`to_xml`]: the same body in Ladok's XML representation, in schema order with the schema's
//!   namespaces, which the tests validate with `xmllint --schema` against the published XSDs (so a
//!   wrong name, order or namespace in a table fails a test);
//! - the client reads answers through the same names (`AnnanMerit` of an `AndraMeriter`, never
//!   "the first array").
//!
//! Ladok's JSON representations (`+json`) use the XML element names without namespaces.

use serde_json::{Map, Value};

/// The namespaces of the seven schemas that matter here, with the prefixes Ladok's README uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ns {
    Dap,
    Base,
    Resultat,
    Attestering,
    Studentinformation,
}

impl Ns {
    fn prefix(self) -> &'static str {
        match self {
            Ns::Dap => "dap",
            Ns::Base => "base",
            Ns::Resultat => "rr",
            Ns::Attestering => "at",
            Ns::Studentinformation => "si",
        }
    }

    fn uri(self) -> &'static str {
        match self {
            Ns::Dap => "http://schemas.ladok.se/dap",
            Ns::Base => "http://schemas.ladok.se",
            Ns::Resultat => "http://schemas.ladok.se/resultat",
            Ns::Attestering => "http://schemas.ladok.se/attestering",
            Ns::Studentinformation => "http://schemas.ladok.se/studentinformation",
        }
    }

    const ALL: [Ns; 5] = [
        Ns::Dap,
        Ns::Base,
        Ns::Resultat,
        Ns::Attestering,
        Ns::Studentinformation,
    ];
}

/// What an element holds.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Text,
    Bool,
    /// `xs:int` and `xs:long`.
    Integer,
    /// `xs:date`: `YYYY-MM-DD`.
    Date,
    /// `xs:dateTime`.
    DateTime,
    /// A nested type.
    Object(&'static Type),
    /// `dap:RelationLink`: attributes only (`rel`, `uri`, `method`, `mediaType`).
    Link,
    /// `dap:DisabledLink`: attributes `rel`, `method`, and `reasons` (names; read, never sent, and
    /// not rendered as XML).
    DisabledLink,
}

/// One element of a type's `xs:sequence`.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub name: &'static str,
    pub ns: Ns,
    pub kind: Kind,
    /// `minOccurs` 1.
    pub required: bool,
    /// `maxOccurs="unbounded"`: a JSON array.
    pub repeated: bool,
}

/// A complex type, with the base types it extends (their elements come first).
#[derive(Debug)]
pub struct Type {
    pub name: &'static str,
    /// `dap:Base` only, or `base:BaseEntitet` (which extends `dap:Base`).
    pub entity: bool,
    pub fields: &'static [Field],
}

const fn opt(name: &'static str, ns: Ns, kind: Kind) -> Field {
    Field {
        name,
        ns,
        kind,
        required: false,
        repeated: false,
    }
}

const fn req(name: &'static str, ns: Ns, kind: Kind) -> Field {
    Field {
        name,
        ns,
        kind,
        required: true,
        repeated: false,
    }
}

const fn many(name: &'static str, ns: Ns, kind: Kind, required: bool) -> Field {
    Field {
        name,
        ns,
        kind,
        required,
        repeated: true,
    }
}

/// `dap:Base`.
const BASE: &[Field] = &[
    many("disabledLink", Ns::Dap, Kind::DisabledLink, false),
    many("link", Ns::Dap, Kind::Link, false),
    opt("LarosateID", Ns::Dap, Kind::Integer),
];

/// `base:BaseEntitet` (after [`BASE`]).
const ENTITY: &[Field] = &[
    opt("Uid", Ns::Base, Kind::Text),
    opt("SenastSparad", Ns::Base, Kind::DateTime),
    opt("SenastAndradAv", Ns::Base, Kind::Text),
];

use Kind::{Bool, Date, DateTime, Integer, Text};
use Ns::{Attestering as At, Resultat as Rr, Studentinformation as Si};

/// `at:Beslut`: a decision (attestation, withdrawal).
pub static BESLUT: Type = Type {
    name: "Beslut",
    entity: true,
    fields: &[
        opt("Anteckning", At, Text),
        opt("Beslutsdatum", At, Text),
        opt("BeslutsfattareNamn", At, Text),
        opt("Beslutsfattare", At, Text),
        opt("SenasteVersionForDetSomSkaAttesteras", At, Integer),
        opt("SenasteSenastSparad", At, Text),
    ],
};

/// `rr:AnnanMerit`: an other merit.
pub static ANNAN_MERIT: Type = Type {
    name: "AnnanMerit",
    entity: true,
    fields: &[
        opt("AlternativBenamning", Rr, Text),
        req("AnvandsITillgodoraknande", Rr, Bool),
        req("AnvandsIUtfardatBevis", Rr, Bool),
        req("Attesterad", Rr, Bool),
        req("Benamning", Rr, Text),
        opt("Beskrivning", Rr, Text),
        opt("Beslut", Rr, Kind::Object(&BESLUT)),
        opt("Betygsskala", Rr, Text),
        opt("Examinationsdatum", Rr, Date),
        opt("Examinator", Rr, Text),
        opt("ExternPartID", Rr, Integer),
        req("MeritViaEmrex", Rr, Bool),
        opt("Omfattning", Rr, Text),
        opt("Resultat", Rr, Text),
        opt("ResultatAlternativBenamning", Rr, Text),
        req("TillatenIBevis", Rr, Bool),
        req("TillatenIGemensamExamen", Rr, Bool),
        opt("Ursprung", Rr, Text),
        opt("UrsprungAlternativBenamning", Rr, Text),
        opt("Utbildningskod", Rr, Text),
    ],
};

/// `rr:AndraMeriter`: a list of other merits.
pub static ANDRA_MERITER: Type = Type {
    name: "AndraMeriter",
    entity: false,
    fields: &[many("AnnanMerit", Rr, Kind::Object(&ANNAN_MERIT), false)],
};

/// `rr:AnnanMeritRattning`: a correction of an other merit.
pub static ANNAN_MERIT_RATTNING: Type = Type {
    name: "AnnanMeritRattning",
    entity: true,
    fields: &[
        opt("AlternativBenamning", Rr, Text),
        opt("Anteckning", Rr, Text),
        req("Benamning", Rr, Text),
        opt("Beskrivning", Rr, Text),
        opt("Betygsskala", Rr, Text),
        opt("Examinationsdatum", Rr, Date),
        opt("Examinator", Rr, Text),
        opt("ExternPartID", Rr, Integer),
        opt("Omfattning", Rr, Text),
        opt("Resultat", Rr, Text),
        opt("ResultatAlternativBenamning", Rr, Text),
        opt("SenasteSenastSparad", Rr, DateTime),
        opt("Ursprung", Rr, Text),
        opt("UrsprungAlternativBenamning", Rr, Text),
        opt("Utbildningskod", Rr, Text),
    ],
};

/// `rr:AttesteraAndraMeriter`: attest other merits, with the decision.
pub static ATTESTERA_ANDRA_MERITER: Type = Type {
    name: "AttesteraAndraMeriter",
    entity: true,
    fields: &[
        many("AndraMeriterUIDer", Rr, Text, true),
        req("Beslut", Rr, Kind::Object(&BESLUT)),
    ],
};

/// `si:Student`.
pub static STUDENT: Type = Type {
    name: "Student",
    entity: true,
    fields: &[
        req("Avliden", Si, Bool),
        opt("Efternamn", Si, Text),
        opt("ExterntUID", Si, Text),
        req("FelVidEtableringExternt", Si, Bool),
        opt("FolkbokforingsbevakningTillOchMed", Si, Date),
        opt("Fodelsedata", Si, Text),
        opt("Fornamn", Si, Text),
        opt("KonID", Si, Integer),
        opt("Personnummer", Si, Text),
    ],
};

/// A root element: the type and the namespace of its global element (`rr:AnnanMerit`, `at:Beslut`…).
#[derive(Debug, Clone, Copy)]
pub struct Root {
    pub ty: &'static Type,
    pub ns: Ns,
}

pub const ANNAN_MERIT_ROOT: Root = Root {
    ty: &ANNAN_MERIT,
    ns: Rr,
};
pub const ANDRA_MERITER_ROOT: Root = Root {
    ty: &ANDRA_MERITER,
    ns: Rr,
};
pub const RATTNING_ROOT: Root = Root {
    ty: &ANNAN_MERIT_RATTNING,
    ns: Rr,
};
pub const ATTESTERA_ROOT: Root = Root {
    ty: &ATTESTERA_ANDRA_MERITER,
    ns: Rr,
};
pub const BESLUT_ROOT: Root = Root {
    ty: &BESLUT,
    ns: At,
};
pub const STUDENT_ROOT: Root = Root {
    ty: &STUDENT,
    ns: Si,
};

/// Which XSD file declares a root's namespace (for `xmllint --schema`).
pub fn schema_file(root: Root) -> &'static str {
    match root.ns {
        Ns::Resultat => "schemas.ladok.se-resultat.xsd",
        Ns::Attestering => "schemas.ladok.se-at.xsd",
        Ns::Studentinformation => "schemas.ladok.se-studentinformation.xsd",
        Ns::Base => "schemas.ladok.se.xsd",
        Ns::Dap => "schemas.ladok.se-dap.xsd",
    }
}

/// How a JSON body breaks the schema. Names only, never values (a value may be personal).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    #[error("{ty} has no element {field}")]
    Unknown { ty: &'static str, field: String },
    #[error("{ty} requires {field}")]
    Missing {
        ty: &'static str,
        field: &'static str,
    },
    #[error("{ty}.{field} has the wrong kind of value")]
    WrongKind {
        ty: &'static str,
        field: &'static str,
    },
    #[error("a {ty} must be a JSON object")]
    NotAnObject { ty: &'static str },
}

impl Violation {
    /// Ladok's error group for it, as the fake answers.
    pub fn felgrupp(&self) -> &'static str {
        match self {
            Violation::Missing { .. } => "commons.fel.grupp.obligatoriskt_varde_saknas",
            _ => "commons.fel.grupp.felaktigt_varde",
        }
    }
}

fn fields_of(ty: &'static Type) -> impl Iterator<Item = &'static Field> {
    let entity: &'static [Field] = if ty.entity { ENTITY } else { &[] };
    BASE.iter().chain(entity).chain(ty.fields)
}

/// Whether `value` is a `ty` as the schema has it: known names only, required ones present, each of
/// the right kind. `null` counts as absent (Ladok's JSON omits or nulls optional values).
pub fn check(ty: &'static Type, value: &Value) -> Result<(), Violation> {
    let object = value
        .as_object()
        .ok_or(Violation::NotAnObject { ty: ty.name })?;
    for name in object.keys() {
        if !fields_of(ty).any(|f| f.name == name) {
            return Err(Violation::Unknown {
                ty: ty.name,
                field: name.clone(),
            });
        }
    }
    for field in fields_of(ty) {
        match object.get(field.name) {
            None | Some(Value::Null) if field.required => {
                return Err(Violation::Missing {
                    ty: ty.name,
                    field: field.name,
                });
            }
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) if field.repeated => {
                if field.required && items.is_empty() {
                    return Err(Violation::Missing {
                        ty: ty.name,
                        field: field.name,
                    });
                }
                for item in items {
                    check_kind(ty, field, item)?;
                }
            }
            Some(_) if field.repeated => {
                return Err(Violation::WrongKind {
                    ty: ty.name,
                    field: field.name,
                });
            }
            Some(one) => check_kind(ty, field, one)?,
        }
    }
    Ok(())
}

fn check_kind(ty: &'static Type, field: &Field, value: &Value) -> Result<(), Violation> {
    let ok = match field.kind {
        Kind::Text | Kind::DateTime => value.is_string(),
        Kind::Bool => value.is_boolean(),
        Kind::Integer => value.is_i64(),
        Kind::Date => value
            .as_str()
            .is_some_and(|s| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok()),
        Kind::Link => value
            .as_object()
            .is_some_and(|o| o.keys().all(|k| LINK_ATTRIBUTES.contains(&k.as_str()))),
        Kind::DisabledLink => value.as_object().is_some_and(|o| {
            o.keys()
                .all(|k| ["rel", "method", "reasons"].contains(&k.as_str()))
        }),
        Kind::Object(inner) => return check(inner, value),
    };
    if ok {
        Ok(())
    } else {
        Err(Violation::WrongKind {
            ty: ty.name,
            field: field.name,
        })
    }
}

const LINK_ATTRIBUTES: [&str; 4] = ["rel", "uri", "method", "mediaType"];

/// The body as Ladok's XML representation of `root`, after [`check`].
pub fn to_xml(root: Root, value: &Value) -> Result<String, Violation> {
    check(root.ty, value)?;
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let namespaces: String = Ns::ALL
        .iter()
        .map(|ns| format!(" xmlns:{}=\"{}\"", ns.prefix(), ns.uri()))
        .collect();
    let tag = format!("{}:{}", root.ns.prefix(), root.ty.name);
    out.push_str(&format!("<{tag}{namespaces}>"));
    write_fields(&mut out, root.ty, value.as_object().expect("checked"));
    out.push_str(&format!("</{tag}>\n"));
    Ok(out)
}

fn write_fields(out: &mut String, ty: &'static Type, object: &Map<String, Value>) {
    for field in fields_of(ty) {
        let values: Vec<&Value> = match object.get(field.name) {
            None | Some(Value::Null) => continue,
            Some(Value::Array(items)) if field.repeated => items.iter().collect(),
            Some(one) => vec![one],
        };
        let tag = format!("{}:{}", field.ns.prefix(), field.name);
        for value in values {
            match (field.kind, value) {
                (Kind::Object(inner), Value::Object(fields)) => {
                    out.push_str(&format!("<{tag}>"));
                    write_fields(out, inner, fields);
                    out.push_str(&format!("</{tag}>"));
                }
                (Kind::Link | Kind::DisabledLink, Value::Object(attributes)) => {
                    out.push_str(&format!("<{tag}"));
                    for name in LINK_ATTRIBUTES {
                        if let Some(v) = attributes.get(name).and_then(Value::as_str) {
                            out.push_str(&format!(" {name}=\"{}\"", escape(v)));
                        }
                    }
                    out.push_str("/>");
                }
                (_, Value::String(s)) => out.push_str(&format!("<{tag}>{}</{tag}>", escape(s))),
                (_, other) => out.push_str(&format!("<{tag}>{other}</{tag}>")),
            }
        }
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests;

//! Baked SVG badges (OB 3.0 "Baking"): the credential rides in an `<openbadges:credential>`
//! element, as a VC-JWT in its `verify` attribute or as JSON in its CDATA content.

/// A credential found in a baked badge, as text still to verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BakedCredential<'a> {
    /// A VC-JWT (compact JWS), for [`super::verify_jwt`].
    Jwt(&'a str),
    /// A JSON credential with an embedded proof, for [`super::verify_data_integrity`] once parsed.
    Json(&'a str),
}

const ELEMENT: &str = "<openbadges:credential";

/// The credential baked into an SVG, if there is one. A plain text scan rather than an XML parser:
/// the element's shape is fixed by the baking rules, and what it yields is verified anyway, so a
/// badge that fools the scan can only fail verification.
pub fn credential_from_svg(svg: &str) -> Option<BakedCredential<'_>> {
    let start = svg.find(ELEMENT)? + ELEMENT.len();
    let rest = &svg[start..];
    let tag_end = rest.find('>')?;
    let (attributes, after_tag) = (&rest[..tag_end], &rest[tag_end + 1..]);
    if let Some(jwt) = attribute(attributes, "verify") {
        return Some(BakedCredential::Jwt(jwt.trim()));
    }
    if attributes.ends_with('/') {
        return None;
    }
    let content = &after_tag[..after_tag.find("</openbadges:credential>")?];
    let json = content
        .trim()
        .strip_prefix("<![CDATA[")?
        .strip_suffix("]]>")?;
    Some(BakedCredential::Json(json.trim()))
}

/// The value of `name="…"` (or `name='…'`) among a tag's attributes.
fn attribute<'a>(attributes: &'a str, name: &str) -> Option<&'a str> {
    let mut search = attributes;
    while let Some(at) = search.find(name) {
        let preceded_by_space = search[..at].ends_with(|c: char| c.is_ascii_whitespace());
        let after = search[at + name.len()..].trim_start();
        search = &search[at + name.len()..];
        let Some(after_equals) = after.strip_prefix('=').map(str::trim_start) else {
            continue;
        };
        let Some(quote) = after_equals
            .chars()
            .next()
            .filter(|c| *c == '"' || *c == '\'')
        else {
            continue;
        };
        if !preceded_by_space {
            continue;
        }
        let value = &after_equals[1..];
        return value.find(quote).map(|end| &value[..end]);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_jwt_in_the_verify_attribute() {
        let svg = r#"<svg><openbadges:credential xmlns:x="y" verify='eyJ.a.b'/><g/></svg>"#;
        assert_eq!(
            credential_from_svg(svg),
            Some(BakedCredential::Jwt("eyJ.a.b"))
        );
    }

    #[test]
    fn finds_json_in_cdata() {
        let svg = "<svg><openbadges:credential>\n<![CDATA[ {\"id\": 1} ]]>\n</openbadges:credential></svg>";
        assert_eq!(
            credential_from_svg(svg),
            Some(BakedCredential::Json("{\"id\": 1}"))
        );
    }

    #[test]
    fn a_badge_without_a_credential_has_none() {
        assert_eq!(credential_from_svg("<svg><g/></svg>"), None);
        assert_eq!(
            credential_from_svg("<svg><openbadges:credential/></svg>"),
            None
        );
        let unverified = r#"<svg><openbadges:credential noverify="x"/></svg>"#;
        assert_eq!(credential_from_svg(unverified), None);
    }
}

//! Console URLs: query values and the places a redirect may go back to.

/// `s` encoded for a query value.
pub fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Where a redirect back may go: a path of the console on this host, else the console's start.
/// (An absolute URL or `//host` would make the sign-in an open redirect.)
pub fn local(back: Option<&str>) -> String {
    match back {
        Some(b)
            if (b == "/console" || b.starts_with("/console/") || b.starts_with("/console?"))
                && !b.contains('\\')
                && !b.chars().any(char::is_control) =>
        {
            b.to_owned()
        }
        _ => "/console".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_console_paths_are_gone_back_to() {
        assert_eq!(super::local(Some("/console/programs")), "/console/programs");
        assert_eq!(super::local(Some("https://evil.example/")), "/console");
        assert_eq!(super::local(Some("//evil.example")), "/console");
        assert_eq!(super::local(Some("/consolex")), "/console");
        assert_eq!(
            super::local(Some("/console/x\r\nSet-Cookie: a=b")),
            "/console"
        );
        assert_eq!(super::local(None), "/console");
    }
}

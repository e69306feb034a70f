//! Domain names as the publisher compares them: lowercase, without the trailing dot.

/// `name` lowercased without its trailing dot.
pub fn normal(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// Whether `name` is `domain` or below it (both normal).
pub fn within(name: &str, domain: &str) -> bool {
    domain.is_empty()
        || name == domain
        || (name.len() > domain.len()
            && name.ends_with(domain)
            && name.as_bytes()[name.len() - domain.len() - 1] == b'.')
}

/// Why `name` (normal) is not a host name a record can carry, if it is not.
pub fn invalid(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("the name is empty".into());
    }
    if name.len() > 253 {
        return Some(format!("{name:?} is longer than 253 characters"));
    }
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Some(format!(
                "{name:?} has a label that is empty or longer than 63 characters"
            ));
        }
        let ok = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
        if !label.chars().all(ok) || label.starts_with('-') || label.ends_with('-') {
            return Some(format!(
                "{name:?} has a label with characters other than letters, digits and inner hyphens"
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_compare_without_case_or_trailing_dot() {
        assert_eq!(normal("Web.Example.COM."), "web.example.com");
        assert!(within("web.example.com", "example.com"));
        assert!(within("example.com", "example.com"));
        assert!(!within("badexample.com", "example.com"));
        assert!(within("anything.org", ""));
    }

    #[test]
    fn bad_names_are_named() {
        assert!(invalid("web.example.com").is_none());
        assert!(invalid("web..example.com").is_some());
        assert!(invalid("-web.example.com").is_some());
        assert!(invalid("we b.example.com").is_some());
        assert!(invalid(&format!("{}.com", "a".repeat(64))).is_some());
    }
}

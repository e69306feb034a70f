//! ExternalDNS's TXT registry (the format of ExternalDNS 0.18 and later): the owner of the
//! records `<type>` at `<name>` is written in a TXT record at `<type>-<name>` (`a-web.example.com`
//! for `web.example.com A`) holding `heritage=external-dns,external-dns/owner=<owner>,
//! external-dns/resource=<kind>/<namespace>/<name>`. A zone ExternalDNS already manages is
//! shared safely: each side only changes names registered to its own owner ID.

use crate::RType;

const HERITAGE: &str = "heritage=external-dns";
const OWNER: &str = "external-dns/owner=";
const RESOURCE: &str = "external-dns/resource=";

/// The registry record's name for `name`'s records of type `t`.
pub fn txt_name(t: RType, name: &str) -> String {
    format!("{}-{name}", t.as_str().to_ascii_lowercase())
}

/// The record type and name a registry record's name stands for.
pub fn registered(txt_name: &str) -> Option<(RType, &str)> {
    if let Some(n) = txt_name.strip_prefix("aaaa-") {
        return Some((RType::Aaaa, n));
    }
    txt_name.strip_prefix("a-").map(|n| (RType::A, n))
}

/// The registry record's text.
pub fn value(owner: &str, resource: &str) -> String {
    format!("{HERITAGE},{OWNER}{owner},{RESOURCE}{resource}")
}

/// What a registry record says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Label {
    /// The owner ID.
    pub owner: String,
    /// The Kubernetes object the records are for.
    pub resource: String,
}

/// A registry record's text read, `None` when it is not one (no ExternalDNS heritage).
pub fn parse(text: &str) -> Option<Label> {
    let text = text.trim().trim_matches('"');
    let mut fields = text.split(',');
    if fields.next()? != HERITAGE {
        return None;
    }
    let mut label = Label {
        owner: String::new(),
        resource: String::new(),
    };
    for f in fields {
        if let Some(o) = f.strip_prefix(OWNER) {
            label.owner = o.to_string();
        } else if let Some(r) = f.strip_prefix(RESOURCE) {
            label.resource = r.to_string();
        }
    }
    Some(label)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_format_is_externaldns_own() {
        assert_eq!(txt_name(RType::A, "web.example.com"), "a-web.example.com");
        assert_eq!(txt_name(RType::Aaaa, "web.example.com"), "aaaa-web.example.com");
        assert_eq!(
            registered("aaaa-web.example.com"),
            Some((RType::Aaaa, "web.example.com"))
        );
        assert_eq!(
            registered("a-web.example.com"),
            Some((RType::A, "web.example.com"))
        );
        assert_eq!(registered("web.example.com"), None);
        let v = value("subsea", "service/default/web");
        assert_eq!(
            v,
            "heritage=external-dns,external-dns/owner=subsea,external-dns/resource=service/default/web"
        );
        assert_eq!(
            parse(&v),
            Some(Label {
                owner: "subsea".into(),
                resource: "service/default/web".into()
            })
        );
    }

    #[test]
    fn other_txt_records_are_not_registry_records() {
        assert_eq!(parse("v=spf1 -all"), None);
        assert_eq!(parse(""), None);
        let quoted = parse("\"heritage=external-dns,external-dns/owner=team-a\"").expect("registry");
        assert_eq!(quoted.owner, "team-a");
    }
}

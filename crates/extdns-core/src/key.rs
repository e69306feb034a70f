//! The TSIG key, read from a BIND key file as `tsig-keygen` writes it:
//!
//! ```text
//! key "subsea" {
//!     algorithm hmac-sha256;
//!     secret "base64…";
//! };
//! ```
//!
//! The same file goes into BIND's configuration (`include`), so both sides hold one copy.

use base64::Engine;

/// The MAC algorithms accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    /// `hmac-sha256` (what `tsig-keygen` makes by default).
    HmacSha256,
    /// `hmac-sha384`.
    HmacSha384,
    /// `hmac-sha512`.
    HmacSha512,
}

/// A TSIG key. `Debug` leaves the secret out.
#[derive(Clone, PartialEq, Eq)]
pub struct Key {
    /// The key's name, as the server knows it.
    pub name: String,
    /// Its algorithm.
    pub algorithm: Algorithm,
    /// The shared secret.
    pub secret: Vec<u8>,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key")
            .field("name", &self.name)
            .field("algorithm", &self.algorithm)
            .field("secret", &format_args!("<{} bytes>", self.secret.len()))
            .finish()
    }
}

/// Why a key file cannot be used.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}; expected a BIND key file as `tsig-keygen -a hmac-sha256 <name>` writes it")]
pub struct Invalid(String);

fn tokens(text: &str) -> Result<Vec<String>, Invalid> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {}
            '#' => while chars.next_if(|c| *c != '\n').is_some() {},
            '/' if chars.peek() == Some(&'/') => while chars.next_if(|c| *c != '\n').is_some() {},
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut prev = ' ';
                loop {
                    match chars.next() {
                        Some('/') if prev == '*' => break,
                        Some(c) => prev = c,
                        None => return Err(Invalid("a /* comment is not closed".into())),
                    }
                }
            }
            '{' | '}' | ';' => out.push(c.to_string()),
            '"' => {
                let mut s = String::from("\"");
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some(c) => s.push(c),
                        None => return Err(Invalid("a quoted string is not closed".into())),
                    }
                }
                out.push(s);
            }
            c => {
                let mut s = c.to_string();
                while let Some(c) = chars.next_if(|c| !c.is_whitespace() && !"{};\"".contains(*c)) {
                    s.push(c);
                }
                out.push(s);
            }
        }
    }
    Ok(out)
}

fn unquote(t: &str) -> &str {
    t.strip_prefix('"').unwrap_or(t)
}

/// The first key statement of a key file.
pub fn parse(text: &str) -> Result<Key, Invalid> {
    let t = tokens(text)?;
    let at = t
        .iter()
        .position(|w| w == "key")
        .ok_or_else(|| Invalid("no `key` statement".into()))?;
    let name = t
        .get(at + 1)
        .map(|n| unquote(n).trim_end_matches('.').to_string())
        .filter(|n| !n.is_empty() && n != "{")
        .ok_or_else(|| Invalid("the key statement has no name".into()))?;
    if t.get(at + 2).map(String::as_str) != Some("{") {
        return Err(Invalid(format!("`key {name}` is not followed by `{{`")));
    }
    let (mut algorithm, mut secret) = (None, None);
    let mut i = at + 3;
    loop {
        match t.get(i).map(String::as_str) {
            Some("}") => break,
            None => return Err(Invalid(format!("`key {name} {{` is not closed"))),
            Some(word) => {
                let value = t
                    .get(i + 1)
                    .filter(|v| *v != ";" && *v != "}")
                    .ok_or_else(|| Invalid(format!("`{word}` has no value")))?;
                match word {
                    "algorithm" => algorithm = Some(unquote(value).to_ascii_lowercase()),
                    "secret" => secret = Some(unquote(value).to_string()),
                    _ => {}
                }
                i += 2;
                if t.get(i).map(String::as_str) == Some(";") {
                    i += 1;
                }
            }
        }
    }
    let algorithm = match algorithm.as_deref() {
        Some("hmac-sha256") => Algorithm::HmacSha256,
        Some("hmac-sha384") => Algorithm::HmacSha384,
        Some("hmac-sha512") => Algorithm::HmacSha512,
        Some(other) => {
            return Err(Invalid(format!(
                "algorithm {other:?} is not supported (use hmac-sha256, hmac-sha384 or hmac-sha512)"
            )));
        }
        None => return Err(Invalid(format!("key {name:?} has no algorithm"))),
    };
    let text = secret.ok_or_else(|| Invalid(format!("key {name:?} has no secret")))?;
    let secret = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|_| Invalid(format!("the secret of key {name:?} is not base64")))?;
    if secret.is_empty() {
        return Err(Invalid(format!("the secret of key {name:?} is empty")));
    }
    Ok(Key {
        name,
        algorithm,
        secret,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsig_keygen_output_is_read() {
        let text = "key \"subsea-key\" {\n\talgorithm hmac-sha256;\n\tsecret \"c2VjcmV0LXNlY3JldC1zZWNyZXQ=\";\n};\n";
        let k = parse(text).expect("key");
        assert_eq!(k.name, "subsea-key");
        assert_eq!(k.algorithm, Algorithm::HmacSha256);
        assert_eq!(k.secret, b"secret-secret-secret");
        let dbg = format!("{k:?}");
        assert!(
            !dbg.contains("c2VjcmV0") && !dbg.contains("secret-secret"),
            "{dbg}"
        );
    }

    #[test]
    fn comments_and_layout_do_not_matter() {
        let text = "# made by hand\nkey publisher. { /* note */ secret \"AAEC\"; // trailing\n algorithm HMAC-SHA512; };";
        let k = parse(text).expect("key");
        assert_eq!(
            (k.name.as_str(), k.algorithm, k.secret.as_slice()),
            ("publisher", Algorithm::HmacSha512, &[0u8, 1, 2][..])
        );
    }

    #[test]
    fn broken_files_are_refused_with_the_reason() {
        let cases = [
            ("", "no `key` statement"),
            ("key \"k\" { algorithm hmac-md5; secret \"AAEC\"; };", "hmac-md5"),
            ("key \"k\" { algorithm hmac-sha256; };", "no secret"),
            (
                "key \"k\" { algorithm hmac-sha256; secret \"***\"; };",
                "not base64",
            ),
            (
                "key \"k\" { algorithm hmac-sha256; secret \"AAEC\";",
                "not closed",
            ),
            ("key \"k\" { secret \"AAEC", "quoted string is not closed"),
            ("key { }", "no name"),
        ];
        for (text, want) in cases {
            let e = parse(text).expect_err(text).to_string();
            assert!(e.contains(want), "{text:?}: {e}");
            assert!(e.contains("tsig-keygen"), "{e}");
        }
    }
}

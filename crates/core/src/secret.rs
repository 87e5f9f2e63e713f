//! Values that must never be printed: a wrapper whose `Debug` and `Display`
//! say `[redacted]`, and a database URL that prints without its password.

use std::fmt;

/// A secret string (tokens, keys). Read it with [`Secret::expose`] at the
/// one place that needs it; everything else sees `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    #[must_use]
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The secret itself. Call only where it is sent or compared.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// A database URL whose `Debug`/`Display` hide the password (in the
/// authority and in a `password=` query parameter).
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(Secret);

impl DatabaseUrl {
    /// Wraps a URL.
    #[must_use]
    pub fn new(url: impl Into<String>) -> Self {
        Self(Secret::new(url))
    }

    /// The full URL, password included, for the connection pool only.
    #[must_use]
    pub fn expose(&self) -> &str {
        self.0.expose()
    }

    /// The URL with any password replaced by `[redacted]`.
    #[must_use]
    pub fn redacted(&self) -> String {
        redact_url(self.0.expose())
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({})", self.redacted())
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// Replaces the password of `scheme://user:password@host/...` and any
/// `password=` query parameter with `[redacted]`.
#[must_use]
pub fn redact_url(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(scheme_end) = out.find("://") {
        let rest_start = scheme_end + 3;
        let authority_end = out[rest_start..]
            .find(['/', '?'])
            .map_or(out.len(), |i| rest_start + i);
        if let Some(at) = out[rest_start..authority_end].rfind('@') {
            let userinfo = &out[rest_start..rest_start + at];
            if let Some(colon) = userinfo.find(':') {
                let start = rest_start + colon + 1;
                out.replace_range(start..rest_start + at, "[redacted]");
            }
        }
    }
    if let Some(q) = out.find('?') {
        let (head, query) = out.split_at(q + 1);
        let parts: Vec<String> = query
            .split('&')
            .map(|p| match p.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=[redacted]"),
                _ => p.to_owned(),
            })
            .collect();
        out = format!("{head}{}", parts.join("&"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_print() {
        let u = DatabaseUrl::new("postgres://app:s3cr3t@db:5432/app?sslmode=require&password=x2");
        for shown in [format!("{u}"), format!("{u:?}"), u.redacted()] {
            assert!(!shown.contains("s3cr3t"), "{shown}");
            assert!(!shown.contains("x2"), "{shown}");
            assert!(shown.contains("app:[redacted]@db:5432"), "{shown}");
        }
        assert_eq!(
            redact_url("postgres://localhost/test"),
            "postgres://localhost/test"
        );
        assert_eq!(format!("{:?}", Secret::new("tok")), "[redacted]");
    }
}

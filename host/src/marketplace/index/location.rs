//! Where an index is: a directory, or an `https://` (or loopback `http://`) URL.

use super::*;

/// Where an index is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A directory holding `index.json`.
    Dir(PathBuf),
    /// A URL whose `index.json` is the index (the URL of the directory, ending in `/`).
    Url(http::Uri),
}

impl Location {
    /// `https://…` (or `http://` on loopback) is a URL; anything else a directory.
    pub fn parse(s: &str) -> Result<Location, IndexError> {
        let bad = |reason: String| IndexError::Location {
            location: redact(s),
            reason,
        };
        if !(s.starts_with("http://") || s.starts_with("https://")) {
            if s.contains("://") {
                return Err(bad(
                    "only directories and https:// (or loopback http://) URLs are supported".into(),
                ));
            }
            return Ok(Location::Dir(PathBuf::from(s)));
        }
        let mut text = s.to_string();
        if let Some(stripped) = text.strip_suffix(INDEX_FILE) {
            text = stripped.to_string();
        }
        if !text.ends_with('/') {
            text.push('/');
        }
        let uri: http::Uri = text
            .parse()
            .map_err(|e| bad(format!("not a valid URL ({e})")))?;
        if uri.query().is_some() {
            return Err(bad("an index URL cannot have a query".into()));
        }
        fetch::check_scheme(&uri).map_err(|e| bad(e.to_string()))?;
        Ok(Location::Url(uri))
    }

    /// The `index.json` this location means.
    pub(super) fn index_what(&self) -> String {
        match self {
            Location::Dir(d) => d.join(INDEX_FILE).display().to_string(),
            Location::Url(u) => format!("{u}{INDEX_FILE}"),
        }
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Dir(d) => write!(f, "{}", d.display()),
            Location::Url(u) => write!(f, "{u}"),
        }
    }
}

/// `s` without a URL's user info (which may hold a password).
fn redact(s: &str) -> String {
    match (s.find("://"), s.find('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://…@{}", &s[..scheme], &s[at + 1..])
        }
        _ => s.to_string(),
    }
}

//! Names of API resources: they appear in paths, run keys and lock files, so they are kept to
//! a safe alphabet.

use http::StatusCode;

use super::error::ApiError;

/// Longest name accepted.
const MAX: usize = 63;

/// [`check_name`]'s rule as a regular expression, for the API's schemas.
pub const NAME_PATTERN: &str = "^[a-z0-9][a-z0-9_-]{0,62}$";

/// `name` must be 1–63 of `a-z`, `0-9`, `-` and `_`, starting with a letter or digit.
pub fn check_name(what: &str, name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= MAX
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "{what} name `{}` is not valid: use 1 to {MAX} lowercase letters, digits, `-` or \
                 `_`, starting with a letter or digit",
                name.chars().take(80).collect::<String>()
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern() -> regex::Regex {
        regex::Regex::new(NAME_PATTERN).unwrap()
    }

    #[test]
    fn names_are_kept_to_a_safe_alphabet() {
        for ok in ["acme", "users-to-file", "a1_b", "0x"] {
            assert!(check_name("t", ok).is_ok(), "{ok}");
            assert!(pattern().is_match(ok), "{ok}");
        }
        for bad in [
            "",
            "Acme",
            "-a",
            "a/b",
            "a.b",
            "../x",
            "a b",
            &"x".repeat(64),
        ] {
            assert!(check_name("t", bad).is_err(), "{bad}");
            assert!(!pattern().is_match(bad), "{bad}");
        }
    }
}

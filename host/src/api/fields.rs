//! How body fields are read where serde's defaults differ from what the schema says: whole
//! numbers as JSON Schema means them (`2.0` is the integer 2; serde reads it only into a float),
//! and optional fields that may be left out but are not nullable (serde reads `null` as absent).

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use serde_json::Number;

/// An optional field that, when present, is a `T` and not `null`.
pub fn not_null<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

/// An optional whole number of type `T`: `2` and `2.0` alike; `2.5`, negatives and numbers
/// past `T` are refused by name.
pub fn whole<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<u64>,
{
    let Some(n) = Option::<Number>::deserialize(d)? else {
        return Ok(None);
    };
    let whole = match n.as_u64() {
        Some(w) => Some(w),
        None => n
            .as_f64()
            .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f < u64::MAX as f64)
            .map(|f| f as u64),
    };
    whole
        .and_then(|w| T::try_from(w).ok())
        .map(Some)
        .ok_or_else(|| D::Error::custom(format!("`{n}` is not a whole number in range")))
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Deserialize)]
    struct Body {
        #[serde(default, deserialize_with = "super::whole")]
        n: Option<u32>,
        #[serde(default, deserialize_with = "super::not_null")]
        s: Option<String>,
    }

    fn n(json: &str) -> Result<Option<u32>, String> {
        serde_json::from_str::<Body>(json)
            .map(|b| b.n)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn integral_floats_are_whole_numbers_and_the_rest_are_refused_by_name() {
        assert_eq!(n("{}"), Ok(None));
        assert_eq!(n(r#"{"n": null}"#), Ok(None));
        assert_eq!(n(r#"{"n": 2}"#), Ok(Some(2)));
        assert_eq!(n(r#"{"n": 2.0}"#), Ok(Some(2)));
        assert_eq!(n(r#"{"n": 4294967295}"#), Ok(Some(u32::MAX)));
        for bad in ["2.5", "-1", "-1.0", "4294967296", "1e300"] {
            let e = n(&format!(r#"{{"n": {bad}}}"#)).unwrap_err();
            assert!(e.contains("not a whole number in range"), "{bad}: {e}");
        }
        assert!(n(r#"{"n": "2"}"#).is_err());
    }

    #[test]
    fn a_field_that_is_not_nullable_may_be_left_out_but_not_null() {
        let s = |json: &str| serde_json::from_str::<Body>(json).map(|b| b.s);
        assert_eq!(s("{}").unwrap(), None);
        assert_eq!(s(r#"{"s": "x"}"#).unwrap(), Some("x".to_string()));
        assert!(s(r#"{"s": null}"#).is_err());
    }
}

/// `?limit=` of a listing: how many of the newest to answer.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct Page {
    /// At most this many (default 20, at most 500).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

impl Page {
    /// The limit asked for, 20 if none; a 400 past the range.
    pub fn limit(&self) -> Result<u32, super::error::ApiError> {
        match self.limit.unwrap_or(20) {
            n @ 1..=500 => Ok(n),
            n => Err(super::error::ApiError::new(
                http::StatusCode::BAD_REQUEST,
                format!("limit is 1 to 500, not {n}"),
            )),
        }
    }
}

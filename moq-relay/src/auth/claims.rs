//! The claims a relay token carries.

use moq_lite::model::{Path, PathError};
use serde::{Deserialize, Deserializer, Serialize};

/// What a token grants. See the [module docs](super) for the JSON shape.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Claims {
    /// The path the token is for. A session's URL path must be this path or
    /// lie under it (on segment boundaries). Required; `""` is the whole relay.
    pub root: String,

    /// Prefixes, relative to `root`, the holder may publish under; `""` is
    /// everything under `root`. Missing or empty: publishing is not allowed.
    /// A single string is accepted in place of a list.
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub put: Vec<String>,

    /// Prefixes, relative to `root`, the holder may subscribe under; same rules as `put`.
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub get: Vec<String>,

    /// Expiry, in seconds since the Unix epoch. Optional, enforced when present:
    /// the token is refused from that second on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<u64>,

    /// Issue time, in seconds since the Unix epoch. Informational; not checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
}

/// [`Claims`] after every path in it went through [`Path::parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParsedClaims {
    pub root: Path,
    pub put: Vec<Path>,
    pub get: Vec<Path>,
}

/// A claim that [`Path::parse`] refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("claim {claim:?} has an invalid path {value:?}: {error}")]
pub struct ClaimError {
    /// `root`, `put` or `get`.
    pub claim: &'static str,
    /// The refused value (cut short if long).
    pub value: String,
    /// Why it was refused.
    pub error: PathError,
}

impl Claims {
    /// Claims for `root` granting nothing yet and never expiring.
    pub fn new(root: impl Into<String>) -> Self {
        Claims {
            root: root.into(),
            ..Default::default()
        }
    }

    /// Checks every path with [`Path::parse`]: no `.`/`..` or empty segments,
    /// none longer than [`moq_lite::model::MAX_PATH_LEN`].
    pub fn validate(&self) -> Result<(), ClaimError> {
        self.parse().map(|_| ())
    }

    pub(crate) fn parse(&self) -> Result<ParsedClaims, ClaimError> {
        let parse = |claim: &'static str, value: &str| {
            Path::parse(value).map_err(|error| ClaimError {
                claim,
                value: value.chars().take(64).collect(),
                error,
            })
        };
        let list = |claim, values: &[String]| -> Result<Vec<Path>, ClaimError> {
            values.iter().map(|v| parse(claim, v)).collect()
        };
        Ok(ParsedClaims {
            root: parse("root", &self.root)?,
            put: list("put", &self.put)?,
            get: list("get", &self.get)?,
        })
    }
}

fn one_or_many<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(deserializer)? {
        OneOrMany::One(one) => vec![one],
        OneOrMany::Many(many) => many,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape() {
        let claims: Claims =
            serde_json::from_str(r#"{"root":"room","put":"alice","get":[""],"exp":10,"extra":1}"#).unwrap();
        assert_eq!(claims.root, "room");
        assert_eq!(claims.put, vec!["alice".to_string()]);
        assert_eq!(claims.get, vec![String::new()]);
        assert_eq!(claims.exp, Some(10));
        assert_eq!(claims.iat, None);

        let json = serde_json::to_string(&Claims::new("a")).unwrap();
        assert_eq!(json, r#"{"root":"a"}"#);
        assert!(serde_json::from_str::<Claims>(r#"{"put":[""]}"#).is_err());
        assert!(serde_json::from_str::<Claims>(r#"{"root":"a","exp":-1}"#).is_err());
    }

    #[test]
    fn paths_checked() {
        let mut claims = Claims::new("room/../admin");
        assert_eq!(claims.validate().unwrap_err().claim, "root");
        claims.root = "/room/".into();
        claims.get = vec!["a//b".into()];
        assert_eq!(claims.validate().unwrap_err().claim, "get");
        claims.get = vec!["".into(), "/x/".into()];
        let parsed = claims.parse().unwrap();
        assert_eq!(parsed.root, Path::new("room"));
        assert_eq!(parsed.get, vec![Path::root(), Path::new("x")]);
    }
}

//! Broadcast paths: slash-separated names, normalised so that equal paths are
//! equal strings, with prefix matching on segment boundaries.
//!
//! `Path::new("/room//alice/")` is `room/alice`; `room` is a prefix of
//! `room/alice` but not of `roomba`. Paths from the network go through
//! [`Path::parse`], which refuses what normalising would silently change.
//!
//! ```
//! use moq_lite::model::Path;
//!
//! let path = Path::new("/room//alice/");
//! assert_eq!(path.as_str(), "room/alice");
//! assert!(path.has_prefix(&Path::new("room")));
//! assert!(!Path::new("roomba").has_prefix(&Path::new("room")));
//! assert_eq!(path.strip_prefix(&Path::new("room")), Some(Path::new("alice")));
//! ```

use std::fmt;
use std::sync::Arc;

/// The longest path, in bytes, that [`Path::parse`] accepts.
pub const MAX_PATH_LEN: usize = 1024;

/// A normalised broadcast path: no leading, trailing or doubled slashes.
///
/// The empty path is the root; it is a prefix of every path. Cloning is cheap
/// (a reference count).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Path(Arc<str>);

/// Why [`Path::parse`] refused a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// Longer than [`MAX_PATH_LEN`].
    #[error("path longer than {MAX_PATH_LEN} bytes")]
    TooLong,
    /// Two slashes in a row: an empty segment.
    #[error("path has an empty segment")]
    EmptySegment,
    /// A `.` or `..` segment, which could be used to escape a prefix.
    #[error("path has a relative segment")]
    RelativeSegment,
}

impl From<PathError> for crate::Error {
    fn from(_: PathError) -> Self {
        crate::Error::Bounds
    }
}

impl Path {
    /// Normalises `path`: drops leading, trailing and repeated slashes.
    pub fn new(path: impl AsRef<str>) -> Path {
        let path = path.as_ref();
        if is_normal(path) {
            return Path(path.into());
        }
        let mut out = String::with_capacity(path.len());
        for segment in path.split('/').filter(|s| !s.is_empty()) {
            if !out.is_empty() {
                out.push('/');
            }
            out.push_str(segment);
        }
        Path(out.into())
    }

    /// Checks a path that came from the network: at most [`MAX_PATH_LEN`]
    /// bytes, no empty inner segment and no `.` or `..` segment. A single
    /// leading or trailing slash is tolerated and removed.
    pub fn parse(path: &str) -> Result<Path, PathError> {
        if path.len() > MAX_PATH_LEN {
            return Err(PathError::TooLong);
        }
        let trimmed = path.strip_prefix('/').unwrap_or(path);
        let trimmed = trimmed.strip_suffix('/').unwrap_or(trimmed);
        if trimmed.is_empty() {
            return Ok(Path::default());
        }
        for segment in trimmed.split('/') {
            match segment {
                "" => return Err(PathError::EmptySegment),
                "." | ".." => return Err(PathError::RelativeSegment),
                _ => {}
            }
        }
        Ok(Path(trimmed.into()))
    }

    /// The root path (empty).
    pub fn root() -> Path {
        Path::default()
    }

    /// The path as a string, without leading or trailing slash.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is the root path.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The segments between slashes; none for the root.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('/').filter(|s| !s.is_empty())
    }

    /// Whether `prefix` is this path or one of its ancestors (segment-wise).
    pub fn has_prefix(&self, prefix: &Path) -> bool {
        self.strip_prefix_str(prefix).is_some()
    }

    /// This path relative to `prefix`, if `prefix` is a segment-wise prefix.
    pub fn strip_prefix(&self, prefix: &Path) -> Option<Path> {
        self.strip_prefix_str(prefix).map(|rest| Path(rest.into()))
    }

    fn strip_prefix_str(&self, prefix: &Path) -> Option<&str> {
        if prefix.is_empty() {
            return Some(&self.0);
        }
        let rest = self.0.strip_prefix(&*prefix.0)?;
        if rest.is_empty() {
            Some(rest)
        } else {
            rest.strip_prefix('/')
        }
    }

    /// `self/other`, where either may be the root.
    pub fn join(&self, other: &Path) -> Path {
        match (self.is_empty(), other.is_empty()) {
            (true, _) => other.clone(),
            (_, true) => self.clone(),
            _ => Path(format!("{}/{}", self.0, other.0).into()),
        }
    }

    /// Whether two prefixes overlap: one is a prefix of the other.
    pub fn overlaps(&self, other: &Path) -> bool {
        self.has_prefix(other) || other.has_prefix(self)
    }
}

fn is_normal(path: &str) -> bool {
    !path.starts_with('/') && !path.ends_with('/') && !path.contains("//")
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl From<&str> for Path {
    fn from(s: &str) -> Self {
        Path::new(s)
    }
}

impl From<String> for Path {
    fn from(s: String) -> Self {
        if is_normal(&s) {
            Path(s.into())
        } else {
            Path::new(s)
        }
    }
}

impl From<&Path> for Path {
    fn from(p: &Path) -> Self {
        p.clone()
    }
}

impl AsRef<str> for Path {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises() {
        assert_eq!(Path::new("").as_str(), "");
        assert_eq!(Path::new("/").as_str(), "");
        assert_eq!(Path::new("///a//b///").as_str(), "a/b");
        assert_eq!(Path::new("a/b"), Path::from("/a/b/"));
        assert_eq!(Path::from(String::from("x//y")).as_str(), "x/y");
    }

    #[test]
    fn prefix_on_segment_boundaries() {
        let p = Path::new("a/bc/d");
        assert!(p.has_prefix(&Path::root()));
        assert!(p.has_prefix(&Path::new("a")));
        assert!(p.has_prefix(&Path::new("a/bc")));
        assert!(p.has_prefix(&p));
        assert!(!p.has_prefix(&Path::new("a/b")));
        assert!(!p.has_prefix(&Path::new("a/bc/d/e")));
        assert_eq!(p.strip_prefix(&Path::new("a")), Some(Path::new("bc/d")));
        assert_eq!(p.strip_prefix(&p), Some(Path::root()));
        assert_eq!(p.strip_prefix(&Path::new("a/b")), None);
        assert!(Path::new("a").overlaps(&Path::new("a/b")));
        assert!(!Path::new("a").overlaps(&Path::new("ab")));
    }

    #[test]
    fn join() {
        assert_eq!(Path::root().join(&Path::new("a")), Path::new("a"));
        assert_eq!(Path::new("a").join(&Path::root()), Path::new("a"));
        assert_eq!(Path::new("a").join(&Path::new("b/c")).as_str(), "a/b/c");
    }

    #[test]
    fn parse_refuses_tricks() {
        assert_eq!(Path::parse("/a/b/").unwrap().as_str(), "a/b");
        assert_eq!(Path::parse("").unwrap(), Path::root());
        assert_eq!(Path::parse("a//b"), Err(PathError::EmptySegment));
        assert_eq!(Path::parse("a/../b"), Err(PathError::RelativeSegment));
        assert_eq!(Path::parse("./a"), Err(PathError::RelativeSegment));
        assert_eq!(
            Path::parse(&"x".repeat(MAX_PATH_LEN + 1)),
            Err(PathError::TooLong)
        );
        assert!(Path::parse(&"x".repeat(MAX_PATH_LEN)).is_ok());
    }
}

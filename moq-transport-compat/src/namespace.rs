//! Track namespaces (tuples of byte fields), track names, and their mapping
//! to moq-lite [`Path`]s.
//!
//! Limits (section "Track Naming" of every draft): at most
//! [`MAX_NAMESPACE_FIELDS`] fields, and at most [`MAX_FULL_TRACK_NAME`] bytes
//! for the namespace fields plus the track name. Drafts 14 and 15 require 1
//! to 32 fields; draft-16 allows 0 fields only in a SUBSCRIBE_NAMESPACE
//! prefix; draft-17 allows 0 everywhere. From draft-16 a field must not be
//! empty; drafts 14 and 15 do not say, so empty fields are accepted there.
//!
//! A namespace maps to a path by joining its fields with `/`. A field that is
//! not UTF-8, is empty, contains `/`, or is `.` / `..` has no path form:
//! [`TrackNamespace::to_path`] returns a [`NamespaceError`].

use bytes::{Buf, BufMut, Bytes};
use moq_lite::coding::{DecodeError, EncodeError};
use moq_lite::model::Path;

use crate::Draft;
use crate::varint::{get_bytes, get_len, put_bytes, put_vi};

/// The most fields a namespace may have.
pub const MAX_NAMESPACE_FIELDS: usize = 32;

/// The most bytes of a full track name (namespace fields plus track name).
pub const MAX_FULL_TRACK_NAME: usize = 4096;

/// Where a namespace appears, which decides whether zero fields are allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NamespaceRole {
    /// A track's namespace (PUBLISH_NAMESPACE, SUBSCRIBE, ...).
    Namespace,
    /// A SUBSCRIBE_NAMESPACE / UNSUBSCRIBE_NAMESPACE prefix.
    Prefix,
    /// A NAMESPACE / NAMESPACE_DONE / PUBLISH_BLOCKED suffix (draft-16+): the
    /// part after the prefix, possibly nothing.
    Suffix,
}

impl NamespaceRole {
    /// The fewest fields a namespace in this role has. A SUBSCRIBE_NAMESPACE
    /// prefix of no fields (the root) is allowed in every draft: the text of
    /// 14 and 15 asks for 1 to 32, but the reference relay sends the root
    /// prefix in them too, and refusing it would end every session with it.
    /// (We only send it from draft-16.)
    fn min_fields(self, draft: Draft) -> usize {
        match (draft, self) {
            (d, _) if d.at_least(Draft::D17) => 0,
            (_, NamespaceRole::Suffix | NamespaceRole::Prefix) => 0,
            _ => 1,
        }
    }
}

/// Why a namespace and a path do not map onto each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NamespaceError {
    /// More than [`MAX_NAMESPACE_FIELDS`] fields (or path segments).
    #[error("more than {MAX_NAMESPACE_FIELDS} namespace fields")]
    TooManyFields,
    /// A field is not UTF-8.
    #[error("namespace field is not UTF-8")]
    NotUtf8,
    /// A field contains '/', so it would split into two path segments.
    #[error("namespace field contains '/'")]
    ContainsSlash,
    /// An empty field has no path segment.
    #[error("empty namespace field")]
    EmptyField,
    /// A `.` or `..` field, which paths refuse.
    #[error("relative namespace field")]
    RelativeField,
    /// The joined path is longer than moq-lite allows.
    #[error("path too long")]
    TooLong,
}

/// A track namespace: an ordered tuple of byte fields.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct TrackNamespace(pub Vec<Bytes>);

impl TrackNamespace {
    /// A namespace from string fields.
    pub fn from_fields<I, S>(fields: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        TrackNamespace(
            fields
                .into_iter()
                .map(|s| Bytes::copy_from_slice(s.as_ref().as_bytes()))
                .collect(),
        )
    }

    /// The sum of the field lengths.
    pub fn byte_len(&self) -> usize {
        self.0.iter().map(|f| f.len()).sum()
    }

    /// Whether `prefix`'s fields start this namespace.
    pub fn has_prefix(&self, prefix: &TrackNamespace) -> bool {
        self.0.starts_with(&prefix.0)
    }

    /// Writes the count and the fields, checking the draft's limits for `role`.
    pub fn encode<B: BufMut>(
        &self,
        draft: Draft,
        role: NamespaceRole,
        buf: &mut B,
    ) -> Result<(), EncodeError> {
        if self.0.len() > MAX_NAMESPACE_FIELDS {
            return Err(EncodeError::TooLarge("namespace field count"));
        }
        if self.0.len() < role.min_fields(draft) {
            return Err(EncodeError::Invalid("namespace has no fields"));
        }
        if self.byte_len() > MAX_FULL_TRACK_NAME {
            return Err(EncodeError::TooLarge("namespace length"));
        }
        if draft >= Draft::D16 && self.0.iter().any(|f| f.is_empty()) {
            return Err(EncodeError::Invalid("empty namespace field"));
        }
        put_vi(draft, self.0.len() as u64, buf)?;
        for f in &self.0 {
            put_bytes(draft, f, MAX_FULL_TRACK_NAME, "namespace field", buf)?;
        }
        Ok(())
    }

    /// Reads a namespace, enforcing the draft's limits for `role`.
    pub fn decode<B: Buf>(buf: &mut B, draft: Draft, role: NamespaceRole) -> Result<Self, DecodeError> {
        let count = get_len(buf, draft, MAX_NAMESPACE_FIELDS, "namespace field count")?;
        if count < role.min_fields(draft) {
            return Err(DecodeError::Invalid("namespace has no fields"));
        }
        let mut fields = Vec::with_capacity(count);
        let mut total = 0usize;
        for _ in 0..count {
            let f = get_bytes(buf, draft, MAX_FULL_TRACK_NAME - total, "namespace length")?;
            if f.is_empty() && draft >= Draft::D16 {
                return Err(DecodeError::Invalid("empty namespace field"));
            }
            total += f.len();
            fields.push(f);
        }
        Ok(TrackNamespace(fields))
    }

    /// The path of this namespace: fields joined by '/'.
    pub fn to_path(&self) -> Result<Path, NamespaceError> {
        let mut out = String::new();
        for f in &self.0 {
            let s = std::str::from_utf8(f).map_err(|_| NamespaceError::NotUtf8)?;
            match s {
                "" => return Err(NamespaceError::EmptyField),
                "." | ".." => return Err(NamespaceError::RelativeField),
                s if s.contains('/') => return Err(NamespaceError::ContainsSlash),
                _ => {}
            }
            if !out.is_empty() {
                out.push('/');
            }
            out.push_str(s);
        }
        Path::parse(&out).map_err(|_| NamespaceError::TooLong)
    }

    /// The namespace of a path: one field per segment; the root is no fields.
    pub fn from_path(path: &Path) -> Result<Self, NamespaceError> {
        let fields: Vec<Bytes> = path
            .segments()
            .map(|s| Bytes::copy_from_slice(s.as_bytes()))
            .collect();
        if fields.len() > MAX_NAMESPACE_FIELDS {
            return Err(NamespaceError::TooManyFields);
        }
        Ok(TrackNamespace(fields))
    }
}

impl TryFrom<&TrackNamespace> for Path {
    type Error = NamespaceError;

    fn try_from(ns: &TrackNamespace) -> Result<Path, NamespaceError> {
        ns.to_path()
    }
}

impl TryFrom<&Path> for TrackNamespace {
    type Error = NamespaceError;

    fn try_from(path: &Path) -> Result<TrackNamespace, NamespaceError> {
        TrackNamespace::from_path(path)
    }
}

/// Separates namespace fields from the track name in a [`RoutedName`]: a
/// control character no path segment or sensible track name holds.
const ROUTED_SEPARATOR: char = '\u{1f}';

/// A track asked of a broadcast whose namespace is only a prefix of the
/// subscriber's ("Namespace Prefix Matching", draft-16 section "Relays":
/// SUBSCRIBE(namespace=(foo, bar), name=x) goes to whoever published
/// (foo)). The model names tracks within a broadcast, so the fields past
/// the broadcast's path travel in the model's track name, each followed by
/// the unit separator U+001F, and the session that subscribes upstream splits
/// them off again. A name without the separator is an ordinary track name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutedName {
    /// The namespace fields after the broadcast's own.
    pub suffix: Vec<Bytes>,
    /// The track name.
    pub name: Bytes,
}

impl RoutedName {
    /// The model track name for `name` under the extra namespace fields
    /// `suffix`; `None` if a field or the name is not UTF-8 or holds the
    /// separator (such a track cannot be routed by prefix).
    pub fn encode(suffix: &[Bytes], name: &[u8]) -> Option<String> {
        let mut out = String::new();
        for field in suffix {
            let field = std::str::from_utf8(field).ok()?;
            if field.contains(ROUTED_SEPARATOR) {
                return None;
            }
            out.push_str(field);
            out.push(ROUTED_SEPARATOR);
        }
        let name = std::str::from_utf8(name).ok()?;
        if name.contains(ROUTED_SEPARATOR) {
            return None;
        }
        out.push_str(name);
        Some(out)
    }

    /// Splits a model track name into the extra namespace fields and the
    /// track name (no fields for an ordinary name).
    pub fn decode(track: &str) -> RoutedName {
        let mut parts: Vec<&str> = track.split(ROUTED_SEPARATOR).collect();
        let name = parts.pop().unwrap_or_default();
        RoutedName {
            suffix: parts
                .into_iter()
                .map(|f| Bytes::copy_from_slice(f.as_bytes()))
                .collect(),
            name: Bytes::copy_from_slice(name.as_bytes()),
        }
    }
}

/// Writes a track name, checking namespace + name against [`MAX_FULL_TRACK_NAME`].
pub fn put_track_name<B: BufMut>(
    draft: Draft,
    ns: &TrackNamespace,
    name: &[u8],
    buf: &mut B,
) -> Result<(), EncodeError> {
    if ns.byte_len() + name.len() > MAX_FULL_TRACK_NAME {
        return Err(EncodeError::TooLarge("full track name"));
    }
    put_bytes(draft, name, MAX_FULL_TRACK_NAME, "track name", buf)
}

/// Reads a track name that follows `ns`, checking the full track name length.
pub fn get_track_name<B: Buf>(buf: &mut B, draft: Draft, ns: &TrackNamespace) -> Result<Bytes, DecodeError> {
    get_bytes(buf, draft, MAX_FULL_TRACK_NAME - ns.byte_len(), "full track name")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Namespaces valid in every draft and role (1 to 3 non-empty fields).
    pub fn any_namespace() -> impl Strategy<Value = TrackNamespace> {
        proptest::collection::vec("[a-z/]{1,5}", 1..4).prop_map(TrackNamespace::from_fields)
    }

    #[test]
    fn wire_and_limits() {
        let ns = TrackNamespace::from_fields(["ab", "c"]);
        let mut out = Vec::new();
        ns.encode(Draft::D14, NamespaceRole::Namespace, &mut out).unwrap();
        // 2 fields; "ab" with length 2; "c" with length 1
        assert_eq!(out, [0x02, 0x02, b'a', b'b', 0x01, b'c']);
        assert_eq!(
            TrackNamespace::decode(&mut &out[..], Draft::D14, NamespaceRole::Namespace),
            Ok(ns)
        );

        // Zero fields: refused before draft-17 except as a prefix (in every
        // draft: the reference relay sends it) or a suffix.
        for d in Draft::ALL {
            assert_eq!(
                TrackNamespace::decode(&mut &[0x00][..], d, NamespaceRole::Prefix),
                Ok(TrackNamespace::default())
            );
        }
        let empty = TrackNamespace::default();
        empty
            .encode(Draft::D15, NamespaceRole::Prefix, &mut Vec::new())
            .unwrap();
        empty
            .encode(Draft::D16, NamespaceRole::Prefix, &mut Vec::new())
            .unwrap();
        assert!(
            empty
                .encode(Draft::D16, NamespaceRole::Namespace, &mut Vec::new())
                .is_err()
        );
        empty
            .encode(Draft::D17, NamespaceRole::Namespace, &mut Vec::new())
            .unwrap();
        for d in [Draft::D14, Draft::D15, Draft::D16] {
            assert!(matches!(
                TrackNamespace::decode(&mut &[0x00][..], d, NamespaceRole::Namespace),
                Err(DecodeError::Invalid(_))
            ));
        }
        // 33 fields.
        assert!(matches!(
            TrackNamespace::decode(&mut &[0x21][..], Draft::D14, NamespaceRole::Namespace),
            Err(DecodeError::TooLarge(_))
        ));
        // Empty field: fine in -14, refused from -16.
        assert!(TrackNamespace::decode(&mut &[0x01, 0x00][..], Draft::D14, NamespaceRole::Namespace).is_ok());
        assert!(matches!(
            TrackNamespace::decode(&mut &[0x01, 0x00][..], Draft::D16, NamespaceRole::Namespace),
            Err(DecodeError::Invalid(_))
        ));
        // A field of 4097 bytes: over the full track name limit, refused from its length.
        assert!(matches!(
            TrackNamespace::decode(&mut &[0x01, 0x50, 0x01][..], Draft::D14, NamespaceRole::Namespace),
            Err(DecodeError::TooLarge(_))
        ));
        // Namespace of 4000 bytes plus a name of 100: over 4096.
        let big = TrackNamespace(vec![Bytes::from(vec![b'x'; 4000])]);
        assert!(put_track_name(Draft::D14, &big, &[b'y'; 100], &mut Vec::new()).is_err());
        let mut name = Vec::new();
        put_bytes(Draft::D14, &[b'y'; 100], 1000, "n", &mut name).unwrap();
        assert!(matches!(
            get_track_name(&mut &name[..], Draft::D14, &big),
            Err(DecodeError::TooLarge(_))
        ));
    }

    #[test]
    fn paths() {
        let ns = TrackNamespace::from_fields(["room", "alice"]);
        assert_eq!(ns.to_path(), Ok(Path::new("room/alice")));
        assert_eq!(TrackNamespace::from_path(&Path::new("room/alice")), Ok(ns));
        assert_eq!(
            TrackNamespace::from_path(&Path::root()),
            Ok(TrackNamespace::default())
        );
        assert_eq!(TrackNamespace::default().to_path(), Ok(Path::root()));
        assert_eq!(
            TrackNamespace::from_fields(["a/b"]).to_path(),
            Err(NamespaceError::ContainsSlash)
        );
        assert_eq!(
            TrackNamespace::from_fields([""]).to_path(),
            Err(NamespaceError::EmptyField)
        );
        assert_eq!(
            TrackNamespace::from_fields([".."]).to_path(),
            Err(NamespaceError::RelativeField)
        );
        assert_eq!(
            TrackNamespace(vec![Bytes::from_static(&[0xff])]).to_path(),
            Err(NamespaceError::NotUtf8)
        );
        let deep = Path::new(vec!["x"; 33].join("/"));
        assert_eq!(
            TrackNamespace::from_path(&deep),
            Err(NamespaceError::TooManyFields)
        );
    }

    #[test]
    fn routed_names() {
        let suffix = [Bytes::from_static(b"case"), Bytes::from_static(b"3")];
        let encoded = RoutedName::encode(&suffix, b"track").unwrap();
        assert_eq!(encoded, "case\u{1f}3\u{1f}track");
        assert_eq!(
            RoutedName::decode(&encoded),
            RoutedName {
                suffix: suffix.to_vec(),
                name: Bytes::from_static(b"track")
            }
        );
        // An ordinary name, '/' included, is itself.
        assert_eq!(RoutedName::encode(&[], b"video/hd").unwrap(), "video/hd");
        assert_eq!(RoutedName::decode("video/hd").suffix, Vec::<Bytes>::new());
        assert_eq!(
            RoutedName::decode("video/hd").name,
            Bytes::from_static(b"video/hd")
        );
        // What cannot be told apart again is refused.
        assert_eq!(RoutedName::encode(&[Bytes::from_static(b"a\x1fb")], b"t"), None);
        assert_eq!(RoutedName::encode(&[], b"t\x1f"), None);
        assert_eq!(RoutedName::encode(&[Bytes::from_static(&[0xff])], b"t"), None);
    }

    proptest! {
        #[test]
        fn routed_name_round_trip(
            suffix in proptest::collection::vec("[a-z0-9/]{1,6}", 0..4),
            name in "[a-z0-9/]{0,8}",
        ) {
            let suffix: Vec<Bytes> = suffix.iter().map(|f| Bytes::copy_from_slice(f.as_bytes())).collect();
            let encoded = RoutedName::encode(&suffix, name.as_bytes()).unwrap();
            let decoded = RoutedName::decode(&encoded);
            prop_assert_eq!(decoded.suffix, suffix);
            prop_assert_eq!(decoded.name, Bytes::copy_from_slice(name.as_bytes()));
        }

        #[test]
        fn path_round_trip(fields in proptest::collection::vec("[a-z0-9_]{1,6}", 0..6)) {
            let ns = TrackNamespace::from_fields(&fields);
            let path = ns.to_path().unwrap();
            prop_assert_eq!(TrackNamespace::from_path(&path).unwrap(), ns);
        }

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            for d in Draft::ALL {
                for r in [NamespaceRole::Namespace, NamespaceRole::Prefix, NamespaceRole::Suffix] {
                    let _ = TrackNamespace::decode(&mut &bytes[..], d, r);
                }
            }
        }
    }
}

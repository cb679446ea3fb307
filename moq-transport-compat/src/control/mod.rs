//! Control messages: a type, a 16-bit length, and a body, for every draft.
//!
//! Every control message (PUBLISH included, whatever the -14 text says) is
//! `Type (i), Length (16), Payload`. The type is a QUIC varint before
//! draft-17 and a [`crate::Vi64`] in draft-17. [`ControlMessage`] holds
//! one message of any draft; [`ControlMessage::encode`] refuses a message
//! the draft does not have, and [`ControlMessage::decode`] returns
//! [`Decoded::Unknown`] (with the skipped payload) for a type the draft does
//! not define, so the session can close with PROTOCOL_VIOLATION (drafts 14
//! to 17 all say an unknown control message closes the session).
//!
//! Fields a draft lacks are left out on encode and take their default
//! (zero, empty, `false`, `None`) on decode. Names follow the newest draft
//! that has a message; older names are given on each type and variant.
//!
//! Draft-17 sends requests on their own bidirectional streams: responses
//! (SUBSCRIBE_OK, REQUEST_OK, REQUEST_ERROR, PUBLISH_OK, PUBLISH_DONE,
//! FETCH_OK) carry no Request ID there, and requests carry a Required Request
//! ID Delta. The stream handling itself is the session's business.

mod fetch;
mod namespaces;
mod params;
mod publish;
mod request;
mod session;
mod setup;
mod subscribe;
#[cfg(test)]
mod vectors;

pub use fetch::*;
pub use namespaces::*;
pub use params::*;
pub use publish::*;
pub use request::*;
pub use session::*;
pub use setup::*;
pub use subscribe::*;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use moq_lite::coding::{DecodeError, EncodeError, LengthPrefix, decode_framed, encode_framed};

use crate::Draft;
use crate::varint::{get_vi, put_vi};

/// The largest control message body: the 16-bit length's maximum.
pub const MAX_CONTROL_MESSAGE_LEN: usize = u16::MAX as usize;

/// A message body: the fields after the type and length.
pub trait MessageBody: Sized {
    /// Writes the body for `draft`.
    fn encode_body(&self, draft: Draft, buf: &mut BytesMut) -> Result<(), EncodeError>;
    /// Reads the body for `draft` from exactly the message's payload.
    fn decode_body(buf: &mut Bytes, draft: Draft) -> Result<Self, DecodeError>;
}

moq_lite::wire_enum! {
    /// Control message type codes. One code can name different messages in
    /// different drafts (0x08 is PUBLISH_NAMESPACE_ERROR in 14 and NAMESPACE
    /// from 16): each variant is named after its latest meaning, and
    /// [`ControlMessage::decode`] picks the message by type and draft.
    pub enum MessageType {
        /// SUBSCRIBE_UPDATE (14, 15) / REQUEST_UPDATE (16, 17).
        RequestUpdate = 0x02,
        /// SUBSCRIBE.
        Subscribe = 0x03,
        /// SUBSCRIBE_OK.
        SubscribeOk = 0x04,
        /// SUBSCRIBE_ERROR (14) / REQUEST_ERROR (15+).
        RequestError = 0x05,
        /// PUBLISH_NAMESPACE.
        PublishNamespace = 0x06,
        /// PUBLISH_NAMESPACE_OK (14) / REQUEST_OK (15+).
        RequestOk = 0x07,
        /// PUBLISH_NAMESPACE_ERROR (14) / NAMESPACE (16+).
        Namespace = 0x08,
        /// PUBLISH_NAMESPACE_DONE (14 to 16).
        PublishNamespaceDone = 0x09,
        /// UNSUBSCRIBE (14 to 16).
        Unsubscribe = 0x0a,
        /// PUBLISH_DONE.
        PublishDone = 0x0b,
        /// PUBLISH_NAMESPACE_CANCEL (14 to 16).
        PublishNamespaceCancel = 0x0c,
        /// TRACK_STATUS.
        TrackStatus = 0x0d,
        /// TRACK_STATUS_OK (14) / NAMESPACE_DONE (16+).
        NamespaceDone = 0x0e,
        /// TRACK_STATUS_ERROR (14) / PUBLISH_BLOCKED (17).
        PublishBlocked = 0x0f,
        /// GOAWAY.
        Goaway = 0x10,
        /// SUBSCRIBE_NAMESPACE (14 to 17, with Subscribe Options from 16).
        SubscribeNamespace = 0x11,
        /// SUBSCRIBE_NAMESPACE (18+): namespaces only.
        SubscribeNamespace18 = 0x50,
        /// SUBSCRIBE_TRACKS (18+): a PUBLISH for each track under a prefix.
        SubscribeTracks = 0x51,
        /// PUBLISH_STATE_NOTIFY (20+): the publisher's state of a subscription.
        PublishStateNotify = 0x22,
        /// SUBSCRIBE_NAMESPACE_OK (14 only).
        SubscribeNamespaceOk = 0x12,
        /// SUBSCRIBE_NAMESPACE_ERROR (14 only).
        SubscribeNamespaceError = 0x13,
        /// UNSUBSCRIBE_NAMESPACE (14, 15).
        UnsubscribeNamespace = 0x14,
        /// MAX_REQUEST_ID (14 to 16).
        MaxRequestId = 0x15,
        /// FETCH.
        Fetch = 0x16,
        /// FETCH_CANCEL (14 to 16).
        FetchCancel = 0x17,
        /// FETCH_OK.
        FetchOk = 0x18,
        /// FETCH_ERROR (14 only).
        FetchError = 0x19,
        /// REQUESTS_BLOCKED (14 to 16).
        RequestsBlocked = 0x1a,
        /// PUBLISH.
        Publish = 0x1d,
        /// PUBLISH_OK.
        PublishOk = 0x1e,
        /// PUBLISH_ERROR (14 only).
        PublishError = 0x1f,
        /// CLIENT_SETUP (14 to 16).
        ClientSetup = 0x20,
        /// SERVER_SETUP (14 to 16).
        ServerSetup = 0x21,
        /// SETUP (17); also the control stream type.
        Setup = 0x2f00,
    }
}

/// One control message of any draft.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlMessage {
    /// CLIENT_SETUP (0x20, drafts 14 to 16).
    ClientSetup(ClientSetup),
    /// SERVER_SETUP (0x21, drafts 14 to 16).
    ServerSetup(ServerSetup),
    /// SETUP (0x2F00, draft-17).
    Setup(Setup),
    /// GOAWAY (0x10).
    GoAway(GoAway),
    /// MAX_REQUEST_ID (0x15, drafts 14 to 16).
    MaxRequestId(MaxRequestId),
    /// REQUESTS_BLOCKED (0x1A, drafts 14 to 16).
    RequestsBlocked(RequestsBlocked),
    /// REQUEST_OK (0x07, 15+); PUBLISH_NAMESPACE_OK in draft-14.
    RequestOk(RequestOk),
    /// REQUEST_ERROR (0x05, 15+); SUBSCRIBE_ERROR in draft-14.
    RequestError(RequestError),
    /// SUBSCRIBE (0x03).
    Subscribe(Subscribe),
    /// SUBSCRIBE_OK (0x04).
    SubscribeOk(SubscribeOk),
    /// REQUEST_UPDATE (0x02, 16+); SUBSCRIBE_UPDATE in drafts 14 and 15.
    RequestUpdate(RequestUpdate),
    /// UNSUBSCRIBE (0x0A, drafts 14 to 16).
    Unsubscribe(Unsubscribe),
    /// PUBLISH_DONE (0x0B).
    PublishDone(PublishDone),
    /// PUBLISH (0x1D).
    Publish(Publish),
    /// PUBLISH_OK (0x1E).
    PublishOk(PublishOk),
    /// PUBLISH_ERROR (0x1F, draft-14 only; REQUEST_ERROR later).
    PublishError(RequestError),
    /// FETCH (0x16).
    Fetch(Fetch),
    /// FETCH_OK (0x18).
    FetchOk(FetchOk),
    /// FETCH_ERROR (0x19, draft-14 only; REQUEST_ERROR later).
    FetchError(RequestError),
    /// FETCH_CANCEL (0x17, drafts 14 to 16).
    FetchCancel(FetchCancel),
    /// TRACK_STATUS (0x0D): the SUBSCRIBE layout.
    TrackStatus(Subscribe),
    /// TRACK_STATUS_OK (0x0E, draft-14 only): the SUBSCRIBE_OK layout;
    /// REQUEST_OK from draft-15.
    TrackStatusOk(SubscribeOk),
    /// TRACK_STATUS_ERROR (0x0F, draft-14 only; REQUEST_ERROR later).
    TrackStatusError(RequestError),
    /// PUBLISH_NAMESPACE (0x06); ANNOUNCE before draft-14.
    PublishNamespace(PublishNamespace),
    /// PUBLISH_NAMESPACE_ERROR (0x08, draft-14 only; REQUEST_ERROR later).
    PublishNamespaceError(RequestError),
    /// PUBLISH_NAMESPACE_DONE (0x09, drafts 14 to 16).
    PublishNamespaceDone(PublishNamespaceDone),
    /// PUBLISH_NAMESPACE_CANCEL (0x0C, drafts 14 to 16).
    PublishNamespaceCancel(PublishNamespaceCancel),
    /// SUBSCRIBE_NAMESPACE (0x11 to draft-17; 0x50 from 18), and from
    /// draft-18 SUBSCRIBE_TRACKS (0x51): the same request with Subscribe
    /// Options [`SubscribeOptions::Publish`].
    SubscribeNamespace(SubscribeNamespace),
    /// SUBSCRIBE_NAMESPACE_OK (0x12, draft-14 only; REQUEST_OK later).
    SubscribeNamespaceOk(RequestOk),
    /// SUBSCRIBE_NAMESPACE_ERROR (0x13, draft-14 only; REQUEST_ERROR later).
    SubscribeNamespaceError(RequestError),
    /// UNSUBSCRIBE_NAMESPACE (0x14, drafts 14 and 15).
    UnsubscribeNamespace(UnsubscribeNamespace),
    /// NAMESPACE (0x08, 16+).
    Namespace(Namespace),
    /// NAMESPACE_DONE (0x0E, 16+).
    NamespaceDone(NamespaceDone),
    /// PUBLISH_BLOCKED (0x0F, 17 and 18); PUBLISH_SKIPPED from 19.
    PublishBlocked(PublishBlocked),
    /// PUBLISH_STATE_NOTIFY (0x22, 20+).
    PublishStateNotify(PublishStateNotify),
}

/// What [`ControlMessage::decode`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// A message the draft defines.
    Message(ControlMessage),
    /// A type the draft does not define; its payload was skipped. Every draft
    /// says to close the session (PROTOCOL_VIOLATION).
    Unknown {
        /// The message type.
        message_type: u64,
        /// The payload, unread.
        payload: Bytes,
    },
}

impl ControlMessage {
    /// The message type code, and whether `draft` has this message.
    pub fn message_type(&self, draft: Draft) -> (MessageType, bool) {
        use Draft::*;
        use MessageType as T;
        let pre17 = !draft.request_streams();
        match self {
            ControlMessage::ClientSetup(_) => (T::ClientSetup, pre17),
            ControlMessage::ServerSetup(_) => (T::ServerSetup, pre17),
            ControlMessage::Setup(_) => (T::Setup, draft.request_streams()),
            ControlMessage::GoAway(_) => (T::Goaway, true),
            ControlMessage::MaxRequestId(_) => (T::MaxRequestId, pre17),
            ControlMessage::RequestsBlocked(_) => (T::RequestsBlocked, pre17),
            ControlMessage::RequestOk(_) => (T::RequestOk, true),
            ControlMessage::RequestError(_) => (T::RequestError, true),
            ControlMessage::Subscribe(_) => (T::Subscribe, true),
            ControlMessage::SubscribeOk(_) => (T::SubscribeOk, true),
            ControlMessage::RequestUpdate(_) => (T::RequestUpdate, true),
            ControlMessage::Unsubscribe(_) => (T::Unsubscribe, pre17),
            ControlMessage::PublishDone(_) => (T::PublishDone, true),
            ControlMessage::Publish(_) => (T::Publish, true),
            // Draft-18: PUBLISH is answered with REQUEST_OK (same body: the
            // parameters, then no Track Properties).
            ControlMessage::PublishOk(_) if draft.request_ok_for_publish() => (T::RequestOk, true),
            ControlMessage::PublishOk(_) => (T::PublishOk, true),
            ControlMessage::PublishError(_) => (T::PublishError, draft == D14),
            ControlMessage::Fetch(_) => (T::Fetch, true),
            ControlMessage::FetchOk(_) => (T::FetchOk, true),
            ControlMessage::FetchError(_) => (T::FetchError, draft == D14),
            ControlMessage::FetchCancel(_) => (T::FetchCancel, pre17),
            ControlMessage::TrackStatus(_) => (T::TrackStatus, true),
            ControlMessage::TrackStatusOk(_) => (T::NamespaceDone, draft == D14),
            ControlMessage::TrackStatusError(_) => (T::PublishBlocked, draft == D14),
            ControlMessage::PublishNamespace(_) => (T::PublishNamespace, true),
            ControlMessage::PublishNamespaceError(_) => (T::Namespace, draft == D14),
            ControlMessage::PublishNamespaceDone(_) => (T::PublishNamespaceDone, pre17),
            ControlMessage::PublishNamespaceCancel(_) => (T::PublishNamespaceCancel, pre17),
            ControlMessage::SubscribeNamespace(m) if draft.split_namespace_requests() => {
                match m.subscribe_options {
                    SubscribeOptions::Namespace => (T::SubscribeNamespace18, true),
                    SubscribeOptions::Publish => (T::SubscribeTracks, true),
                    SubscribeOptions::Both => (T::SubscribeNamespace18, false),
                }
            }
            ControlMessage::SubscribeNamespace(_) => (T::SubscribeNamespace, true),
            ControlMessage::SubscribeNamespaceOk(_) => (T::SubscribeNamespaceOk, draft == D14),
            ControlMessage::SubscribeNamespaceError(_) => (T::SubscribeNamespaceError, draft == D14),
            ControlMessage::UnsubscribeNamespace(_) => (T::UnsubscribeNamespace, draft <= D15),
            ControlMessage::Namespace(_) => (T::Namespace, draft >= D16),
            ControlMessage::NamespaceDone(_) => (T::NamespaceDone, draft >= D16),
            ControlMessage::PublishBlocked(_) => (T::PublishBlocked, draft.request_streams()),
            ControlMessage::PublishStateNotify(_) => (T::PublishStateNotify, draft.filtered_fetch()),
        }
    }

    fn encode_body(&self, draft: Draft, b: &mut BytesMut) -> Result<(), EncodeError> {
        match self {
            ControlMessage::ClientSetup(m) => m.encode_body(draft, b),
            ControlMessage::ServerSetup(m) => m.encode_body(draft, b),
            ControlMessage::Setup(m) => m.encode_body(draft, b),
            ControlMessage::GoAway(m) => m.encode_body(draft, b),
            ControlMessage::MaxRequestId(m) => m.encode_body(draft, b),
            ControlMessage::RequestsBlocked(m) => m.encode_body(draft, b),
            ControlMessage::RequestOk(m) | ControlMessage::SubscribeNamespaceOk(m) => m.encode_body(draft, b),
            ControlMessage::RequestError(m)
            | ControlMessage::PublishError(m)
            | ControlMessage::FetchError(m)
            | ControlMessage::TrackStatusError(m)
            | ControlMessage::PublishNamespaceError(m)
            | ControlMessage::SubscribeNamespaceError(m) => m.encode_body(draft, b),
            ControlMessage::Subscribe(m) | ControlMessage::TrackStatus(m) => m.encode_body(draft, b),
            ControlMessage::SubscribeOk(m) | ControlMessage::TrackStatusOk(m) => m.encode_body(draft, b),
            ControlMessage::RequestUpdate(m) => m.encode_body(draft, b),
            ControlMessage::Unsubscribe(m) => m.encode_body(draft, b),
            ControlMessage::PublishDone(m) => m.encode_body(draft, b),
            ControlMessage::Publish(m) => m.encode_body(draft, b),
            ControlMessage::PublishOk(m) => m.encode_body(draft, b),
            ControlMessage::Fetch(m) => m.encode_body(draft, b),
            ControlMessage::FetchOk(m) => m.encode_body(draft, b),
            ControlMessage::FetchCancel(m) => m.encode_body(draft, b),
            ControlMessage::PublishNamespace(m) => m.encode_body(draft, b),
            ControlMessage::PublishNamespaceDone(m) => m.encode_body(draft, b),
            ControlMessage::PublishNamespaceCancel(m) => m.encode_body(draft, b),
            ControlMessage::SubscribeNamespace(m) => m.encode_body(draft, b),
            ControlMessage::UnsubscribeNamespace(m) => m.encode_body(draft, b),
            ControlMessage::Namespace(m) => m.encode_body(draft, b),
            ControlMessage::NamespaceDone(m) => m.encode_body(draft, b),
            ControlMessage::PublishBlocked(m) => m.encode_body(draft, b),
            ControlMessage::PublishStateNotify(m) => m.encode_body(draft, b),
        }
    }

    fn decode_body(ty: u64, b: &mut Bytes, draft: Draft) -> Result<Option<Self>, DecodeError> {
        use ControlMessage as M;
        use Draft::*;
        use MessageType as T;
        let pre17 = !draft.request_streams();
        let d14 = draft == D14;
        Ok(Some(match MessageType::from(ty) {
            T::ClientSetup if pre17 => M::ClientSetup(MessageBody::decode_body(b, draft)?),
            T::ServerSetup if pre17 => M::ServerSetup(MessageBody::decode_body(b, draft)?),
            T::Setup if !pre17 => M::Setup(MessageBody::decode_body(b, draft)?),
            T::Goaway => M::GoAway(MessageBody::decode_body(b, draft)?),
            T::MaxRequestId if pre17 => M::MaxRequestId(MessageBody::decode_body(b, draft)?),
            T::RequestsBlocked if pre17 => M::RequestsBlocked(MessageBody::decode_body(b, draft)?),
            T::RequestOk => M::RequestOk(MessageBody::decode_body(b, draft)?),
            T::RequestError => M::RequestError(MessageBody::decode_body(b, draft)?),
            T::Subscribe => M::Subscribe(MessageBody::decode_body(b, draft)?),
            T::SubscribeOk => M::SubscribeOk(MessageBody::decode_body(b, draft)?),
            T::RequestUpdate => M::RequestUpdate(MessageBody::decode_body(b, draft)?),
            T::Unsubscribe if pre17 => M::Unsubscribe(MessageBody::decode_body(b, draft)?),
            T::PublishDone => M::PublishDone(MessageBody::decode_body(b, draft)?),
            T::Publish => M::Publish(MessageBody::decode_body(b, draft)?),
            // Draft-18's table still lists 0x1E, as an alias of REQUEST_OK
            // (its layout); draft-19 reserves it.
            T::PublishOk if draft == D18 => M::RequestOk(MessageBody::decode_body(b, draft)?),
            T::PublishOk if !draft.request_ok_for_publish() => {
                M::PublishOk(MessageBody::decode_body(b, draft)?)
            }
            T::PublishError if d14 => M::PublishError(MessageBody::decode_body(b, draft)?),
            T::Fetch => M::Fetch(MessageBody::decode_body(b, draft)?),
            T::FetchOk => M::FetchOk(MessageBody::decode_body(b, draft)?),
            T::FetchError if d14 => M::FetchError(MessageBody::decode_body(b, draft)?),
            T::FetchCancel if pre17 => M::FetchCancel(MessageBody::decode_body(b, draft)?),
            T::TrackStatus => M::TrackStatus(MessageBody::decode_body(b, draft)?),
            T::NamespaceDone if d14 => M::TrackStatusOk(MessageBody::decode_body(b, draft)?),
            T::NamespaceDone if draft >= D16 => M::NamespaceDone(MessageBody::decode_body(b, draft)?),
            T::PublishBlocked if d14 => M::TrackStatusError(MessageBody::decode_body(b, draft)?),
            T::PublishBlocked if draft.request_streams() => {
                M::PublishBlocked(MessageBody::decode_body(b, draft)?)
            }
            T::PublishNamespace => M::PublishNamespace(MessageBody::decode_body(b, draft)?),
            T::PublishStateNotify if draft.filtered_fetch() => {
                M::PublishStateNotify(MessageBody::decode_body(b, draft)?)
            }
            T::Namespace if d14 => M::PublishNamespaceError(MessageBody::decode_body(b, draft)?),
            T::Namespace if draft >= D16 => M::Namespace(MessageBody::decode_body(b, draft)?),
            T::PublishNamespaceDone if pre17 => M::PublishNamespaceDone(MessageBody::decode_body(b, draft)?),
            T::PublishNamespaceCancel if pre17 => {
                M::PublishNamespaceCancel(MessageBody::decode_body(b, draft)?)
            }
            T::SubscribeNamespace if !draft.split_namespace_requests() => {
                M::SubscribeNamespace(MessageBody::decode_body(b, draft)?)
            }
            T::SubscribeNamespace18 | T::SubscribeTracks if draft.split_namespace_requests() => {
                let mut m: SubscribeNamespace = MessageBody::decode_body(b, draft)?;
                m.subscribe_options = match MessageType::from(ty) {
                    T::SubscribeTracks => SubscribeOptions::Publish,
                    _ => SubscribeOptions::Namespace,
                };
                M::SubscribeNamespace(m)
            }
            T::SubscribeNamespaceOk if d14 => M::SubscribeNamespaceOk(MessageBody::decode_body(b, draft)?),
            T::SubscribeNamespaceError if d14 => {
                M::SubscribeNamespaceError(MessageBody::decode_body(b, draft)?)
            }
            T::UnsubscribeNamespace if draft <= D15 => {
                M::UnsubscribeNamespace(MessageBody::decode_body(b, draft)?)
            }
            _ => return Ok(None),
        }))
    }

    /// Writes the type, the 16-bit length and the body for `draft`.
    ///
    /// Fails with [`EncodeError::Version`] for a message `draft` lacks, and
    /// [`EncodeError::TooLarge`] for a body over 65535 bytes.
    pub fn encode<B: BufMut>(&self, draft: Draft, buf: &mut B) -> Result<(), EncodeError> {
        let (ty, exists) = self.message_type(draft);
        if !exists {
            return Err(EncodeError::Version("control message not in this draft"));
        }
        put_vi(draft, ty.code(), buf)?;
        encode_framed(buf, LengthPrefix::U16, |body| self.encode_body(draft, body))
    }

    /// Reads one control message for `draft`.
    ///
    /// [`DecodeError::Short`] until the whole message is buffered; a body
    /// that does not fill its length exactly is [`DecodeError::Invalid`].
    pub fn decode<B: Buf>(buf: &mut B, draft: Draft) -> Result<Decoded, DecodeError> {
        let ty = get_vi(buf, draft)?;
        decode_framed(buf, LengthPrefix::U16, |body| {
            let whole = body.clone();
            let first = Self::decode_body(ty, body, draft);
            if draft.request_streams() && (first.is_err() || body.has_remaining()) {
                // A deployed deviation: LARGEST_OBJECT with a length (see
                // `params::with_prefixed_locations`).
                let mut again = whole;
                let retry = params::with_prefixed_locations(|| Self::decode_body(ty, &mut again, draft));
                if let (Ok(Some(m)), false) = (retry, again.has_remaining()) {
                    *body = again;
                    return Ok(Decoded::Message(m));
                }
            }
            match first? {
                Some(m) => Ok(Decoded::Message(m)),
                None => Ok(Decoded::Unknown {
                    message_type: ty,
                    payload: body.split_to(body.len()),
                }),
            }
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Checks a hand-derived byte vector both ways, and that every strict
    /// prefix is [`DecodeError::Short`].
    pub fn check(msg: &ControlMessage, draft: Draft, expected: &[u8]) {
        let mut out = Vec::new();
        msg.encode(draft, &mut out).expect("encodes");
        assert_eq!(out, expected, "encoding of {msg:?} in {draft}");
        let mut cursor = expected;
        assert_eq!(
            ControlMessage::decode(&mut cursor, draft),
            Ok(Decoded::Message(msg.clone())),
            "{draft}"
        );
        assert!(cursor.is_empty(), "decode left bytes");
        for n in 0..expected.len() {
            let mut cursor = &expected[..n];
            assert_eq!(
                ControlMessage::decode(&mut cursor, draft),
                Err(DecodeError::Short),
                "prefix of {n} bytes in {draft}"
            );
        }
    }

    /// Encode, decode, encode again: the bytes are stable and the decoded
    /// value round-trips (fields a draft lacks are dropped by the first pass).
    pub fn round_trip(msg: &ControlMessage, draft: Draft) -> Result<(), TestCaseError> {
        let mut first = Vec::new();
        if msg.encode(draft, &mut first).is_err() {
            return Ok(());
        }
        let Ok(Decoded::Message(decoded)) = ControlMessage::decode(&mut &first[..], draft) else {
            return Err(TestCaseError::fail(format!("{msg:?} did not decode in {draft}")));
        };
        let mut second = Vec::new();
        decoded.encode(draft, &mut second).unwrap();
        prop_assert_eq!(&first, &second);
        prop_assert_eq!(
            ControlMessage::decode(&mut &second[..], draft),
            Ok(Decoded::Message(decoded))
        );
        Ok(())
    }

    /// Arbitrary bytes must not panic, and what decodes must re-encode.
    pub fn garbage(bytes: &[u8]) {
        for draft in Draft::ALL {
            if let Ok(Decoded::Message(m)) = ControlMessage::decode(&mut &bytes[..], draft) {
                let mut out = Vec::new();
                m.encode(draft, &mut out).expect("a decoded message re-encodes");
                assert_eq!(
                    ControlMessage::decode(&mut &out[..], draft),
                    Ok(Decoded::Message(m))
                );
            }
        }
    }

    // SUBSCRIBE_OK (draft-20): alias 4, LARGEST_OBJECT {5, 2}, Track
    // Properties TIMESCALE 90000 (0x08), DEFAULT_PUBLISHER_PRIORITY 64 (0x0E),
    // DEFAULT_PUBLISHER_GROUP_ORDER 2 (0x22). The texts write the Location
    // bare; @moq/net 0.3.4 with a length: both read the same.
    #[test]
    fn largest_object_bare_or_with_a_length() {
        #[rustfmt::skip]
        let bare = [0x04, 0x00, 0x0d, 0x04, 0x01, 0x09, 0x05, 0x02, 0x08, 0xc1, 0x5f, 0x90, 0x06, 0x40, 0x14, 0x02];
        #[rustfmt::skip]
        let with_length = [0x04, 0x00, 0x0e, 0x04, 0x01, 0x09, 0x02, 0x05, 0x02, 0x08, 0xc1, 0x5f, 0x90, 0x06, 0x40, 0x14, 0x02];
        let mut ok = SubscribeOk {
            track_alias: 4,
            ..Default::default()
        };
        set_location(
            &mut ok.parameters,
            MessageParameter::LargestObject.code(),
            crate::common::Location::new(5, 2),
            Draft::D20,
        )
        .unwrap();
        ok.track_extensions.set_int(0x08, 90_000);
        ok.track_extensions.set_int(0x0e, 64);
        ok.track_extensions.set_int(0x22, 2);
        check(&ControlMessage::SubscribeOk(ok.clone()), Draft::D20, &bare);
        assert_eq!(
            ControlMessage::decode(&mut &with_length[..], Draft::D20),
            Ok(Decoded::Message(ControlMessage::SubscribeOk(ok)))
        );
    }

    #[test]
    fn unknown_types() {
        // Type 0x30 with two payload bytes: unknown in every draft, skipped whole.
        for d in Draft::ALL {
            let mut c: &[u8] = &[0x30, 0x00, 0x02, 0xaa, 0xbb, 0x99];
            assert_eq!(
                ControlMessage::decode(&mut c, d),
                Ok(Decoded::Unknown {
                    message_type: 0x30,
                    payload: Bytes::from_static(&[0xaa, 0xbb])
                })
            );
            assert_eq!(c, [0x99]);
        }
        // 0x12 (SUBSCRIBE_NAMESPACE_OK) exists only in draft-14.
        let mut c: &[u8] = &[0x12, 0x00, 0x01, 0x00];
        assert!(matches!(
            ControlMessage::decode(&mut c, Draft::D15),
            Ok(Decoded::Unknown { .. })
        ));
        // A body shorter than its fields: invalid, not short.
        let mut c: &[u8] = &[0x15, 0x00, 0x00];
        assert!(matches!(
            ControlMessage::decode(&mut c, Draft::D14),
            Err(DecodeError::Invalid(_))
        ));
        // A body longer than its fields.
        let mut c: &[u8] = &[0x15, 0x00, 0x02, 0x01, 0x01];
        assert!(matches!(
            ControlMessage::decode(&mut c, Draft::D14),
            Err(DecodeError::Invalid(_))
        ));
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            garbage(&bytes);
        }

        #[test]
        fn random_bodies_never_panic(ty in 0u64..0x40, body in proptest::collection::vec(any::<u8>(), 0..48)) {
            for d in Draft::ALL {
                let mut msg = Vec::new();
                put_vi(d, ty, &mut msg).unwrap();
                msg.extend_from_slice(&(body.len() as u16).to_be_bytes());
                msg.extend_from_slice(&body);
                garbage(&msg);
            }
        }
    }
}

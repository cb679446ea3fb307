//! Hand-derived byte vectors for drafts 18 to 22, one per message whose
//! bytes changed, each checked both ways and prefix by prefix (see
//! [`super::tests::check`]). The derivations follow each draft's message
//! sections; where a vector is shared the bytes are identical in the drafts
//! listed. (Drafts 14 to 17 have theirs beside each codec.)

use bytes::Bytes;

use super::tests::check;
use super::*;
use crate::Draft::{self, *};
use crate::common::{Location, SubscriptionFilter};
use crate::namespace::TrackNamespace;

fn ns(field: &str) -> TrackNamespace {
    TrackNamespace::from_fields([field])
}

/// SUBSCRIBE ("ns"/"video", Request ID 0) with FORWARD 1, SUBSCRIBER_PRIORITY
/// 128, the filter, GROUP_ORDER descending: the parameters sorted by type,
/// each type a delta from the previous.
fn subscribe(filter: SubscriptionFilter, draft: Draft) -> ControlMessage {
    let mut parameters = Parameters::new();
    parameters.set_int(MessageParameter::Forward.code(), 1);
    parameters.set_int(MessageParameter::SubscriberPriority.code(), 128);
    set_filter(&mut parameters, filter, draft).unwrap();
    parameters.set_int(MessageParameter::GroupOrder.code(), 2);
    ControlMessage::Subscribe(Subscribe {
        namespace: ns("ns"),
        name: Bytes::from_static(b"video"),
        parameters,
        ..Default::default()
    })
}

#[test]
fn subscribe_18_to_22() {
    #[rustfmt::skip]
    let head = [
        0x00,                                   // Request ID 0 (no Required Request ID Delta from 18)
        0x01, 0x02, b'n', b's',                 // namespace ("ns")
        0x05, b'v', b'i', b'd', b'e', b'o',     // track name
        0x04,                                   // four parameters
        0x10, 0x01,                             // FORWARD (0x10) = 1, a raw byte
        0x10, 0x80,                             // delta 0x10: SUBSCRIBER_PRIORITY (0x20) = 128, a raw byte
    ];
    let group_order = [0x01, 0x02]; // delta 1: GROUP_ORDER (0x22) = 2
    let message = |filter: &[u8]| {
        let mut body = head.to_vec();
        body.extend_from_slice(filter);
        body.extend_from_slice(&group_order);
        let mut out = vec![0x03, 0x00, body.len() as u8];
        out.extend(body);
        out
    };
    // The filter (delta 1: 0x21) for "the next object": Filter Type 2 with a
    // length (18, 19); two fields 0, 0 (20, 21); Location Filter Type 5 and
    // no length (22).
    for d in [D18, D19] {
        check(
            &subscribe(SubscriptionFilter::LargestObject, d),
            d,
            &message(&[0x01, 0x01, 0x02]),
        );
    }
    for d in [D20, D21] {
        check(
            &subscribe(SubscriptionFilter::LargestObject, d),
            d,
            &message(&[0x01, 0x02, 0x00, 0x00]),
        );
    }
    check(
        &subscribe(SubscriptionFilter::LargestObject, D22),
        D22,
        &message(&[0x01, 0x05]),
    );
    // An absolute start at group 300 (vi64 0x812c): 19 says the type, 20
    // the two fields, 22 its own type.
    let at = SubscriptionFilter::AbsoluteStart(Location::new(300, 0));
    check(
        &subscribe(at, D19),
        D19,
        &message(&[0x01, 0x04, 0x03, 0x81, 0x2c, 0x00]),
    );
    check(
        &subscribe(at, D20),
        D20,
        &message(&[0x01, 0x03, 0x81, 0x2c, 0x00]),
    );
    check(
        &subscribe(at, D22),
        D22,
        &message(&[0x01, 0x02, 0x81, 0x2c, 0x00]),
    );
}

// Draft-20 "Fill Semantics": the reference's live join, SUBSCRIBE for the
// next object with FILL_PARAMETERS { LOCATION_FILTER: the current group }.
#[test]
fn subscribe_with_a_fill_20_and_22() {
    for (d, filter, fill_filter) in [
        (D20, &[0x02, 0x00, 0x00][..], &[0x01, 0x21, 0x01, 0x01][..]),
        (D22, &[0x05][..], &[0x01, 0x21, 0x01, 0x01][..]),
    ] {
        let mut parameters = Parameters::new();
        parameters.set_int(MessageParameter::Forward.code(), 1);
        parameters.set_int(MessageParameter::SubscriberPriority.code(), 128);
        set_filter(&mut parameters, SubscriptionFilter::LargestObject, d).unwrap();
        parameters.set_int(MessageParameter::GroupOrder.code(), 2);
        parameters.set_bytes(
            MessageParameter::FillParameters.code(),
            Bytes::copy_from_slice(fill_filter),
        );
        let m = ControlMessage::Subscribe(Subscribe {
            request_id: 1,
            namespace: ns("live"),
            name: Bytes::from_static(b"video"),
            parameters,
            ..Default::default()
        });
        let mut body = vec![
            0x01, 0x01, 0x04, b'l', b'i', b'v', b'e', 0x05, b'v', b'i', b'd', b'e', b'o',
        ];
        body.extend_from_slice(&[0x05, 0x10, 0x01, 0x10, 0x80, 0x01]);
        body.extend_from_slice(filter);
        body.extend_from_slice(&[0x01, 0x02]);
        // delta 1: FILL_PARAMETERS (0x23), length 4: one parameter,
        // LOCATION_FILTER, {StartGroup 1} (the same bytes in 20 and 22).
        body.extend_from_slice(&[0x01, 0x04]);
        body.extend_from_slice(fill_filter);
        let mut expected = vec![0x03, 0x00, body.len() as u8];
        expected.extend(body);
        check(&m, d, &expected);
    }
}

#[test]
fn namespace_requests_18() {
    let namespace = ControlMessage::SubscribeNamespace(SubscribeNamespace {
        request_id: 2,
        prefix: ns("ns"),
        subscribe_options: SubscribeOptions::Namespace,
        ..Default::default()
    });
    // SUBSCRIBE_NAMESPACE is 0x50 with no options; 17 wrote 0x11 with them.
    for d in [D18, D19, D20, D22] {
        check(
            &namespace,
            d,
            &[0x50, 0x00, 0x06, 0x02, 0x01, 0x02, b'n', b's', 0x00],
        );
    }
    #[rustfmt::skip]
    check(&namespace, D17, &[0x11, 0x00, 0x08, 0x02, 0x00, 0x01, 0x02, b'n', b's', 0x01, 0x00]);
    // SUBSCRIBE_TRACKS (0x51): Request ID 4, every namespace, FORWARD 0.
    let mut parameters = Parameters::new();
    parameters.set_int(MessageParameter::Forward.code(), 0);
    let tracks = ControlMessage::SubscribeNamespace(SubscribeNamespace {
        request_id: 4,
        prefix: TrackNamespace::default(),
        subscribe_options: SubscribeOptions::Publish,
        parameters,
        ..Default::default()
    });
    check(&tracks, D18, &[0x51, 0x00, 0x05, 0x04, 0x00, 0x01, 0x10, 0x00]);
    // Options "both" have no draft-18 form; 0x11 is no message there.
    let both = ControlMessage::SubscribeNamespace(SubscribeNamespace {
        subscribe_options: SubscribeOptions::Both,
        ..Default::default()
    });
    assert!(both.encode(D18, &mut Vec::new()).is_err());
    let old = [0x11, 0x00, 0x01, 0x00];
    assert!(matches!(
        ControlMessage::decode(&mut &old[..], D18),
        Ok(Decoded::Unknown {
            message_type: 0x11,
            ..
        })
    ));
}

#[test]
fn fetch_18_to_22() {
    // Draft-18 standalone: Request ID 6, ("ns")/"video", {1, 0} to the end
    // of group 2 ({2, 0}: object 0 = the whole group), SUBSCRIBER_PRIORITY
    // 64, GROUP_ORDER ascending.
    let mut parameters = Parameters::new();
    parameters.set_int(MessageParameter::SubscriberPriority.code(), 64);
    parameters.set_int(MessageParameter::GroupOrder.code(), 1);
    let standalone = ControlMessage::Fetch(Fetch {
        request_id: 6,
        fetch_type: FetchType::Standalone {
            namespace: ns("ns"),
            name: Bytes::from_static(b"video"),
            start: Location::new(1, 0),
            end: Location::new(2, 0),
        },
        parameters: parameters.clone(),
        ..Default::default()
    });
    #[rustfmt::skip]
    let d18 = [
        0x16, 0x00, 0x15,
        0x06, 0x01,                                       // Request ID 6, Standalone
        0x01, 0x02, b'n', b's', 0x05, b'v', b'i', b'd', b'e', b'o',
        0x01, 0x00, 0x02, 0x00,                           // {1, 0} .. {2, 0}
        0x02, 0x20, 0x40, 0x02, 0x01,                     // 0x20 = 64, delta 2: 0x22 = 1
    ];
    for d in [D18, D19] {
        check(&standalone, d, &d18);
    }
    assert!(standalone.encode(D20, &mut Vec::new()).is_err());
    // Draft-20: no Fetch Type; the range {1, 0} ..= {2, 0} is LOCATION_FILTER
    // with four fields (start group, object, end group delta, end object),
    // which draft-22 writes as Location Filter Type 4: the same bytes.
    let filtered = |d| {
        let mut parameters = Parameters::new();
        parameters.set_int(MessageParameter::SubscriberPriority.code(), 64);
        let range = SubscriptionFilter::AbsoluteEnd {
            start: Location::new(1, 0),
            end: Location::new(2, 0),
        };
        set_filter(&mut parameters, range, d).unwrap();
        parameters.set_int(MessageParameter::GroupOrder.code(), 1);
        ControlMessage::Fetch(Fetch {
            request_id: 3,
            fetch_type: FetchType::Filtered {
                namespace: ns("broadcast"),
                name: Bytes::from_static(b"video"),
            },
            parameters,
            ..Default::default()
        })
    };
    #[rustfmt::skip]
    let d20 = [
        0x16, 0x00, 0x1d,
        0x03,
        0x01, 0x09, b'b', b'r', b'o', b'a', b'd', b'c', b'a', b's', b't',
        0x05, b'v', b'i', b'd', b'e', b'o',
        0x03,
        0x20, 0x40,                                       // SUBSCRIBER_PRIORITY 64
        0x01, 0x04, 0x01, 0x00, 0x01, 0x00,               // LOCATION_FILTER
        0x01, 0x01,                                       // GROUP_ORDER ascending
    ];
    for d in [D20, D21, D22] {
        check(&filtered(d), d, &d20);
    }
    // FETCH_OK: not the end of the track, the last object {2, 0} (inclusive
    // from 20; 19 said {2, 1}), no parameters, no properties.
    let ok = |end| {
        ControlMessage::FetchOk(FetchOk {
            end_location: end,
            ..Default::default()
        })
    };
    check(
        &ok(Location::new(2, 0)),
        D22,
        &[0x18, 0x00, 0x04, 0x00, 0x02, 0x00, 0x00],
    );
    check(
        &ok(Location::new(2, 1)),
        D19,
        &[0x18, 0x00, 0x04, 0x00, 0x02, 0x01, 0x00],
    );
}

#[test]
fn session_messages_19_to_22() {
    // GOAWAY loses draft-18's Request ID: empty URI, Timeout 5000.
    let goaway = ControlMessage::GoAway(GoAway {
        uri: String::new(),
        timeout: 5000,
        request_id: None,
    });
    for d in [D19, D20, D22] {
        check(&goaway, d, &[0x10, 0x00, 0x03, 0x00, 0x93, 0x88]);
    }
    // SETUP with draft-19's MAX_FILTER_RANGES (0x06) 4, MOQT_IMPLEMENTATION
    // "x", MAX_REQUEST_UPDATES (0x08) 8: options we do not act on are kept,
    // never refused.
    let mut options = crate::kvp::KeyValuePairs::new();
    options.set_int(0x06, 4);
    options.set_bytes(0x07, Bytes::from_static(b"x"));
    options.set_int(0x08, 8);
    let setup = ControlMessage::Setup(Setup { options });
    check(
        &setup,
        D19,
        &[0xaf, 0x00, 0x00, 0x07, 0x06, 0x04, 0x01, 0x01, b'x', 0x01, 0x08],
    );
    // PUBLISH_SKIPPED (draft-19's name for PUBLISH_BLOCKED): ("cam")/"video".
    let skipped = ControlMessage::PublishBlocked(PublishBlocked {
        suffix: ns("cam"),
        name: Bytes::from_static(b"video"),
    });
    #[rustfmt::skip]
    check(&skipped, D19, &[0x0f, 0x00, 0x0b, 0x01, 0x03, b'c', b'a', b'm', 0x05, b'v', b'i', b'd', b'e', b'o']);
    // PUBLISH_STATE_NOTIFY (draft-20): LARGEST_OBJECT {9, 0}, FORWARD 0.
    let mut parameters = Parameters::new();
    set_location(
        &mut parameters,
        MessageParameter::LargestObject.code(),
        Location::new(9, 0),
        D20,
    )
    .unwrap();
    parameters.set_int(MessageParameter::Forward.code(), 0);
    let notify = ControlMessage::PublishStateNotify(PublishStateNotify { parameters });
    for d in [D20, D22] {
        check(
            &notify,
            d,
            &[0x22, 0x00, 0x06, 0x02, 0x09, 0x09, 0x00, 0x07, 0x00],
        );
    }
    assert!(notify.encode(D19, &mut Vec::new()).is_err());
    // PUBLISH_DONE's statuses keep their numbers on the wire; 18 swapped
    // what 0x5 and 0x6 mean, and we send neither.
    let done = ControlMessage::PublishDone(PublishDone {
        status_code: 0x2,
        stream_count: 3,
        ..Default::default()
    });
    for d in [D18, D20, D22] {
        check(&done, d, &[0x0b, 0x00, 0x03, 0x02, 0x03, 0x00]);
    }
}

//! Helpers shared by the session tests: loopback endpoints, sessions
//! through the unified entry point, and a raw draft client.
#![allow(dead_code, unused_imports)]

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use moq_lite::SessionConfig;
use moq_lite::endpoint::{Client, ClientConfig, ClientTls, Server, ServerConfig, ServerTls};
use moq_lite::model::{OriginProducer, Path, Track, TrackConsumer, TrackProducer};
use moq_transport_compat::control::{
    ClientSetup, ControlMessage, Decoded, Fetch, FetchType, PublishNamespace, SetupParameter, Subscribe,
};
use moq_transport_compat::data::{
    FetchItem, FetchReader, ObjectContent, StreamHeader, SubgroupHeader, SubgroupId, SubgroupObject,
    SubgroupWriter,
};
use moq_transport_compat::ietf::SessionError;
use moq_transport_compat::ietf::stream::{MAX_OBJECT_BUFFERED, Reader, Writer};
use moq_transport_compat::{
    Draft, KeyValuePairs, Location, Session, SubscriptionFilter, TrackNamespace, Version,
};
use url::Url;

pub const LIMIT: Duration = Duration::from_secs(20);

pub type Quinn = moq_lite::endpoint::QuicSession;

pub fn server(protocols: &[&str]) -> Server {
    Server::bind(ServerConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        tls: ServerTls {
            generate: vec!["localhost".into(), "127.0.0.1".into()],
            ..Default::default()
        },
        protocols: protocols.iter().map(|p| p.to_string()).collect(),
        ..Default::default()
    })
    .expect("server binds")
}

/// moq-lite's loopback test endpoints, shared.
#[path = "../../../moq-lite/tests/support/loopback.rs"]
pub mod loopback;

pub fn client(server: &Server, protocols: &[&str]) -> Client {
    loopback::client_offering(server, protocols)
}

pub fn url(server: &Server, scheme: &str) -> Url {
    Url::parse(&format!(
        "{scheme}://127.0.0.1:{}/",
        server.local_addr().unwrap().port()
    ))
    .unwrap()
}

/// Raw transports: (server side, client side).
pub async fn transports(server: &Server, client: &Client, scheme: &str) -> (Quinn, Quinn) {
    let url = url(server, scheme);
    let accept = async {
        server
            .accept()
            .await
            .unwrap()
            .accept()
            .await
            .expect("handshake")
            .session
    };
    let connect = async { client.connect(&url).await.expect("connects").session };
    tokio::join!(accept, connect)
}

/// A server and a client session through the unified entry point.
pub async fn pair(
    scheme: &str,
    protocols: &[&str],
    server_config: SessionConfig,
    client_config: SessionConfig,
) -> (Session, Session, (Client, Server)) {
    let srv = server(moq_transport_compat::ALL_PROTOCOLS);
    let cli = client(&srv, protocols);
    let (s, c) = transports(&srv, &cli, scheme).await;
    let (server, client) = tokio::join!(
        moq_transport_compat::accept(s, server_config),
        moq_transport_compat::connect(c, client_config)
    );
    (
        server.expect("server session"),
        client.expect("client session"),
        (cli, srv),
    )
}

pub fn publish(origin: &OriginProducer) -> SessionConfig {
    SessionConfig {
        publish: Some(origin.consume()),
        ..Default::default()
    }
}

pub fn subscribe(origin: &OriginProducer) -> SessionConfig {
    SessionConfig {
        subscribe: Some(origin.clone()),
        ..Default::default()
    }
}

pub async fn subscribe_track(origin: &OriginProducer, path: &str, track: &str) -> TrackConsumer {
    let mut announced = origin.consume();
    loop {
        let next = announced.announced().await.expect("origin open");
        if next.path == Path::new(path) {
            if let Some(broadcast) = next.broadcast {
                return broadcast.subscribe_track(&Track::new(track)).expect("subscribes");
            }
        }
    }
}

pub fn object(group: u64, index: u64) -> Bytes {
    let size = (group as usize * 7919 + index as usize * 10_007) % 30_000 + 1;
    Bytes::from(vec![
        (group as u8).wrapping_mul(31).wrapping_add(index as u8);
        size
    ])
}

/// Waits until someone consumes `track` (the SUBSCRIBE arrived).
pub async fn until_consumed(track: &TrackProducer, at_least: usize) {
    while track.consumer_count() < at_least {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub fn write_groups(track: &mut TrackProducer, groups: u64) {
    for g in 0..groups {
        let mut group = track.create_group(g).unwrap();
        for o in 0..5 {
            group.write_frame(object(g, o)).unwrap();
        }
        group.finish().unwrap();
    }
}

pub async fn read_groups(track: &mut TrackConsumer, count: usize) -> BTreeMap<u64, Vec<Bytes>> {
    let mut groups = BTreeMap::new();
    while groups.len() < count {
        let mut group = track.next_group().await.expect("no error").expect("track open");
        let mut frames = Vec::new();
        while let Some(frame) = group.read_frame().await.expect("group intact") {
            frames.push(frame);
        }
        groups.insert(group.sequence(), frames);
    }
    groups
}

pub fn check_groups(groups: &BTreeMap<u64, Vec<Bytes>>) {
    assert_eq!(groups.len(), 3);
    for (g, frames) in groups {
        assert_eq!(frames.len(), 5, "group {g}");
        for (o, frame) in frames.iter().enumerate() {
            assert_eq!(frame, &object(*g, o as u64), "group {g} object {o}");
        }
    }
}

/// A raw draft client: the control stream, spoken by hand.
pub struct Raw {
    pub draft: Draft,
    pub session: Quinn,
    pub writer: Writer<<Quinn as web_transport_trait::Session>::SendStream>,
    pub reader: Reader<<Quinn as web_transport_trait::Session>::RecvStream>,
}

impl Raw {
    pub async fn connect(session: Quinn, draft: Draft) -> Raw {
        let (send, recv) = web_transport_trait::Session::open_bi(&session).await.unwrap();
        let mut raw = Raw {
            draft,
            session,
            writer: Writer::new(send),
            reader: Reader::new(recv),
        };
        let mut parameters = KeyValuePairs::new();
        parameters.set_int(SetupParameter::MaxRequestId.code(), 100);
        raw.send(ControlMessage::ClientSetup(ClientSetup {
            versions: draft.setup_code().into_iter().collect(),
            parameters,
        }))
        .await;
        let reply = raw.recv().await;
        let ControlMessage::ServerSetup(setup) = reply else {
            panic!("expected SERVER_SETUP, got {reply:?}");
        };
        // We must be allowed to make requests.
        assert!(
            setup
                .parameters
                .get_int(SetupParameter::MaxRequestId.code())
                .unwrap()
                > 0
        );
        raw
    }

    pub async fn send(&mut self, msg: ControlMessage) {
        let draft = self.draft;
        self.writer.encode(|b| msg.encode(draft, b)).await.unwrap();
    }

    /// The next control message other than PUBLISH_NAMESPACE / MAX_REQUEST_ID.
    pub async fn recv(&mut self) -> ControlMessage {
        let draft = self.draft;
        loop {
            let msg = self
                .reader
                .decode_required(|b| ControlMessage::decode(b, draft))
                .await
                .unwrap();
            match msg {
                Decoded::Message(ControlMessage::PublishNamespace(_) | ControlMessage::MaxRequestId(_)) => {}
                Decoded::Message(m) => return m,
                Decoded::Unknown { message_type, .. } => panic!("unknown message {message_type:#x}"),
            }
        }
    }
}

pub fn subscribe_msg(
    request_id: u64,
    ns: &str,
    name: &str,
    filter: SubscriptionFilter,
    draft: Draft,
) -> ControlMessage {
    let mut parameters = KeyValuePairs::new();
    if draft > Draft::D14 {
        moq_transport_compat::control::set_filter(&mut parameters, filter, draft).unwrap();
    }
    ControlMessage::Subscribe(Subscribe {
        request_id,
        required_request_id_delta: 0,
        namespace: TrackNamespace::from_path(&Path::new(ns)).unwrap(),
        name: Bytes::from(name.to_string()),
        subscriber_priority: 0,
        group_order: 0,
        forward: true,
        filter,
        parameters,
    })
}

pub async fn raw_pair(draft: Draft, server_config: SessionConfig) -> (Raw, Session, (Client, Server)) {
    let srv = server(moq_transport_compat::ALL_PROTOCOLS);
    let cli = client(&srv, &[draft.alpn()]);
    let (s, c) = transports(&srv, &cli, "moqt").await;
    let (server, raw) = tokio::join!(
        moq_transport_compat::accept(s, server_config),
        Raw::connect(c, draft)
    );
    (raw, server.unwrap(), (cli, srv))
}

/// A relay-like session config: one origin served both ways.
pub fn relay_config(origin: &OriginProducer) -> SessionConfig {
    SessionConfig {
        publish: Some(origin.consume()),
        subscribe: Some(origin.clone()),
        ..Default::default()
    }
}

/// Reads subgroup streams for `alias` until `groups` of them were read
/// (streams of other aliases and FETCH streams are read and dropped); returns
/// (group, [(object id, payload)]) in arrival order.
pub async fn read_subgroups(raw: &Raw, alias: u64, groups: usize) -> Vec<(u64, Vec<(u64, Bytes)>)> {
    let draft = raw.draft;
    let mut out = Vec::new();
    while out.len() < groups {
        let recv = raw.session.accept_uni().await.unwrap();
        let mut reader = Reader::new(recv).with_max_buffered(MAX_OBJECT_BUFFERED);
        let header = reader
            .decode_required(|b| StreamHeader::decode(b, draft))
            .await
            .unwrap();
        let StreamHeader::Subgroup(header) = header else {
            continue;
        };
        if header.track_alias != alias {
            continue;
        }
        let mut objects = moq_transport_compat::data::SubgroupReader::new(&header);
        let mut frames = Vec::new();
        while let Some(obj) = reader.decode(|b| objects.decode(b, draft)).await.unwrap() {
            if let ObjectContent::Payload(p) = obj.content {
                frames.push((obj.object_id, p));
            }
        }
        out.push((header.group_id, frames));
    }
    out
}

/// The objects `first..5` of group `g`, as [`read_subgroups`] returns them.
pub fn expected_objects(g: u64, first: u64) -> Vec<(u64, Bytes)> {
    (first..5).map(|o| (o, object(g, o))).collect()
}

/// One draft-17 request stream, spoken by hand.
pub type Stream17 = (
    Writer<<Quinn as web_transport_trait::Session>::SendStream>,
    Reader<<Quinn as web_transport_trait::Session>::RecvStream>,
);

/// A raw draft-17+ endpoint (either role): SETUP on its unidirectional
/// control stream, then one bidirectional stream per request.
pub struct Raw17 {
    pub draft: Draft,
    pub session: Quinn,
    pub control: Writer<<Quinn as web_transport_trait::Session>::SendStream>,
    pub peer_control: Reader<<Quinn as web_transport_trait::Session>::RecvStream>,
}

impl Raw17 {
    pub async fn setup(session: Quinn) -> Raw17 {
        Self::setup_at(session, Draft::D17).await
    }

    /// SETUP both ways for `draft` (17 or later).
    pub async fn setup_at(session: Quinn, draft: Draft) -> Raw17 {
        use web_transport_trait::Session as _;
        let send = session.open_uni().await.unwrap();
        let mut control = Writer::new(send);
        let setup = ControlMessage::Setup(moq_transport_compat::control::Setup {
            options: KeyValuePairs::new(),
        });
        control.encode(|b| setup.encode(draft, b)).await.unwrap();
        let recv = session.accept_uni().await.unwrap();
        let mut peer_control = Reader::new(recv);
        let msg = peer_control
            .decode_required(|b| ControlMessage::decode(b, draft))
            .await
            .unwrap();
        assert!(
            matches!(msg, Decoded::Message(ControlMessage::Setup(_))),
            "{msg:?}"
        );
        Raw17 {
            draft,
            session,
            control,
            peer_control,
        }
    }

    /// Opens a request stream with `msg`.
    pub async fn request(&self, msg: ControlMessage) -> Stream17 {
        use web_transport_trait::Session as _;
        let (send, recv) = self.session.open_bi().await.unwrap();
        let mut stream = (Writer::new(send), Reader::new(recv));
        send_at(&mut stream, msg, self.draft).await;
        stream
    }
}

pub async fn send17(stream: &mut Stream17, msg: ControlMessage) {
    send_at(stream, msg, Draft::D17).await
}

/// Writes `msg` for `draft` on a request stream.
pub async fn send_at(stream: &mut Stream17, msg: ControlMessage, draft: Draft) {
    stream.0.encode(|b| msg.encode(draft, b)).await.unwrap();
}

/// The next message on a request stream; `None` at its end.
pub async fn recv17(stream: &mut Stream17) -> Option<ControlMessage> {
    recv_at(stream, Draft::D17).await
}

/// The next `draft` message on a request stream; `None` at its end.
pub async fn recv_at(stream: &mut Stream17, draft: Draft) -> Option<ControlMessage> {
    match stream
        .1
        .decode(|b| ControlMessage::decode(b, draft))
        .await
        .unwrap()
    {
        None => None,
        Some(Decoded::Message(m)) => Some(m),
        Some(Decoded::Unknown { message_type, .. }) => panic!("unknown message {message_type:#x}"),
    }
}

/// A raw draft-17 client against our server.
pub async fn raw17_pair(server_config: SessionConfig) -> (Raw17, Session, (Client, Server)) {
    raw17_pair_at(server_config, Draft::D17).await
}

/// A raw client of `draft` (17 or later) against our server.
pub async fn raw17_pair_at(server_config: SessionConfig, draft: Draft) -> (Raw17, Session, (Client, Server)) {
    let srv = server(moq_transport_compat::ALL_PROTOCOLS);
    let cli = client(&srv, &[draft.alpn()]);
    let (s, c) = transports(&srv, &cli, "moqt").await;
    let (server, raw) = tokio::join!(
        moq_transport_compat::accept(s, server_config),
        Raw17::setup_at(c, draft)
    );
    (raw, server.unwrap(), (cli, srv))
}

/// The next request stream the server opens with a PUBLISH: the stream,
/// the PUBLISH, and the other request streams opened before it (kept open).
pub async fn accept_publish_at(
    session: &Quinn,
    draft: Draft,
) -> (Stream17, moq_transport_compat::control::Publish, Vec<Stream17>) {
    use web_transport_trait::Session as _;
    let mut others = Vec::new();
    loop {
        let (send, recv) = session.accept_bi().await.unwrap();
        let mut stream = (Writer::new(send), Reader::new(recv));
        match recv_at(&mut stream, draft).await {
            Some(ControlMessage::Publish(publish)) => return (stream, publish, others),
            _ => others.push(stream),
        }
    }
}

/// The track alias of the next subgroup stream the server opens.
pub async fn read_subgroup_alias_at(session: &Quinn, draft: Draft) -> u64 {
    use web_transport_trait::Session as _;
    loop {
        let recv = session.accept_uni().await.unwrap();
        let mut reader = Reader::new(recv).with_max_buffered(MAX_OBJECT_BUFFERED);
        let header = reader
            .decode_required(|b| StreamHeader::decode(b, draft))
            .await
            .unwrap();
        if let StreamHeader::Subgroup(h) = header {
            return h.track_alias;
        }
    }
}

pub fn ns(path: &str) -> TrackNamespace {
    TrackNamespace::from_path(&Path::new(path)).unwrap()
}

/// A relay origin holding "cache/x" track "t" with groups 0..3 of 5 objects.
pub fn cached_origin() -> (
    OriginProducer,
    moq_lite::model::BroadcastProducer,
    moq_lite::model::TrackProducer,
) {
    let origin = OriginProducer::new();
    let broadcast = origin.create_broadcast("cache/x").unwrap();
    let mut track = broadcast.create_track(Track::new("t"));
    write_groups(&mut track, 3);
    (origin, broadcast, track)
}

/// How the server session ended (it must end soon).
pub async fn server_closed(server: &Session) -> SessionError {
    let Session::Ietf(ietf) = server else {
        panic!("not IETF")
    };
    tokio::time::timeout(Duration::from_secs(5), ietf.closed_ietf())
        .await
        .expect("the server closed the session")
}

pub async fn server_stays_up(server: &Session) {
    let Session::Ietf(ietf) = server else {
        panic!("not IETF")
    };
    let closed = tokio::time::timeout(Duration::from_millis(300), ietf.closed_ietf()).await;
    assert!(closed.is_err(), "the session stayed up: {closed:?}");
}

/// Reads one FETCH stream's objects.
pub async fn read_fetch(raw: &Raw) -> Vec<(u64, u64, Bytes)> {
    read_fetch_at(&raw.session, raw.draft).await.1
}

/// Reads the next FETCH stream (ascending) the server opens: its Request ID
/// and its objects.
pub async fn read_fetch_at(session: &Quinn, draft: Draft) -> (u64, Vec<(u64, u64, Bytes)>) {
    // Skip the subscription's data streams.
    let (id, mut reader) = loop {
        let recv = web_transport_trait::Session::accept_uni(session).await.unwrap();
        let mut reader = Reader::new(recv).with_max_buffered(MAX_OBJECT_BUFFERED);
        let header = reader
            .decode_required(|b| StreamHeader::decode(b, draft))
            .await
            .unwrap();
        if let StreamHeader::Fetch(h) = header {
            break (h.request_id, reader);
        }
    };
    let mut fetch = FetchReader::new();
    let mut out = Vec::new();
    while let Some(item) = reader.decode(|b| fetch.decode(b, draft)).await.unwrap() {
        let FetchItem::Object(obj) = item else { continue };
        let ObjectContent::Payload(p) = obj.content else {
            continue;
        };
        out.push((obj.group_id, obj.object_id, p));
    }
    (id, out)
}

/// Reads the SUBSCRIBE our server sends a raw publisher and accepts it
/// with track alias `alias`; returns the SUBSCRIBE.
pub async fn accept_subscribe(raw: &mut Raw, alias: u64) -> Subscribe {
    let reply = raw.recv().await;
    let ControlMessage::Subscribe(sub) = reply else {
        panic!("{reply:?}")
    };
    raw.send(ControlMessage::SubscribeOk(
        moq_transport_compat::control::SubscribeOk {
            request_id: sub.request_id,
            track_alias: alias,
            group_order: 1,
            ..Default::default()
        },
    ))
    .await;
    sub
}

/// Writes `objects` objects of group `group` on one sub-group 0 stream.
pub async fn write_subgroup(raw: &Raw, alias: u64, group: u64, objects: u64) {
    let draft = raw.draft;
    let send = web_transport_trait::Session::open_uni(&raw.session)
        .await
        .unwrap();
    let mut writer = Writer::new(send);
    let header = SubgroupHeader {
        first_object: true,
        track_alias: alias,
        group_id: group,
        subgroup_id: SubgroupId::Zero,
        publisher_priority: Some(0),
        extensions: false,
        end_of_group: false,
    };
    let mut encoder = SubgroupWriter::new(&header);
    writer.encode(|b| header.encode(draft, b)).await.unwrap();
    for o in 0..objects {
        let obj = SubgroupObject {
            object_id: o,
            extensions: KeyValuePairs::new(),
            content: ObjectContent::Payload(object(group, o)),
        };
        writer.encode(|b| encoder.encode(&obj, draft, b)).await.unwrap();
    }
    writer.finish().unwrap();
}

//! One entry point for lite and IETF peers alike.
//!
//! [`accept`] / [`connect`] look at the negotiated protocol (TLS ALPN or
//! WebTransport protocol): `moq-lite-04` / `moq-lite-03` run moq-lite;
//! `moqt-22` .. `moqt-15` / `moq-00` run the IETF session; `moql` or no
//! protocol means the SETUP path, where CLIENT_SETUP's versions choose
//! between moq-lite-02 / -01 and draft-14 (0xff00000e). The result is one
//! [`Session`] handle, so applications never branch on the protocol.

use bytes::{Bytes, BytesMut};
use moq_lite::SessionConfig;
use moq_lite::lite::{SETUP_ALPN, Version as LiteVersion};
use web_transport_trait::Session as Transport;

use crate::Draft;
use crate::control::{ClientSetup, ControlMessage, Decoded, ServerSetup, SetupParameter};
use crate::ietf;
use crate::ietf::stream::{Reader, Writer};

/// Every protocol string we speak, in the order a client offers them: the
/// tokens of [`crate::protocols::VERSIONS`] (checked by a test there).
pub const ALL_PROTOCOLS: &[&str] = &[
    "moq-lite-06",
    "moq-lite-05",
    "moq-lite-04",
    "moq-lite-03",
    "moql",
    "moqt-22",
    "moqt-21",
    "moqt-20",
    "moqt-19",
    "moqt-18",
    "moqt-17",
    "moqt-16",
    "moqt-15",
    "moq-00",
];

/// The protocol strings of the IETF drafts this crate's session speaks.
pub const IETF_PROTOCOLS: &[&str] = &[
    "moqt-22", "moqt-21", "moqt-20", "moqt-19", "moqt-18", "moqt-17", "moqt-16", "moqt-15", "moq-00",
];

/// [`ALL_PROTOCOLS`] as owned strings, for `ClientConfig::protocols` /
/// `ServerConfig::protocols`.
pub fn supported_protocols() -> Vec<String> {
    crate::protocols::alpns()
        .into_iter()
        .map(str::to_string)
        .collect()
}

/// The negotiated protocol of a [`Session`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// moq-lite.
    Lite(LiteVersion),
    /// IETF moq-transport.
    Ietf(Draft),
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Version::Lite(v) => write!(f, "{v:?}"),
            Version::Ietf(d) => write!(f, "{d}"),
        }
    }
}

/// A running session of either protocol. Dropping it closes the connection.
#[derive(Debug)]
pub enum Session {
    /// A moq-lite session.
    Lite(moq_lite::Session),
    /// An IETF moq-transport session.
    Ietf(ietf::Session),
}

impl Session {
    /// The negotiated version.
    pub fn version(&self) -> Version {
        match self {
            Session::Lite(s) => Version::Lite(s.version()),
            Session::Ietf(s) => Version::Ietf(s.draft()),
        }
    }

    /// Closes the session with `err`.
    pub fn close(&self, err: moq_lite::Error) {
        match self {
            Session::Lite(s) => s.close(err),
            Session::Ietf(s) => s.close(err),
        }
    }

    /// Waits until the session ends, and says why.
    pub async fn closed(&self) -> moq_lite::Error {
        match self {
            Session::Lite(s) => s.closed().await,
            Session::Ietf(s) => s.closed().await,
        }
    }

    /// What the session carried (frames, bytes and groups each way, the
    /// subscriptions the peer holds on us), whichever the protocol.
    pub fn stats(&self) -> std::sync::Arc<moq_lite::SessionStats> {
        match self {
            Session::Lite(s) => s.stats(),
            Session::Ietf(s) => s.stats(),
        }
    }

    /// Waits until the peer refuses what we publish, and says which path
    /// and why. IETF peers answer each PUBLISH_NAMESPACE (REQUEST_ERROR:
    /// UNAUTHORIZED, UNINTERESTED, ...); a moq-lite peer can only end the
    /// Announce stream (see [`moq_lite::Session::refused`]).
    pub async fn refused(&self) -> (moq_lite::model::Path, moq_lite::Error) {
        match self {
            Session::Lite(s) => s.refused().await,
            Session::Ietf(s) => s.refused().await,
        }
    }

    /// Asks the peer to go away (GOAWAY in either protocol), optionally to
    /// `uri`; the session stays usable until closed.
    pub async fn goaway(&self, uri: &str) -> Result<(), moq_lite::Error> {
        match self {
            Session::Lite(s) => s.goaway(uri).await,
            Session::Ietf(s) => {
                s.goaway(uri);
                Ok(())
            }
        }
    }
}

enum Negotiated {
    Lite,
    Ietf(Draft),
    Setup,
}

fn negotiated<T: Transport>(transport: &T) -> Result<Negotiated, moq_lite::Error> {
    match transport.protocol() {
        None | Some(SETUP_ALPN) => Ok(Negotiated::Setup),
        Some(p) if LiteVersion::from_alpn(p).is_some() => Ok(Negotiated::Lite),
        Some(p) => match Draft::from_alpn(p) {
            None => {
                transport.close(moq_lite::Error::UnknownAlpn.code(), "unsupported protocol");
                Err(moq_lite::Error::UnknownAlpn)
            }
            Some(d) => Ok(Negotiated::Ietf(d)),
        },
    }
}

/// Serves an accepted connection with whichever protocol was negotiated.
/// The relay calls this (or [`handshake`], to see the client's PATH first)
/// once per connection.
pub async fn accept<T: Transport>(transport: T, config: SessionConfig) -> Result<Session, moq_lite::Error> {
    handshake(transport).await?.start(config).await
}

/// The server's side of negotiation and SETUP, before the session starts:
/// for a client over raw QUIC, the PATH it sent in SETUP (the path and
/// query of the URL it dialled; raw QUIC has no request line) can then
/// choose the session's root and check its token.
pub async fn handshake<T: Transport>(transport: T) -> Result<Handshake<T>, moq_lite::Error> {
    let pending = match negotiated(&transport)? {
        Negotiated::Lite => {
            let alpn = transport.protocol().unwrap_or_default();
            let version = LiteVersion::from_alpn(alpn).ok_or(moq_lite::Error::UnknownAlpn)?;
            if version.has_setup_stream() {
                // -05+: the client's SETUP comes first; its Path is the root on raw QUIC.
                match moq_lite::read_setup(&transport, version).await {
                    Ok(setup) => Pending::LiteSetupStream(setup),
                    Err(err) => {
                        transport.close(err.code(), &err.to_string());
                        return Err(err);
                    }
                }
            } else {
                Pending::Lite(version)
            }
        }
        Negotiated::Ietf(draft) => Pending::Ietf(ietf::Session::handshake(transport.clone(), draft).await?),
        Negotiated::Setup => match accept_setup(&transport).await {
            Ok(pending) => pending,
            Err(err) => {
                transport.close(err.code(), &err.to_string());
                return Err(err);
            }
        },
    };
    Ok(Handshake { transport, pending })
}

/// A connection whose protocol is settled and whose SETUP (if any) is
/// answered; [`Handshake::start`] runs the session.
pub struct Handshake<T: Transport> {
    transport: T,
    pending: Pending<T>,
}

enum Pending<T: Transport> {
    /// moq-lite by ALPN / WebTransport protocol: nothing exchanged yet.
    Lite(LiteVersion),
    /// moq-lite-02 / -01 through the SETUP path: SERVER_SETUP sent.
    LiteSetup {
        version: LiteVersion,
        send: T::SendStream,
        recv: T::RecvStream,
        path: Option<String>,
    },
    /// moq-lite-05+ by ALPN: the client's SETUP read, ours not sent yet.
    LiteSetupStream(moq_lite::lite::Setup),
    /// An IETF draft.
    Ietf(ietf::ServerHandshake<T>),
}

impl<T: Transport> Handshake<T> {
    /// The negotiated version.
    pub fn version(&self) -> Version {
        match &self.pending {
            Pending::Lite(version) | Pending::LiteSetup { version, .. } => Version::Lite(*version),
            Pending::LiteSetupStream(_) => match self.transport.protocol().and_then(LiteVersion::from_alpn) {
                Some(version) => Version::Lite(version),
                None => Version::Lite(LiteVersion::ALL[0]),
            },
            Pending::Ietf(h) => Version::Ietf(h.draft()),
        }
    }

    /// The PATH parameter of the client's SETUP (drafts 14 to 17, and the
    /// moq-lite SETUP path, which uses draft-14 parameters), if it sent one.
    pub fn path(&self) -> Option<&str> {
        match &self.pending {
            Pending::Lite(_) => None,
            Pending::LiteSetup { path, .. } => path.as_deref(),
            Pending::LiteSetupStream(setup) => setup.path.as_deref(),
            Pending::Ietf(h) => h.path(),
        }
    }

    /// Refuses the session: closes the connection with `err` spelled as the
    /// negotiated protocol spells it (moq-lite's codes, or an IETF session
    /// termination code such as UNAUTHORIZED 0x2), so the peer reads why.
    pub fn refuse(self, err: moq_lite::Error) {
        let (code, reason) = match &self.pending {
            Pending::Ietf(_) => {
                let err = ietf::SessionError::from_lite(err);
                (err.code.code() as u32, err.reason)
            }
            // moq-lite-05+ peers read moq-net 0.3's session close registry.
            _ => match self.version() {
                Version::Lite(v) => (
                    moq_lite::Codes::for_version(v).session_out(err.code()),
                    err.to_string(),
                ),
                Version::Ietf(_) => (err.code(), err.to_string()),
            },
        };
        self.transport.close(code, &reason);
    }

    /// Runs the session with `config`.
    pub async fn start(self, config: SessionConfig) -> Result<Session, moq_lite::Error> {
        match self.pending {
            Pending::Lite(_) => Ok(Session::Lite(
                moq_lite::Session::accept_with(self.transport, config).await?,
            )),
            Pending::LiteSetupStream(setup) => Ok(Session::Lite(moq_lite::Session::accept_after_setup(
                self.transport,
                config,
                setup,
            )?)),
            Pending::LiteSetup {
                version, send, recv, ..
            } => Ok(Session::Lite(moq_lite::Session::start_after_setup(
                self.transport,
                version,
                send,
                recv,
                config,
            )?)),
            Pending::Ietf(h) => Ok(Session::Ietf(h.start(config))),
        }
    }
}

/// The SETUP path, server side: CLIENT_SETUP picks lite-02/01 or draft-14.
async fn accept_setup<T: Transport>(transport: &T) -> Result<Pending<T>, moq_lite::Error> {
    let (send, recv) = transport.accept_bi().await.map_err(ietf_transport)?;
    let mut writer = Writer::new(send);
    let mut reader = Reader::new(recv);
    let raw = read_setup_message(&mut reader).await.map_err(stream_err)?;
    let setup = match ControlMessage::decode(&mut raw.clone(), Draft::D14) {
        Ok(Decoded::Message(ControlMessage::ClientSetup(setup))) => setup,
        Ok(_) => return Err(moq_lite::Error::UnexpectedStream),
        Err(_) => return Err(moq_lite::Error::Decode),
    };
    match crate::protocols::pick_setup(&setup.versions) {
        None => Err(moq_lite::Error::Version),
        Some(Version::Ietf(draft)) => {
            let handshake =
                ietf::Session::handshake_after_setup(transport.clone(), draft, (writer, reader), setup);
            Ok(Pending::Ietf(handshake.await?))
        }
        Some(Version::Lite(version)) => {
            let reply = ServerSetup {
                version: version.code(),
                parameters: Default::default(),
            };
            writer
                .encode(|b| ControlMessage::ServerSetup(reply).encode(Draft::D14, b))
                .await
                .map_err(stream_err)?;
            Ok(Pending::LiteSetup {
                version,
                send: writer.into_inner().ok_or(moq_lite::Error::Closed)?,
                recv: reader.into_inner(),
                path: ietf::client_path(&setup.parameters),
            })
        }
    }
}

/// Connects a client session with whichever protocol was negotiated. On the
/// SETUP path the client offers moq-lite-02, moq-lite-01 and draft-14.
pub async fn connect<T: Transport>(transport: T, config: SessionConfig) -> Result<Session, moq_lite::Error> {
    match negotiated(&transport)? {
        Negotiated::Lite => Ok(Session::Lite(
            moq_lite::Session::connect_with(transport, config).await?,
        )),
        Negotiated::Ietf(draft) => Ok(Session::Ietf(
            ietf::Session::connect(transport, draft, config).await?,
        )),
        Negotiated::Setup => connect_setup(transport, config).await,
    }
}

async fn connect_setup<T: Transport>(
    transport: T,
    config: SessionConfig,
) -> Result<Session, moq_lite::Error> {
    let (send, recv) = transport.open_bi().await.map_err(ietf_transport)?;
    let mut writer = Writer::new(send);
    let mut reader = Reader::new(recv);
    let versions = crate::protocols::setup_versions()
        .into_iter()
        .filter_map(Version::setup_code)
        .collect();
    let mut parameters = setup_params_d14();
    if let Some(url) = &config.raw_quic_url {
        ietf::uri_params(url, &mut parameters);
    }
    let setup = ClientSetup { versions, parameters };
    writer
        .encode(|b| ControlMessage::ClientSetup(setup).encode(Draft::D14, b))
        .await
        .map_err(stream_err)?;
    let raw = match read_setup_message(&mut reader).await {
        Ok(raw) => raw,
        Err(ietf::stream::StreamError::Closed(_)) => return Err(refused_on_setup_path(&transport).await),
        Err(err) => return Err(stream_err(err)),
    };
    let reply = match ControlMessage::decode(&mut raw.clone(), Draft::D14) {
        Ok(Decoded::Message(ControlMessage::ServerSetup(reply))) => reply,
        _ => return Err(moq_lite::Error::ProtocolViolation),
    };
    let version = match crate::protocols::pick_setup(&[reply.version]) {
        Some(Version::Ietf(draft)) => {
            let session = ietf::Session::connected(transport, draft, (writer, reader), reply, config)?;
            return Ok(Session::Ietf(session));
        }
        Some(Version::Lite(version)) => version,
        None => return Err(moq_lite::Error::Version),
    };
    let send = writer.into_inner().ok_or(moq_lite::Error::Closed)?;
    let session =
        moq_lite::Session::start_after_setup(transport, version, send, reader.into_inner(), config)?;
    Ok(Session::Lite(session))
}

/// Draft-14 setup parameters (a lite server ignores them).
fn setup_params_d14() -> crate::KeyValuePairs {
    let mut p = crate::KeyValuePairs::new();
    p.set_int(SetupParameter::MaxRequestId.code(), 1024);
    p
}

/// Why a server closed the connection before its SERVER_SETUP arrived. The
/// version is not known yet, so the close code is read in moq-lite's table:
/// `moql` and the SETUP path are moq-lite's (a relay refusing a token there
/// says Unauthorized, 6, which the IETF table does not have).
async fn refused_on_setup_path<T: Transport>(transport: &T) -> moq_lite::Error {
    use web_transport_trait::Error as _;
    let closed = tokio::time::timeout(std::time::Duration::from_secs(1), transport.closed()).await;
    match closed.ok().and_then(|err| err.session_error()) {
        Some((code, _)) => moq_lite::Error::from_code(code.into()),
        None => moq_lite::Error::Transport,
    }
}

/// Reads exactly one message framed as `Type (one byte) Length (16) Body`
/// without reading past it: the stream may be handed to moq-lite
/// afterwards. Returns the whole message, its type and length included.
async fn read_setup_message<R: web_transport_trait::RecvStream>(
    reader: &mut Reader<R>,
) -> Result<Bytes, ietf::stream::StreamError> {
    let head = reader.read_exact(3).await?;
    let len = usize::from(u16::from_be_bytes([head[1], head[2]]));
    let body = reader.read_exact(len).await?;
    let mut message = BytesMut::with_capacity(head.len() + body.len());
    message.extend_from_slice(&head);
    message.extend_from_slice(&body);
    Ok(message.freeze())
}

fn stream_err(err: ietf::stream::StreamError) -> moq_lite::Error {
    match err {
        ietf::stream::StreamError::Closed(e) => e,
        ietf::stream::StreamError::Protocol(e) => e.error,
    }
}

fn ietf_transport<E: web_transport_trait::Error>(_err: E) -> moq_lite::Error {
    moq_lite::Error::Transport
}

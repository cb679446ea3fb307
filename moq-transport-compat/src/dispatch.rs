//! One entry point for lite and IETF peers alike.
//!
//! [`accept`] / [`connect`] look at the negotiated protocol (TLS ALPN or
//! WebTransport protocol): `moq-lite-04` / `moq-lite-03` run moq-lite;
//! `moqt-17` / `moqt-16` / `moqt-15` / `moq-00` run the IETF session; `moql` or no
//! protocol means the SETUP path, where CLIENT_SETUP's versions choose
//! between moq-lite-02 / -01 and draft-14 (0xff00000e). The result is one
//! [`Session`] handle, so applications never branch on the protocol.

use moq_lite::SessionConfig;
use moq_lite::lite::{SETUP_ALPN, Version as LiteVersion};
use web_transport_trait::Session as Transport;

use crate::Draft;
use crate::control::{ClientSetup, ControlMessage, Decoded, ServerSetup};
use crate::ietf;
use crate::ietf::stream::{Reader, Writer};

/// Every protocol string we speak, in the order a client offers them.
pub const ALL_PROTOCOLS: &[&str] = &[
    "moq-lite-04",
    "moq-lite-03",
    "moql",
    "moqt-17",
    "moqt-16",
    "moqt-15",
    "moq-00",
];

/// The protocol strings of the IETF drafts this crate's session speaks.
pub const IETF_PROTOCOLS: &[&str] = &["moqt-17", "moqt-16", "moqt-15", "moq-00"];

/// [`ALL_PROTOCOLS`] as owned strings, for `ClientConfig::protocols` /
/// `ServerConfig::protocols`.
pub fn supported_protocols() -> Vec<String> {
    ALL_PROTOCOLS.iter().map(|p| p.to_string()).collect()
}

/// The version SETUP-path versions we accept, preferred first.
const SETUP_LITE: [LiteVersion; 2] = [LiteVersion::Lite02, LiteVersion::Lite01];

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
/// The relay calls this once per connection.
pub async fn accept<T: Transport>(transport: T, config: SessionConfig) -> Result<Session, moq_lite::Error> {
    match negotiated(&transport)? {
        Negotiated::Lite => Ok(Session::Lite(
            moq_lite::Session::accept_with(transport, config).await?,
        )),
        Negotiated::Ietf(draft) => Ok(Session::Ietf(
            ietf::Session::accept(transport, draft, config).await?,
        )),
        Negotiated::Setup => match accept_setup(&transport, config).await {
            Ok(session) => Ok(session),
            Err(err) => {
                transport.close(err.code(), &err.to_string());
                Err(err)
            }
        },
    }
}

/// The SETUP path, server side: CLIENT_SETUP picks lite-02/01 or draft-14.
async fn accept_setup<T: Transport>(
    transport: &T,
    config: SessionConfig,
) -> Result<Session, moq_lite::Error> {
    let (send, recv) = transport.accept_bi().await.map_err(ietf_transport)?;
    let mut writer = Writer::new(send);
    let mut reader = Reader::new(recv);
    let raw = reader.read_setup_message().await.map_err(stream_err)?;
    let setup = match ControlMessage::decode(&mut raw.clone(), Draft::D14) {
        Ok(Decoded::Message(ControlMessage::ClientSetup(setup))) => setup,
        Ok(_) => return Err(moq_lite::Error::UnexpectedStream),
        Err(_) => return Err(moq_lite::Error::Decode),
    };
    let d14 = Draft::D14.setup_code();
    let picked = setup.versions.iter().copied().find(|&code| {
        Some(code) == d14 || LiteVersion::from_code(code).is_some_and(|v| SETUP_LITE.contains(&v))
    });
    match picked {
        None => Err(moq_lite::Error::Version),
        Some(code) if Some(code) == d14 => {
            let session =
                ietf::Session::accepted(transport.clone(), Draft::D14, (writer, reader), setup, config);
            Ok(Session::Ietf(session.await?))
        }
        Some(code) => {
            let version = LiteVersion::from_code(code).ok_or(moq_lite::Error::Version)?;
            let reply = ServerSetup {
                version: code,
                parameters: Default::default(),
            };
            writer
                .encode(|b| ControlMessage::ServerSetup(reply).encode(Draft::D14, b))
                .await
                .map_err(stream_err)?;
            let send = writer.into_inner().ok_or(moq_lite::Error::Closed)?;
            let recv = reader.into_inner();
            let session =
                moq_lite::Session::start_after_setup(transport.clone(), version, send, recv, config)?;
            Ok(Session::Lite(session))
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
    let mut versions: Vec<u32> = SETUP_LITE.iter().map(|v| v.code()).collect();
    versions.extend(Draft::D14.setup_code());
    let mut parameters = setup_params_d14();
    if let Some(url) = &config.raw_quic_url {
        ietf::uri_params(url, &mut parameters);
    }
    let setup = ClientSetup { versions, parameters };
    writer
        .encode(|b| ControlMessage::ClientSetup(setup).encode(Draft::D14, b))
        .await
        .map_err(stream_err)?;
    let raw = reader.read_setup_message().await.map_err(stream_err)?;
    let reply = match ControlMessage::decode(&mut raw.clone(), Draft::D14) {
        Ok(Decoded::Message(ControlMessage::ServerSetup(reply))) => reply,
        _ => return Err(moq_lite::Error::ProtocolViolation),
    };
    if Some(reply.version) == Draft::D14.setup_code() {
        let session = ietf::Session::connected(transport, Draft::D14, (writer, reader), reply, config)?;
        return Ok(Session::Ietf(session));
    }
    let version = LiteVersion::from_code(reply.version)
        .filter(|v| SETUP_LITE.contains(v))
        .ok_or(moq_lite::Error::Version)?;
    let send = writer.into_inner().ok_or(moq_lite::Error::Closed)?;
    let session =
        moq_lite::Session::start_after_setup(transport, version, send, reader.into_inner(), config)?;
    Ok(Session::Lite(session))
}

/// Draft-14 setup parameters (a lite server ignores them).
fn setup_params_d14() -> crate::KeyValuePairs {
    let mut p = crate::KeyValuePairs::new();
    p.set_int(crate::control::setup_param::MAX_REQUEST_ID, 1024);
    p
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

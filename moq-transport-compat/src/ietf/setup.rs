//! The SETUP exchange that opens an IETF session: CLIENT_SETUP /
//! SERVER_SETUP on the bidirectional control stream (drafts 14 to 16, with
//! MAX_REQUEST_ID; a raw QUIC client adds PATH and AUTHORITY from the URL it
//! dialled), draft-17's SETUP on each side's unidirectional control stream,
//! and [`ServerHandshake`], which lets a server read the client's PATH before
//! choosing how to run the session.

use super::*;

/// A server session whose SETUP exchange is done; [`ServerHandshake::start`]
/// runs it.
pub struct ServerHandshake<T: Transport> {
    transport: T,
    draft: Draft,
    control: Control<T>,
    peer_max: u64,
    path: Option<String>,
}

impl<T: Transport> ServerHandshake<T> {
    /// The negotiated draft.
    pub fn draft(&self) -> Draft {
        self.draft
    }

    /// The PATH the client sent (raw QUIC clients send the path and query
    /// of the URL they dialled), if any.
    pub fn path(&self) -> Option<&str> {
        self.path.as_deref()
    }

    /// Runs the session with `config`.
    pub fn start(self, config: SessionConfig) -> Session {
        Session::start(
            self.transport,
            self.draft,
            false,
            self.control,
            self.peer_max,
            config,
        )
    }
}

/// The PATH parameter of a client's SETUP, if it is UTF-8.
pub(crate) fn client_path(params: &KeyValuePairs) -> Option<String> {
    let path = params.get_bytes(SetupParameter::Path.code())?;
    String::from_utf8(path.to_vec()).ok()
}

impl Session {
    /// Starts a client session of `draft` over `transport` (opens the control
    /// stream, sends CLIENT_SETUP).
    pub async fn connect<T: Transport>(
        transport: T,
        draft: Draft,
        config: SessionConfig,
    ) -> Result<Session, moq_lite::Error> {
        if draft.request_streams() {
            let (control, _) = setup17(&transport, draft, config.raw_quic_url.as_ref()).await?;
            return Ok(Self::start(transport, draft, true, control, u64::MAX, config));
        }
        let (send, recv) = transport.open_bi().await.map_err(transport_error)?;
        let mut control: Control<T> = (Writer::new(send), Reader::new(recv));
        let mut parameters = setup_params();
        if let Some(url) = &config.raw_quic_url {
            uri_params(url, &mut parameters);
        }
        let setup = ClientSetup {
            versions: draft.setup_code().into_iter().collect(),
            parameters,
        };
        control
            .0
            .encode(|b| ControlMessage::ClientSetup(setup).encode(draft, b))
            .await
            .map_err(lite)?;
        let reply = control
            .1
            .decode_required(|b| ControlMessage::decode(b, draft))
            .await
            .map_err(lite)?;
        let Decoded::Message(ControlMessage::ServerSetup(reply)) = reply else {
            return Err(moq_lite::Error::ProtocolViolation);
        };
        Self::connected(transport, draft, control, reply, config)
    }

    /// After a SETUP-path exchange that picked draft-14 (see [`crate::connect`]).
    pub(crate) fn connected<T: Transport>(
        transport: T,
        draft: Draft,
        control: Control<T>,
        reply: ServerSetup,
        config: SessionConfig,
    ) -> Result<Session, moq_lite::Error> {
        if draft == Draft::D14 && Some(reply.version) != draft.setup_code() {
            transport.close(SessionCode::VersionNegotiationFailed.code() as u32, "version");
            return Err(moq_lite::Error::Version);
        }
        let peer_max = reply
            .parameters
            .get_int(SetupParameter::MaxRequestId.code())
            .unwrap_or(0);
        Ok(Self::start(transport, draft, true, control, peer_max, config))
    }

    /// Starts a server session of `draft` over an accepted `transport` (waits
    /// for the control stream and its CLIENT_SETUP).
    pub async fn accept<T: Transport>(
        transport: T,
        draft: Draft,
        config: SessionConfig,
    ) -> Result<Session, moq_lite::Error> {
        Ok(Self::handshake(transport, draft).await?.start(config))
    }

    /// The server's side of the SETUP exchange, before the session starts:
    /// what the client sent (its PATH) can then choose the session's
    /// configuration.
    pub async fn handshake<T: Transport>(
        transport: T,
        draft: Draft,
    ) -> Result<ServerHandshake<T>, moq_lite::Error> {
        if draft.request_streams() {
            let (control, options) = setup17(&transport, draft, None).await?;
            return Ok(ServerHandshake {
                transport,
                draft,
                control,
                peer_max: u64::MAX,
                path: client_path(&options),
            });
        }
        let (send, recv) = transport.accept_bi().await.map_err(transport_error)?;
        let mut control: Control<T> = (Writer::new(send), Reader::new(recv));
        let setup = control
            .1
            .decode_required(|b| ControlMessage::decode(b, draft))
            .await
            .map_err(lite)?;
        let Decoded::Message(ControlMessage::ClientSetup(setup)) = setup else {
            transport.close(
                SessionCode::ProtocolViolation.code() as u32,
                "expected CLIENT_SETUP",
            );
            return Err(moq_lite::Error::ProtocolViolation);
        };
        Self::handshake_after_setup(transport, draft, control, setup).await
    }

    /// After CLIENT_SETUP was read (here, or on the SETUP path): answers it.
    pub(crate) async fn handshake_after_setup<T: Transport>(
        transport: T,
        draft: Draft,
        mut control: Control<T>,
        setup: ClientSetup,
    ) -> Result<ServerHandshake<T>, moq_lite::Error> {
        if let Some(code) = draft.setup_code() {
            if !setup.versions.contains(&code) {
                transport.close(
                    SessionCode::VersionNegotiationFailed.code() as u32,
                    "no common version",
                );
                return Err(moq_lite::Error::Version);
            }
        }
        let reply = ServerSetup {
            version: draft.setup_code().unwrap_or(0),
            parameters: setup_params(),
        };
        control
            .0
            .encode(|b| ControlMessage::ServerSetup(reply).encode(draft, b))
            .await
            .map_err(lite)?;
        Ok(ServerHandshake {
            transport,
            draft,
            control,
            peer_max: setup
                .parameters
                .get_int(SetupParameter::MaxRequestId.code())
                .unwrap_or(0),
            path: client_path(&setup.parameters),
        })
    }
}

/// Draft-17 session setup: each side opens its control stream (a
/// unidirectional stream whose type is SETUP, 0x2F00) and writes SETUP; the
/// peer's control stream is the first unidirectional stream it opens.
///
/// `uri`: a raw QUIC client's URL, sent as PATH and AUTHORITY.
pub(super) async fn setup17<T: Transport>(
    transport: &T,
    draft: Draft,
    uri: Option<&url::Url>,
) -> Result<(Control<T>, KeyValuePairs), moq_lite::Error> {
    let send = transport.open_uni().await.map_err(transport_error)?;
    let mut writer = Writer::new(send);
    let mut options = KeyValuePairs::new();
    options.set_bytes(
        SetupParameter::Implementation.code(),
        Bytes::from_static(IMPLEMENTATION.as_bytes()),
    );
    if let Some(url) = uri {
        uri_params(url, &mut options);
    }
    let setup = ControlMessage::Setup(crate::control::Setup { options });
    writer.encode(|b| setup.encode(draft, b)).await.map_err(lite)?;
    let recv = transport.accept_uni().await.map_err(transport_error)?;
    let mut reader = Reader::new(recv);
    let msg = reader
        .decode_required(|b| ControlMessage::decode(b, draft))
        .await
        .map_err(lite)?;
    match msg {
        Decoded::Message(ControlMessage::Setup(setup)) => Ok(((writer, reader), setup.options)),
        _ => {
            transport.close(SessionCode::ProtocolViolation.code() as u32, "expected SETUP");
            Err(moq_lite::Error::ProtocolViolation)
        }
    }
}

pub(super) fn lite(err: StreamError) -> moq_lite::Error {
    match err {
        StreamError::Closed(e) => e,
        StreamError::Protocol(e) => e.error,
    }
}

/// PATH and AUTHORITY for a client dialling `url` over raw QUIC ({{path}},
/// {{authority}}): "the client MUST set the PATH parameter to the
/// path-abempty portion of the URI; if query is present, the client MUST
/// concatenate ?, followed by the query", and AUTHORITY "to the authority
/// portion of the URI" (host and port; no user information).
pub(crate) fn uri_params(url: &url::Url, params: &mut KeyValuePairs) {
    let mut path = url.path().to_string();
    if let Some(query) = url.query() {
        path.push('?');
        path.push_str(query);
    }
    params.set_bytes(SetupParameter::Path.code(), Bytes::from(path));
    if let Some(host) = url.host_str() {
        let authority = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        };
        params.set_bytes(SetupParameter::Authority.code(), Bytes::from(authority));
    }
}

pub(super) fn setup_params() -> KeyValuePairs {
    let mut p = KeyValuePairs::new();
    p.set_int(SetupParameter::MaxRequestId.code(), REQUEST_WINDOW);
    p.set_bytes(
        SetupParameter::Implementation.code(),
        Bytes::from_static(IMPLEMENTATION.as_bytes()),
    );
    p
}

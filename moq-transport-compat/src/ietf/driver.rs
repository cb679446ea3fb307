//! The session's tasks: the loop that reads the control stream and accepts
//! the peer's streams, and the writer of our control messages (drafts 14
//! to 16; draft-17 routes them through `requests`).

use super::*;

async fn write_control<T: Transport>(
    draft: Draft,
    mut writer: Writer<T::SendStream>,
    mut rx: mpsc::UnboundedReceiver<ControlMessage>,
) -> Result<(), StreamError> {
    let mut encoded = bytes::BytesMut::new();
    while let Some(msg) = rx.recv().await {
        tracing::trace!(?msg, "control out");
        // Encoded apart from the write, so that a message we cannot encode
        // (a bug: a field over its limit) ends the session loudly instead of
        // reading as a closed stream and silencing the control stream.
        encoded.clear();
        if let Err(err) = msg.encode(draft, &mut encoded) {
            tracing::error!(%err, ?msg, "cannot encode a control message");
            return Err(StreamError::Protocol(SessionError::new(
                SessionCode::InternalError,
                "control message encoding failed",
            )));
        }
        writer
            .encode(|b| {
                b.extend_from_slice(&encoded);
                Ok(())
            })
            .await?;
    }
    Ok(())
}

/// Runs the session until something fatal happens.
pub(super) async fn run<T: Transport>(
    inner: Arc<Inner<T>>,
    (writer, mut reader): Control<T>,
    ctl_rx: mpsc::UnboundedReceiver<ControlMessage>,
    mut fatal: mpsc::UnboundedReceiver<SessionError>,
) -> SessionError {
    let draft = inner.draft;
    let transport = inner.transport.clone();
    let mut tasks: JoinSet<Result<(), StreamError>> = JoinSet::new();
    if draft.request_streams() {
        tasks.spawn(inner.clone().route17(writer, ctl_rx));
    } else {
        tasks.spawn(write_control::<T>(draft, writer, ctl_rx));
    }
    tasks.spawn(inner.clone().recv_datagrams());
    if let Some(origin) = inner.publish.clone() {
        tasks.spawn(inner.clone().run_announce(origin));
    }
    // Our subscriber half discovers the peer's namespaces with a root
    // SUBSCRIBE_NAMESPACE: drafts 14 and 15 require 1 to 32 prefix fields, so
    // a root prefix exists only from draft-16 (where it has its own stream).
    if inner.origin.is_some() && inner.client && draft >= Draft::D16 {
        tasks.spawn(inner.clone().run_subscribe_namespace());
    }
    let stream_closed = |err: StreamError| match err {
        StreamError::Protocol(err) => err,
        StreamError::Closed(err) => SessionError::from_lite(err),
    };
    loop {
        tokio::select! {
            msg = reader.decode(|b| ControlMessage::decode(b, draft)) => match msg {
                Ok(Some(Decoded::Message(msg))) => {
                    tracing::trace!(?msg, "control in");
                    if let Err(err) = inner.handle(msg) {
                        return err;
                    }
                }
                Ok(Some(Decoded::Unknown { message_type, .. })) => {
                    return SessionError::protocol(format!("unknown control message {message_type:#x}"));
                }
                Ok(None) => return SessionError::protocol("control stream ended"),
                Err(err) => return stream_closed(err),
            },
            accepted = transport.accept_uni() => match accepted {
                Ok(recv) => {
                    tasks.spawn(inner.clone().recv_uni(recv));
                }
                Err(err) => return SessionError::from_lite(transport_error(err)),
            },
            accepted = transport.accept_bi() => match accepted {
                Ok((send, recv)) if draft.request_streams() => {
                    let stream = (Writer::new(send), Reader::new(recv));
                    tasks.spawn(inner.clone().incoming17(stream));
                }
                Ok((send, recv)) if draft.namespace_streams() => {
                    let stream = (Writer::new(send), Reader::new(recv));
                    tasks.spawn(inner.clone().serve_subscribe_namespace(stream));
                }
                Ok(_) => return SessionError::protocol("unexpected bidirectional stream"),
                Err(err) => return SessionError::from_lite(transport_error(err)),
            },
            Some(err) = fatal.recv() => return err,
            Some(done) = tasks.join_next(), if !tasks.is_empty() => match done {
                Ok(Err(StreamError::Protocol(err))) => return err,
                Ok(Err(StreamError::Closed(err))) => tracing::trace!(%err, "stream closed"),
                Ok(Ok(())) => {}
                Err(join) if join.is_panic() => {
                    return SessionError::new(SessionCode::InternalError, "session task panicked");
                }
                Err(_) => {}
            },
        }
    }
}

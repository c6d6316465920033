//! Announcements between the hosts sharing one database: PostgreSQL's `LISTEN` / `NOTIFY`.
//!
//! Why: a connection's lane runs on one host, but intake and a person's changes arrive at
//! any host. Without a word from the host that took them, the lane's host would have to poll
//! the store for every lane it owns. Instead the host that took the change sends
//! `NOTIFY audience_lanes, '<connection id>'`, and every host keeps one connection listening
//! on that channel and wakes its lane for that connection at once. One listening connection
//! per host, one notification per change: no cost per idle connection.
//!
//! Notifications are not durable: one sent while a host's listening connection is down is
//! lost. So when the listener (re)connects it says [`Announcement::Missed`], and the engine
//! has every lane it owns read the store again.

use std::time::Duration;

use futures::StreamExt as _;
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, NoTls};

use crate::Announcement;

/// The channel the hosts announce on.
pub(crate) const CHANNEL: &str = "audience_lanes";

/// How long the listener waits before connecting again after losing its connection.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);

/// Listen on [`CHANNEL`] with a connection of its own (made from `config`), forwarding every
/// announcement until the receiver is dropped; reconnects after a lost connection.
pub(crate) fn listen(config: tokio_postgres::Config) -> mpsc::Receiver<Announcement> {
    let (tx, rx) = mpsc::channel(1024);
    tokio::spawn(async move {
        loop {
            match listen_once(&config, &tx).await {
                Ok(()) => return, // the receiver is gone
                Err(err) => {
                    tracing::warn!(error = %err, "the store's announcement listener lost its connection; connecting again");
                }
            }
            if tx.is_closed() {
                return;
            }
            tokio::time::sleep(RECONNECT_AFTER).await;
        }
    });
    rx
}

/// One listening connection, until it fails (`Err`) or the receiver is dropped (`Ok`).
async fn listen_once(config: &tokio_postgres::Config, tx: &mpsc::Sender<Announcement>) -> Result<(), String> {
    let (client, mut connection) = config.connect(NoTls).await.map_err(|e| e.to_string())?;
    let (messages_tx, mut messages) = mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        let mut stream = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = stream.next().await {
            match message {
                Ok(AsyncMessage::Notification(n)) => {
                    if messages_tx.send(n.payload().to_string()).is_err() {
                        return Ok(());
                    }
                }
                Ok(_) => {}
                Err(err) => return Err(err.to_string()),
            }
        }
        Err("the server closed the connection".to_string())
    });
    client.batch_execute(&format!("LISTEN {CHANNEL}")).await.map_err(|e| e.to_string())?;
    // Anything announced before this point (or while disconnected) is unknown.
    if tx.send(Announcement::Missed).await.is_err() {
        driver.abort();
        return Ok(());
    }
    while let Some(connection_id) = messages.recv().await {
        if tx.send(Announcement::Connection(connection_id)).await.is_err() {
            driver.abort();
            return Ok(());
        }
    }
    match driver.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(err)) => Err(err),
        Err(err) => Err(err.to_string()),
    }
}

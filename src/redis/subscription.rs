//! The one subscription loop the pub/sub backends share: subscribe, catch up, hear every
//! message, and on a lost connection subscribe again (to the next node) and catch up again.

use std::future::Future;
use std::time::Duration;

use ::redis::Client;
use ::redis::aio::PubSub;
use futures_util::StreamExt;
use tokio::task::JoinHandle;

use super::{RedisError, RedisTarget, timed_out};

/// How often an idle subscription checks that its connection is alive.
const PING_EVERY: Duration = Duration::from_secs(2);
/// The longest wait between two reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// What a subscription does with what it hears.
pub(crate) trait Listener: Send + 'static {
    /// One message's payload.
    fn message(&mut self, payload: &[u8]);

    /// Catches up on whatever may have been missed while not subscribed: called once the
    /// subscription is active, first and after every reconnection, so that anything published
    /// before is in the source of truth and anything after is heard.
    fn resync(&mut self) -> impl Future<Output = Result<(), RedisError>> + Send;

    /// Names the subscription in log lines.
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    fn name(&self) -> &'static str;
}

/// Subscribes to `channel` on one node of `target`, resynchronises `listener`, and runs it in
/// a task until the handle is aborted. Returns once both are done.
///
/// Plain `SUBSCRIBE`: on a Redis Cluster every node relays every `PUBLISH`, so one node is
/// enough, and a subscriber that loses its node takes the next seed.
pub(crate) async fn start<L: Listener>(
    target: &RedisTarget,
    channel: &str,
    timeout: Duration,
    mut listener: L,
) -> Result<JoinHandle<()>, RedisError> {
    let mut nodes = Nodes::new(target)?;
    let mut last_error = None;
    // At first every node is tried once: a seed that is down must not stop the start.
    for _ in 0..nodes.clients.len() {
        match subscribe_and_resync(nodes.current(), channel, timeout, &mut listener).await {
            Ok(pubsub) => {
                let channel = channel.to_owned();
                return Ok(tokio::spawn(run(pubsub, nodes, channel, timeout, listener)));
            }
            Err(error) => {
                last_error = Some(error);
                nodes.advance();
            }
        }
    }
    Err(last_error.unwrap_or_else(|| timed_out("no Redis node to subscribe to")))
}

struct Nodes {
    clients: Vec<Client>,
    at: usize,
}

impl Nodes {
    fn new(target: &RedisTarget) -> Result<Self, RedisError> {
        let clients = target
            .urls()
            .iter()
            .map(|url| Client::open(url.as_str()))
            .collect::<Result<Vec<_>, _>>()?;
        if clients.is_empty() {
            return Err(timed_out("no Redis node to subscribe to"));
        }
        Ok(Self { clients, at: 0 })
    }

    fn current(&self) -> &Client {
        &self.clients[self.at]
    }

    fn advance(&mut self) {
        self.at = (self.at + 1) % self.clients.len();
    }
}

async fn subscribe_and_resync<L: Listener>(
    client: &Client,
    channel: &str,
    timeout: Duration,
    listener: &mut L,
) -> Result<PubSub, RedisError> {
    let subscribe = async {
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe(channel).await?;
        Ok::<_, RedisError>(pubsub)
    };
    let pubsub = tokio::time::timeout(timeout, subscribe)
        .await
        .unwrap_or_else(|_| Err(timed_out("subscribing to Redis timed out")))?;
    // Subscribed first, then caught up: whatever is published in between is in one or the other.
    listener.resync().await?;
    Ok(pubsub)
}

async fn run<L: Listener>(
    mut pubsub: PubSub,
    mut nodes: Nodes,
    channel: String,
    timeout: Duration,
    mut listener: L,
) {
    loop {
        let (mut sink, mut stream) = pubsub.split();
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.tick().await;
        loop {
            tokio::select! {
                message = stream.next() => match message {
                    Some(message) => listener.message(message.get_payload_bytes()),
                    None => break,
                },
                _ = ping.tick() => {
                    let alive = tokio::time::timeout(timeout, sink.ping::<::redis::Value>()).await;
                    if !matches!(alive, Ok(Ok(_))) {
                        break;
                    }
                }
            }
        }
        log_warn!(
            subscription = listener.name(),
            "lost a Redis subscription; reconnecting"
        );
        drop((sink, stream));
        let mut backoff = Duration::from_millis(50);
        pubsub = loop {
            nodes.advance();
            match subscribe_and_resync(nodes.current(), &channel, timeout, &mut listener).await {
                Ok(pubsub) => break pubsub,
                Err(error) => {
                    log_warn!(%error, subscription = listener.name(), "resubscribing to Redis failed");
                    let _ = error;
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        };
    }
}

//! Where the Redis backends connect: one server, or a Redis Cluster through seed nodes.

use std::fmt;

/// A Redis deployment: one server ([`single`](Self::single), also what a URL converts into)
/// or a Redis Cluster reached through seed nodes ([`cluster`](Self::cluster)).
///
/// Every backend's `connect` takes one, so the same code runs against either:
///
/// ```
/// use tollgate::redis::RedisTarget;
///
/// let single: RedisTarget = "redis://127.0.0.1:6379".into();
/// let cluster = RedisTarget::cluster(["redis://10.0.0.1:7000", "redis://10.0.0.2:7000"]);
/// assert!(!single.is_cluster() && cluster.is_cluster());
/// ```
///
/// A cluster's client learns the whole topology from any seed that answers and follows it
/// (`MOVED`/`ASK` redirections, a replica promoted after a failover). Subscribers, which need
/// one node of their own, take the seeds in turn: list several, so that losing one node does not
/// lose the subscription.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisTarget {
    urls: Vec<String>,
    cluster: bool,
}

impl RedisTarget {
    /// One server at `url` (`redis://[:password@]host:port[/db]`, or `rediss://` for TLS when the
    /// `redis` crate is built with it).
    pub fn single(url: impl Into<String>) -> Self {
        Self {
            urls: vec![url.into()],
            cluster: false,
        }
    }

    /// A Redis Cluster, reached through `seeds` (`redis://host:port` each; one is enough, every
    /// node is best). Connecting fails if none is given.
    pub fn cluster<I, S>(seeds: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            urls: seeds.into_iter().map(Into::into).collect(),
            cluster: true,
        }
    }

    /// Whether this is a cluster.
    pub fn is_cluster(&self) -> bool {
        self.cluster
    }

    /// The server's URL, or the cluster's seeds.
    pub(crate) fn urls(&self) -> &[String] {
        &self.urls
    }
}

impl fmt::Debug for RedisTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A URL may hold a password: only the shape is shown.
        f.debug_struct("RedisTarget")
            .field("cluster", &self.cluster)
            .field("nodes", &self.urls.len())
            .finish()
    }
}

impl From<&str> for RedisTarget {
    fn from(url: &str) -> Self {
        Self::single(url)
    }
}

impl From<String> for RedisTarget {
    fn from(url: String) -> Self {
        Self::single(url)
    }
}

impl From<&String> for RedisTarget {
    fn from(url: &String) -> Self {
        Self::single(url.as_str())
    }
}

impl From<&RedisTarget> for RedisTarget {
    fn from(target: &RedisTarget) -> Self {
        target.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_a_url() {
        let target = RedisTarget::from("redis://:hunter2@127.0.0.1:6379");
        let shown = format!("{target:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("127.0.0.1"),
            "{shown}"
        );
        assert_eq!(
            RedisTarget::cluster(["redis://a:1", "redis://b:2"])
                .urls()
                .len(),
            2
        );
    }
}

//! The counters the layers keep, registered with the `metrics` recorder on first use (feature
//! `metrics`; without it, every call here compiles to nothing).

#[cfg(feature = "metrics")]
#[allow(dead_code)] // each feature set uses some of these
mod enabled {
    use std::sync::OnceLock;

    use metrics::{Counter, Histogram};

    use crate::rejection::RejectionKind;

    /// Refusal codes are few and fixed: one slot per kind.
    const KINDS: usize = 16;

    fn slot(kind: RejectionKind) -> usize {
        match kind {
            RejectionKind::MissingCredential => 0,
            RejectionKind::InvalidRequest => 1,
            RejectionKind::MalformedCredential => 2,
            RejectionKind::InvalidCredential => 3,
            RejectionKind::ExpiredCredential => 4,
            RejectionKind::RevokedCredential => 5,
            RejectionKind::InactiveCredential => 6,
            RejectionKind::AppDisabled => 7,
            RejectionKind::InsufficientScope => 8,
            RejectionKind::Forbidden => 9,
            RejectionKind::RateLimited => 10,
            RejectionKind::Unavailable => 11,
        }
    }

    /// The decision counters of one authentication layer.
    /// (The layer's name comes with each call: a layer's service knows its authenticator.)
    #[derive(Debug)]
    pub(crate) struct Decisions {
        allowed: OnceLock<Counter>,
        passed: OnceLock<Counter>,
        refused: [OnceLock<Counter>; KINDS],
    }

    impl Decisions {
        pub(crate) fn new() -> Self {
            Self {
                allowed: OnceLock::new(),
                passed: OnceLock::new(),
                refused: std::array::from_fn(|_| OnceLock::new()),
            }
        }

        fn counter(layer: &'static str, outcome: &'static str, code: &'static str) -> Counter {
            metrics::counter!(
                "tollgate_auth_decisions_total",
                "layer" => layer,
                "outcome" => outcome,
                "code" => code
            )
        }

        #[inline]
        pub(crate) fn allowed(&self, layer: &'static str) {
            self.allowed
                .get_or_init(|| Self::counter(layer, "allowed", ""))
                .increment(1);
        }

        #[inline]
        pub(crate) fn passed(&self, layer: &'static str) {
            self.passed
                .get_or_init(|| Self::counter(layer, "passed", ""))
                .increment(1);
        }

        #[inline]
        pub(crate) fn refused(&self, layer: &'static str, kind: RejectionKind) {
            self.refused[slot(kind)]
                .get_or_init(|| Self::counter(layer, "refused", kind.code()))
                .increment(1);
        }
    }

    /// The decision counters of one rate limit (by its name).
    #[derive(Debug)]
    pub(crate) struct Limits {
        limit: String,
        allowed: OnceLock<Counter>,
        limited: OnceLock<Counter>,
        error: OnceLock<Counter>,
    }

    impl Limits {
        pub(crate) fn new(limit: &str) -> Self {
            Self {
                limit: limit.to_owned(),
                allowed: OnceLock::new(),
                limited: OnceLock::new(),
                error: OnceLock::new(),
            }
        }

        fn counter(&self, slot: &OnceLock<Counter>, outcome: &'static str) {
            slot.get_or_init(|| {
                metrics::counter!(
                    "tollgate_rate_limit_decisions_total",
                    "limit" => self.limit.clone(),
                    "outcome" => outcome
                )
            })
            .increment(1);
        }

        #[inline]
        pub(crate) fn allowed(&self) {
            self.counter(&self.allowed, "allowed");
        }

        #[inline]
        pub(crate) fn limited(&self) {
            self.counter(&self.limited, "limited");
        }

        #[inline]
        pub(crate) fn error(&self) {
            self.counter(&self.error, "error");
        }
    }

    /// The API-key cache and store counters of one `ApiKeys`.
    #[derive(Debug, Default)]
    pub(crate) struct KeyCache {
        hit: OnceLock<Counter>,
        miss: OnceLock<Counter>,
        lookup: OnceLock<Histogram>,
    }

    impl KeyCache {
        #[inline]
        pub(crate) fn hit(&self) {
            self.hit
                .get_or_init(
                    || metrics::counter!("tollgate_api_key_cache_total", "result" => "hit"),
                )
                .increment(1);
        }

        #[inline]
        pub(crate) fn miss(&self) {
            self.miss
                .get_or_init(
                    || metrics::counter!("tollgate_api_key_cache_total", "result" => "miss"),
                )
                .increment(1);
        }

        pub(crate) fn lookup(&self, seconds: f64) {
            self.lookup
                .get_or_init(|| metrics::histogram!("tollgate_api_key_lookup_seconds"))
                .record(seconds);
        }
    }

    pub(crate) fn jwks_fetch(ok: bool) {
        let outcome = if ok { "ok" } else { "error" };
        metrics::counter!("tollgate_jwks_fetches_total", "outcome" => outcome).increment(1);
    }

    pub(crate) fn refresh(reuse_detected: bool) {
        let outcome = if reuse_detected {
            "reuse_detected"
        } else {
            "rotated"
        };
        metrics::counter!("tollgate_refresh_rotations_total", "outcome" => outcome).increment(1);
    }
}

#[cfg(not(feature = "metrics"))]
#[allow(dead_code)] // each feature set uses some of these
mod enabled {
    use crate::rejection::RejectionKind;

    #[derive(Debug)]
    pub(crate) struct Decisions;

    impl Decisions {
        pub(crate) fn new() -> Self {
            Self
        }
        #[inline(always)]
        pub(crate) fn allowed(&self, _layer: &'static str) {}
        #[inline(always)]
        pub(crate) fn passed(&self, _layer: &'static str) {}
        #[inline(always)]
        pub(crate) fn refused(&self, _layer: &'static str, _kind: RejectionKind) {}
    }

    #[derive(Debug)]
    pub(crate) struct Limits;

    impl Limits {
        pub(crate) fn new(_limit: &str) -> Self {
            Self
        }
        #[inline(always)]
        pub(crate) fn allowed(&self) {}
        #[inline(always)]
        pub(crate) fn limited(&self) {}
        #[inline(always)]
        pub(crate) fn error(&self) {}
    }

    #[derive(Debug, Default)]
    pub(crate) struct KeyCache;

    impl KeyCache {
        #[inline(always)]
        pub(crate) fn hit(&self) {}
        #[inline(always)]
        pub(crate) fn miss(&self) {}
        #[inline(always)]
        pub(crate) fn lookup(&self, _seconds: f64) {}
    }

    #[inline(always)]
    pub(crate) fn jwks_fetch(_ok: bool) {}
    #[inline(always)]
    pub(crate) fn refresh(_reuse_detected: bool) {}
}

#[allow(unused_imports)] // each is used by some feature set
pub(crate) use self::enabled::{Decisions, KeyCache, Limits, jwks_fetch, refresh};

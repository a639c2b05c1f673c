//! Crate-private macros.

/// Adds `get_ref`, `get_mut` and `into_inner` to a service whose wrapped service
/// lives in the field `inner`, as every tower-http middleware does.
macro_rules! define_inner_service_accessors {
    () => {
        /// Gets a reference to the wrapped service.
        pub fn get_ref(&self) -> &S {
            &self.inner
        }

        /// Gets a mutable reference to the wrapped service.
        pub fn get_mut(&mut self) -> &mut S {
            &mut self.inner
        }

        /// Consumes `self`, returning the wrapped service.
        pub fn into_inner(self) -> S {
            self.inner
        }
    };
}

/// Logs at a fixed target when the `tracing` feature is on; compiles to nothing otherwise.
/// Call sites must never pass a key, a token or a digest.
macro_rules! log_debug {
    ($($arg:tt)*) => {
        #[cfg(feature = "tracing")]
        tracing::debug!(target: "tollgate::rejection", $($arg)*);
    };
}

/// Like [`log_debug!`] at ERROR, for a misconfiguration that refuses every request.
#[allow(unused_macros)]
macro_rules! log_error {
    ($($arg:tt)*) => {
        #[cfg(feature = "tracing")]
        tracing::error!(target: "tollgate::config", $($arg)*);
    };
}

/// Like [`log_debug!`] at WARN, for failures an operator must see (a store is down).
#[allow(unused_macros)]
macro_rules! log_warn {
    ($($arg:tt)*) => {
        #[cfg(feature = "tracing")]
        tracing::warn!(target: "tollgate::store", $($arg)*);
    };
}

//! Generated replies of the rate-limit script: any reply is a decision or a store error,
//! never a panic, and a well-shaped reply reads as what it says.

use proptest::prelude::*;

use super::*;
use crate::proptests::config;

proptest! {
    #![proptest_config(config())]

    /// Any list of integers against 1 to `MAX_LIMITS` quotas: an error unless it has exactly
    /// one flag and three numbers per quota; then each quota's status is those numbers, and
    /// the hit is admitted exactly when no `exceeded` flag is 1.
    #[test]
    fn any_reply_is_a_decision_or_an_error(
        limits in proptest::collection::vec(any::<u64>(), 1..=MAX_LIMITS),
        reply in proptest::collection::vec(prop_oneof![0u64..3, any::<u64>()], 0..16),
        well_shaped in any::<bool>(),
    ) {
        let mut reply = reply;
        if well_shaped {
            reply.resize(1 + 3 * limits.len(), 1);
        }
        match decision(&reply, &limits) {
            Err(_) => prop_assert_ne!(reply.len(), 1 + 3 * limits.len()),
            Ok(decision) => {
                prop_assert_eq!(reply.len(), 1 + 3 * limits.len());
                prop_assert_eq!(decision.statuses().len(), limits.len());
                for ((status, chunk), limit) in decision.statuses().iter().zip(reply[1..].chunks(3)).zip(&limits) {
                    prop_assert_eq!(status.limit(), *limit);
                    prop_assert_eq!(status.remaining(), chunk[0]);
                    // Kept in nanoseconds, saturating past ~584 years.
                    let reset = Duration::from_micros(chunk[1]).min(Duration::from_nanos(u64::MAX));
                    prop_assert_eq!(status.reset(), reset);
                    prop_assert_eq!(status.exceeded(), chunk[2] == 1);
                }
                let exceeded = reply[1..].chunks(3).any(|c| c[2] == 1);
                prop_assert_eq!(decision.is_allowed(), !exceeded);
                prop_assert_eq!(decision.retry_after().is_some(), exceeded);
            }
        }
    }

    /// A window is sent in whole microseconds, within what the script counts exactly.
    #[test]
    fn windows_are_whole_microseconds_within_range(secs in any::<u64>(), nanos in 0u32..1_000_000_000) {
        let window = Duration::new(secs, nanos);
        let micros = window_micros(window);
        prop_assert!((1..=MAX_EXACT).contains(&micros));
        if window.as_micros() >= 1 && window.as_micros() <= u128::from(MAX_EXACT) {
            prop_assert_eq!(u128::from(micros), window.as_micros());
        }
    }
}

//! Shared by the benches' paired modes.

/// The median of `samples` (the upper one of an even count); NaN for none.
pub(crate) fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples.get(samples.len() / 2).copied().unwrap_or(f64::NAN)
}

//! Rendering a list field's value, `"name";a=x;b=y, …`, in one pass on the stack.
//!
//! The value is written from its end backwards, so each number's digits land in place as they
//! are produced (least significant first) and nothing is measured or copied beforehand; the
//! finished bytes are then validated and copied once into the `HeaderValue`'s allocation, of
//! exactly their length.

use http::HeaderValue;

use crate::rate_limit::Limit;
use crate::rate_limit::limit::MAX_NAME_LEN;
use crate::rate_limit::store::MAX_LIMITS;

/// The longest item: the quoted name, `;a=` and `;b=`, and two 20-digit numbers.
const MAX_ITEM: usize = 2 + MAX_NAME_LEN + 6 + 2 * 20;
/// The longest value: `MAX_LIMITS` items and the `", "` between them.
const MAX_VALUE: usize = MAX_LIMITS * MAX_ITEM + (MAX_LIMITS - 1) * 2;
/// The longest name the short buffer takes.
const SHORT_NAME: usize = 32;
/// The buffer for the usual value, one item whose name is at most [`SHORT_NAME`] bytes (80
/// bytes to zero before writing, where the longest value's buffer has 454).
const SHORT_VALUE: usize = 2 + SHORT_NAME + 6 + 2 * 20;

/// Two-digit pairs, `00` to `99`, for writing a number two digits at a time.
const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
    2021222324252627282930313233343536373839\
    4041424344454647484950515253545556575859\
    6061626364656667686970717273747576777879\
    8081828384858687888990919293949596979899";

/// A value being written from the end of a stack buffer towards its start.
struct Backwards<const N: usize> {
    buf: [u8; N],
    at: usize,
}

impl<const N: usize> Backwards<N> {
    #[inline]
    fn new() -> Self {
        Self { buf: [0; N], at: N }
    }

    #[inline]
    fn bytes(&mut self, bytes: &[u8]) {
        let start = self.at - bytes.len();
        self.buf[start..self.at].copy_from_slice(bytes);
        self.at = start;
    }

    /// `n` in decimal, written two digits at a time.
    #[inline]
    fn number(&mut self, mut n: u64) {
        while n >= 100 {
            let pair = (n % 100) as usize * 2;
            n /= 100;
            self.at -= 2;
            self.buf[self.at..self.at + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
        }
        if n >= 10 {
            let pair = n as usize * 2;
            self.at -= 2;
            self.buf[self.at..self.at + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
        } else {
            self.at -= 1;
            self.buf[self.at] = b'0' + n as u8;
        }
    }

    /// `"name";a=x;b=y` for each item, last first, with `", "` between them.
    #[inline]
    fn items(mut self, items: &[(&Limit, u64, u64)], a: &[u8; 3], b: &[u8; 3]) -> Self {
        for (i, &(limit, x, y)) in items.iter().enumerate().rev() {
            self.number(y);
            self.bytes(b);
            self.number(x);
            self.bytes(a);
            self.bytes(b"\"");
            self.bytes(limit.name().as_bytes());
            self.bytes(b"\"");
            if i > 0 {
                self.bytes(b", ");
            }
        }
        self
    }

    #[inline]
    fn value(&self) -> Option<HeaderValue> {
        // Names are validated visible ASCII, numbers are digits: always a valid value.
        HeaderValue::from_bytes(&self.buf[self.at..]).ok()
    }
}

/// A list field's value, `"name";a=x;b=y, …`, one item per limit for which `numbers` gives
/// `(x, y)` (up to the first it does not); `None` when it gives none.
#[inline]
pub(super) fn list_value(
    limits: &[Limit],
    a: &[u8; 3],
    b: &[u8; 3],
    mut numbers: impl FnMut(usize) -> Option<(u64, u64)>,
) -> Option<HeaderValue> {
    let first = limits.first()?;
    let (x, y) = numbers(0)?;
    if limits.len() == 1 && first.name().len() <= SHORT_NAME {
        return Backwards::<SHORT_VALUE>::new()
            .items(&[(first, x, y)], a, b)
            .value();
    }
    let mut items = [(first, x, y); MAX_LIMITS];
    let mut count = 1;
    for (i, limit) in limits.iter().enumerate().take(MAX_LIMITS).skip(1) {
        let Some((x, y)) = numbers(i) else { break };
        items[i] = (limit, x, y);
        count = i + 1;
    }
    Backwards::<MAX_VALUE>::new()
        .items(&items[..count], a, b)
        .value()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Quota;

    fn limit(name: &str) -> Limit {
        Limit::new(name, Quota::per_second(1)).unwrap()
    }

    #[test]
    fn numbers_of_every_width_and_the_longest_value() {
        for n in [0, 9, 10, 99, 100, 12_345, u64::MAX / 7, u64::MAX] {
            let value = list_value(&[limit("default")], b";r=", b";t=", |_| Some((n, n))).unwrap();
            assert_eq!(value, format!("\"default\";r={n};t={n}").as_str());
        }
        let names: Vec<String> = (0..MAX_LIMITS)
            .map(|i| char::from(b'a' + i as u8).to_string().repeat(MAX_NAME_LEN))
            .collect();
        let limits: Vec<Limit> = names.iter().map(|n| limit(n)).collect();
        let value = list_value(&limits, b";q=", b";w=", |_| Some((u64::MAX, u64::MAX))).unwrap();
        assert_eq!(value.len(), MAX_VALUE);
        let expected: Vec<String> = names
            .iter()
            .map(|n| format!("\"{n}\";q={};w={}", u64::MAX, u64::MAX))
            .collect();
        assert_eq!(value, expected.join(", ").as_str());
        // A name of `SHORT_NAME` bytes still takes the short buffer, one byte more the long: both
        // exact.
        for len in [SHORT_NAME, SHORT_NAME + 1] {
            let name = "n".repeat(len);
            let value = list_value(&[limit(&name)], b";r=", b";t=", |_| {
                Some((u64::MAX, u64::MAX))
            })
            .unwrap();
            assert_eq!(value.len(), 2 + len + 6 + 40);
        }
    }

    #[test]
    fn items_stop_at_the_first_limit_without_numbers() {
        let limits = [limit("a"), limit("b"), limit("c")];
        let value = list_value(&limits, b";r=", b";t=", |i| (i < 2).then_some((1, 2))).unwrap();
        assert_eq!(value, "\"a\";r=1;t=2, \"b\";r=1;t=2");
        assert!(list_value(&limits, b";r=", b";t=", |_| None).is_none());
        assert!(list_value(&[], b";r=", b";t=", |_| Some((1, 2))).is_none());
    }
}

//! Loading the denylist from Redis: the sorted set, and on a single server the keys 0.1 wrote.

use std::time::Duration;

use crate::jwt::revocation::RevocationList;
use crate::redis::{RedisConnection, RedisError};

use super::{epoch_plus, parse_message, with_timeout};

/// Keys or entries asked for per `SCAN`/`ZSCAN` step.
const SCAN_COUNT: usize = 1000;

/// `prefix` with the glob characters of `SCAN … MATCH` escaped.
pub(super) fn escape_glob(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + 2);
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Adds every entry of the set `prefix` to `list`, and on a single server every entry 0.1
/// wrote as a key of its own.
pub(super) async fn load(
    connection: &mut RedisConnection,
    prefix: &str,
    list: &RevocationList,
    timeout: Duration,
) -> Result<(), RedisError> {
    let mut cursor = 0u64;
    loop {
        // Raw bytes: a foreign member is skipped, not an error.
        let (next, entries): (u64, Vec<Vec<u8>>) = with_timeout(
            timeout,
            ::redis::cmd("ZSCAN")
                .arg(prefix)
                .arg(cursor)
                .arg("COUNT")
                .arg(SCAN_COUNT)
                .query_async(connection),
        )
        .await?;
        // Members and scores alternate; the member carries the `exp`.
        list.revoke_many(entries.iter().step_by(2).filter_map(|m| parse_message(m)));
        if next == 0 {
            break;
        }
        cursor = next;
    }
    if !connection.is_cluster() {
        load_legacy(connection, prefix, list, timeout).await?;
    }
    Ok(())
}

/// Adds every `<prefix>:<jti>` key (0.1's format) to `list`.
async fn load_legacy(
    connection: &mut RedisConnection,
    prefix: &str,
    list: &RevocationList,
    timeout: Duration,
) -> Result<(), RedisError> {
    let pattern = format!("{}:*", escape_glob(prefix));
    let mut cursor = 0u64;
    loop {
        let (next, keys): (u64, Vec<Vec<u8>>) = with_timeout(
            timeout,
            ::redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(SCAN_COUNT)
                .query_async(connection),
        )
        .await?;
        if !keys.is_empty() {
            let values: Vec<Option<Vec<u8>>> = with_timeout(
                timeout,
                ::redis::cmd("MGET").arg(&keys).query_async(connection),
            )
            .await?;
            let skip = prefix.len() + 1;
            list.revoke_many(keys.iter().zip(values).filter_map(|(key, exp)| {
                let jti = std::str::from_utf8(key.get(skip..)?).ok()?;
                let exp: u64 = std::str::from_utf8(&exp?).ok()?.parse().ok()?;
                Some((jti, epoch_plus(exp)))
            }));
        }
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn glob_characters_are_escaped() {
        assert_eq!(super::escape_glob("app[1]*:jti"), "app\\[1\\]\\*:jti");
    }
}

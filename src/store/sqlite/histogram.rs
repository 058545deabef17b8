//! The stored form of a latency or time-to-first-token histogram in the usage roll-ups: one
//! BLOB of sparse `(bucket: u8, count: LEB128 varint)` pairs in rising bucket order, empty
//! buckets left out (an empty BLOB = no samples).
//!
//! Sparse because a roll-up row is one key, model, channel, endpoint and status in one hour or
//! day, whose requests fall in a few neighbouring buckets: typically 2–10 bytes instead of 136
//! for 34 fixed u32s, so a range read touches fewer pages. The writer merges stored and new
//! histograms in SQL with `hist_add(a, b)` (registered on the write connection by
//! [`register`]); reads add them up in Rust with [`add_into`].

use rusqlite::Connection;
use rusqlite::functions::FunctionFlags;

use super::rollup::BUCKETS;

/// A BLOB that is not a histogram of this encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("malformed usage histogram")
    }
}

impl std::error::Error for Malformed {}

/// Encode counts per bucket (zeros and negatives left out).
#[must_use]
pub fn encode(counts: &[i64; BUCKETS]) -> Vec<u8> {
    let mut out = Vec::new();
    for (bucket, &count) in counts.iter().enumerate() {
        let Ok(mut count) = u64::try_from(count) else {
            continue;
        };
        if count == 0 {
            continue;
        }
        #[allow(clippy::cast_possible_truncation, reason = "BUCKETS < 256")]
        out.push(bucket as u8);
        loop {
            #[allow(clippy::cast_possible_truncation, reason = "the low 7 bits")]
            let low = (count & 0x7f) as u8;
            count >>= 7;
            if count == 0 {
                out.push(low);
                break;
            }
            out.push(low | 0x80);
        }
    }
    out
}

/// Add a stored histogram's counts into `counts`.
pub fn add_into(blob: &[u8], counts: &mut [i64; BUCKETS]) -> Result<(), Malformed> {
    let mut bytes = blob.iter();
    while let Some(&bucket) = bytes.next() {
        let slot = counts.get_mut(usize::from(bucket)).ok_or(Malformed)?;
        let mut count = 0u64;
        let mut shift = 0u32;
        loop {
            let &byte = bytes.next().ok_or(Malformed)?;
            if shift > 63 {
                return Err(Malformed);
            }
            count |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                break;
            }
            shift += 7;
        }
        *slot = slot.saturating_add(i64::try_from(count).unwrap_or(i64::MAX));
    }
    Ok(())
}

/// The sum of two stored histograms.
pub fn add(a: &[u8], b: &[u8]) -> Result<Vec<u8>, Malformed> {
    let mut counts = [0; BUCKETS];
    add_into(a, &mut counts)?;
    add_into(b, &mut counts)?;
    Ok(encode(&counts))
}

/// Register `hist_add(a, b)` (NULL counts as empty) on a connection that writes the roll-ups.
pub fn register(conn: &Connection) -> rusqlite::Result<()> {
    conn.create_scalar_function(
        "hist_add",
        2,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            let blob = |i: usize| -> rusqlite::Result<&[u8]> {
                Ok(ctx.get_raw(i).as_blob_or_null()?.unwrap_or_default())
            };
            add(blob(0)?, blob(1)?).map_err(|e| rusqlite::Error::UserFunctionError(Box::new(e)))
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_adds() {
        let mut counts = [0; BUCKETS];
        counts[0] = 1;
        counts[5] = 300;
        counts[BUCKETS - 1] = i64::from(u32::MAX) + 7;
        let blob = encode(&counts);
        assert_eq!(blob.len(), 2 + 3 + 6);
        let mut back = [0; BUCKETS];
        add_into(&blob, &mut back).unwrap();
        assert_eq!(back, counts);
        let mut twice = [0; BUCKETS];
        add_into(&add(&blob, &blob).unwrap(), &mut twice).unwrap();
        assert_eq!(twice[5], 600);
        assert_eq!(encode(&[0; BUCKETS]), Vec::<u8>::new());
    }

    #[test]
    fn malformed_blobs_are_refused() {
        let mut counts = [0; BUCKETS];
        assert_eq!(add_into(&[200, 1], &mut counts), Err(Malformed));
        assert_eq!(add_into(&[3], &mut counts), Err(Malformed));
        assert_eq!(add_into(&[3, 0x80], &mut counts), Err(Malformed));
    }

    #[test]
    fn sql_function_merges_stored_histograms() {
        let conn = Connection::open_in_memory().unwrap();
        register(&conn).unwrap();
        let mut one = [0; BUCKETS];
        one[4] = 2;
        let merged: Vec<u8> = conn
            .query_row(
                "SELECT hist_add(?1, hist_add(NULL, ?1))",
                [encode(&one)],
                |r| r.get(0),
            )
            .unwrap();
        let mut counts = [0; BUCKETS];
        add_into(&merged, &mut counts).unwrap();
        assert_eq!(counts[4], 4);
        let bad: rusqlite::Result<Vec<u8>> =
            conn.query_row("SELECT hist_add(x'ff', x'')", [], |r| r.get(0));
        assert!(bad.is_err());
    }
}

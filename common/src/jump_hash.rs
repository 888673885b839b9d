//! Jump consistent hash: Lamping & Veach, "A Fast, Minimal Memory, Consistent Hash
//! Algorithm" (2014), figure 1. Maps a 64-bit key to one of `buckets` buckets so that
//! growing from n to n+1 buckets moves only ~1/(n+1) of the keys, all to the new bucket.

/// The bucket in `0..buckets` of `key`. `buckets` must be at least 1; 0 is treated as 1.
/// Uses wrapping arithmetic throughout, as the paper's C code relies on unsigned
/// overflow.
pub fn jump_consistent_hash(mut key: u64, buckets: u32) -> u32 {
    let buckets = i64::from(buckets.max(1));
    let mut b: i64 = -1;
    let mut j: i64 = 0;
    while j < buckets {
        b = j;
        key = key.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        let r = ((key >> 33) + 1) as f64;
        j = ((b.wrapping_add(1)) as f64 * ((1u64 << 31) as f64 / r)) as i64;
    }
    b as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test vectors published with the Go reference ports of the paper's C code
    /// (e.g. the `go-jump` package's tests).
    #[test]
    fn matches_published_values() {
        let cases: [(u64, u32, u32); 5] = [
            (1, 1, 0),
            (42, 57, 43),
            (0xDEAD10CC, 1, 0),
            (0xDEAD10CC, 666, 361),
            (256, 1024, 520),
        ];
        for (key, buckets, want) in cases {
            assert_eq!(
                jump_consistent_hash(key, buckets),
                want,
                "key {key:#x} buckets {buckets}"
            );
        }
    }

    /// The key that makes the `jump-consistent-hash` 0.1.0 crate overflow in debug builds.
    #[test]
    fn no_overflow_on_large_keys() {
        for buckets in 1..64 {
            assert!(jump_consistent_hash(0x2019_97f8_6663_13ab, buckets) < buckets);
            assert!(jump_consistent_hash(u64::MAX, buckets) < buckets);
        }
    }

    /// Growing from n to n+1 buckets moves keys only into the new bucket.
    #[test]
    fn growing_moves_keys_only_to_the_new_bucket() {
        for key in (0..10_000u64).map(|k| k.wrapping_mul(0x9e37_79b9_7f4a_7c15)) {
            for n in 1..20 {
                let before = jump_consistent_hash(key, n);
                let after = jump_consistent_hash(key, n + 1);
                assert!(after == before || after == n, "key {key} n {n}");
            }
        }
    }
}

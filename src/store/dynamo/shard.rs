//! Which partition of the due index a session lives in.
//!
//! Every live session carries a `due_shard`, so the due index has [`DUE_SHARDS`] partitions instead
//! of one hot one. The hash must never change between releases: a session written by an older
//! replica has to be found by a newer one, so this is a fixed FNV-1a, not `std`'s `DefaultHasher`
//! (which is randomly seeded per process).

use crate::domain::SessionId;
use crate::store::schema::DUE_SHARDS;

/// The shard number (`0 .. DUE_SHARDS`) of a session, stable across processes and releases.
pub fn shard_of(id: &SessionId) -> u32 {
    const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
    let hash = id.as_str().bytes().fold(FNV_OFFSET, |h, b| (h ^ u64::from(b)).wrapping_mul(FNV_PRIME));
    // The remainder is below DUE_SHARDS, which is a u32.
    (hash % u64::from(DUE_SHARDS)) as u32
}

/// The `due_shard` attribute value of shard `n`.
pub fn shard_key(n: u32) -> String {
    format!("DUE#{n}")
}

/// Every `due_shard` value, for queries that must visit them all.
pub fn all_shard_keys() -> impl Iterator<Item = String> {
    (0..DUE_SHARDS).map(shard_key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shard_of_an_id_never_changes() {
        // Pinned (computed independently with a textbook FNV-1a): a replica of another release
        // must put and look for a session in the same shard.
        let pinned = [("pp-7k2m9xq4ab", 4), ("pp-abcdefghij", 3), ("pp-zyxwvutsrq", 5), ("pp-3456789abc", 6), ("pp-k7xq2m9d4h", 1)];
        for (id, shard) in pinned {
            assert_eq!(shard_of(&SessionId::parse(id).unwrap()), shard, "{id}");
        }
    }

    #[test]
    fn random_ids_spread_over_every_shard() {
        let mut counts = vec![0u32; DUE_SHARDS as usize];
        for _ in 0..4000 {
            counts[shard_of(&SessionId::random()) as usize] += 1;
        }
        let expected = 4000 / DUE_SHARDS;
        for (shard, count) in counts.iter().enumerate() {
            assert!(*count > expected / 2 && *count < expected * 2, "shard {shard} got {count} of 4000: {counts:?}");
        }
    }

    #[test]
    fn shard_keys_cover_every_shard_once() {
        let keys: Vec<String> = all_shard_keys().collect();
        assert_eq!(keys.len(), DUE_SHARDS as usize);
        assert_eq!(keys[0], "DUE#0");
        assert_eq!(keys.last().map(String::as_str), Some(format!("DUE#{}", DUE_SHARDS - 1).as_str()));
    }
}

//! Raw interaction logs: interned (user, item, rating, timestamp) rows, the iterative k-core filter
//! and the conversion to time-ordered per-user sequences with deterministic ids (spec §1.3).

use std::collections::HashMap;

/// One raw interaction; `user` and `item` index the log's interned key tables.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogRow {
    pub user: u32,
    pub item: u32,
    pub rating: f32,
    pub timestamp: i64,
}

/// Interns raw string keys so a multi-million-row log stays compact.
#[derive(Debug, Default, Clone)]
pub struct Interner {
    keys: Vec<String>,
    index: HashMap<String, u32>,
}

impl Interner {
    pub fn intern(&mut self, key: &str) -> u32 {
        if let Some(&id) = self.index.get(key) {
            return id;
        }
        let id = self.keys.len() as u32;
        self.keys.push(key.to_string());
        self.index.insert(key.to_string(), id);
        id
    }

    pub fn key(&self, id: u32) -> &str {
        &self.keys[id as usize]
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// A raw interaction log in file order (duplicated (user, item) rows are kept, as officially).
#[derive(Debug, Default, Clone)]
pub struct RawLog {
    pub users: Interner,
    pub items: Interner,
    pub rows: Vec<LogRow>,
}

/// Time-ordered per-user histories with dense ids: user `u` (1-based) has `sequences[u - 1]`,
/// item `i` (1-based; 0 is padding) has raw key `item_keys[i - 1]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InteractionDataset {
    pub user_keys: Vec<String>,
    pub item_keys: Vec<String>,
    pub sequences: Vec<Vec<u32>>,
}

impl InteractionDataset {
    pub fn num_users(&self) -> usize {
        self.user_keys.len()
    }

    pub fn num_items(&self) -> usize {
        self.item_keys.len()
    }

    pub fn num_interactions(&self) -> usize {
        self.sequences.iter().map(Vec::len).sum()
    }
}

impl RawLog {
    pub fn push(&mut self, user: &str, item: &str, rating: f32, timestamp: i64) {
        let user = self.users.intern(user);
        let item = self.items.intern(item);
        self.rows.push(LogRow {
            user,
            item,
            rating,
            timestamp,
        });
    }

    /// Drops rows rated below `threshold` (the official threshold 0 keeps everything).
    pub fn retain_min_rating(&mut self, threshold: f32) {
        self.rows.retain(|r| r.rating >= threshold);
    }

    /// Iterative k-core: each pass counts rows per user and per item on the same snapshot, drops
    /// users and items with fewer than `k`, and repeats until a pass removes nothing.
    pub fn k_core(&mut self, k: usize) {
        loop {
            let mut user_count = vec![0usize; self.users.len()];
            let mut item_count = vec![0usize; self.items.len()];
            for r in &self.rows {
                user_count[r.user as usize] += 1;
                item_count[r.item as usize] += 1;
            }
            let before = self.rows.len();
            self.rows
                .retain(|r| user_count[r.user as usize] >= k && item_count[r.item as usize] >= k);
            if self.rows.len() == before {
                return;
            }
        }
    }

    /// Dense ids in natural key order (see [`natural_order`]) and per-user histories sorted by
    /// timestamp; the sort is stable, so same-day interactions keep their raw-file order.
    pub fn into_dataset(self) -> InteractionDataset {
        let (user_keys, user_id) = dense_ids(&self.users, self.rows.iter().map(|r| r.user));
        let (item_keys, item_id) = dense_ids(&self.items, self.rows.iter().map(|r| r.item));
        let mut histories: Vec<Vec<(i64, u32)>> = vec![Vec::new(); user_keys.len()];
        for r in &self.rows {
            histories[user_id[r.user as usize] as usize - 1]
                .push((r.timestamp, item_id[r.item as usize]));
        }
        let sequences = histories
            .into_iter()
            .map(|mut h| {
                h.sort_by_key(|&(t, _)| t); // stable
                h.into_iter().map(|(_, item)| item).collect()
            })
            .collect();
        InteractionDataset {
            user_keys,
            item_keys,
            sequences,
        }
    }
}

/// Keys that occur in `used`, in natural order, and a map interned id -> dense 1-based id (0 =
/// unused).
fn dense_ids(interner: &Interner, used: impl Iterator<Item = u32>) -> (Vec<String>, Vec<u32>) {
    let mut present = vec![false; interner.len()];
    for id in used {
        present[id as usize] = true;
    }
    let mut keys: Vec<u32> = (0..interner.len() as u32)
        .filter(|&i| present[i as usize])
        .collect();
    let names: Vec<&str> = keys.iter().map(|&i| interner.key(i)).collect();
    let order = natural_order(&names);
    keys = order.iter().map(|&pos| keys[pos]).collect();
    let mut dense = vec![0u32; interner.len()];
    for (rank, &interned) in keys.iter().enumerate() {
        dense[interned as usize] = rank as u32 + 1;
    }
    let sorted_keys = keys.iter().map(|&i| interner.key(i).to_string()).collect();
    (sorted_keys, dense)
}

/// Deterministic id order (spec §1.3 item 3, our fix for Python's set order): numeric when every
/// key is a non-negative integer (so S3Rec-style files keep their ids), else byte-wise ascending
/// (ASINs and reviewer ids). Returns the positions of `keys` in that order.
pub fn natural_order(keys: &[&str]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..keys.len()).collect();
    let numeric: Option<Vec<u64>> = keys.iter().map(|k| k.parse::<u64>().ok()).collect();
    match numeric {
        Some(values) => order.sort_by_key(|&i| (values[i], keys[i])),
        None => order.sort_by_key(|&i| keys[i]),
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn k_core_removes_until_stable() {
        // The k-core is unique (the largest sub-log where every user and item has >= k rows), so
        // the per-pass snapshot order of the official code cannot change the result; cascades can.
        let mut log = RawLog::default();
        // u1 has 3 rows, u2 has 2 rows but one of them is on item z seen once.
        for (u, i) in [
            ("u1", "x"),
            ("u1", "y"),
            ("u1", "x"),
            ("u2", "y"),
            ("u2", "z"),
            ("u3", "x"),
            ("u3", "y"),
        ] {
            log.push(u, i, 1.0, 0);
        }
        log.k_core(2);
        // pass 1: z (1 row) dropped -> u2 has 1 row; pass 2: u2 dropped -> y has 2 rows (u1, u3).
        let ds = log.into_dataset();
        assert_eq!(ds.user_keys, ["u1", "u3"]);
        assert_eq!(ds.item_keys, ["x", "y"]);
        assert_eq!(ds.sequences, vec![vec![1, 2, 1], vec![1, 2]]);
    }

    #[test]
    fn ids_are_natural_order_and_ties_keep_file_order() {
        let mut log = RawLog::default();
        log.push("B", "10", 1.0, 5);
        log.push("B", "9", 1.0, 5);
        log.push("B", "2", 1.0, 3);
        log.push("A", "9", 1.0, 1);
        let ds = log.into_dataset();
        assert_eq!(ds.user_keys, ["A", "B"]);
        assert_eq!(ds.item_keys, ["2", "9", "10"]); // numeric, not "10" < "2"
                                                    // B: t=3 item "2", then the two t=5 rows in file order ("10" then "9").
        assert_eq!(ds.sequences, vec![vec![2], vec![1, 3, 2]]);
    }

    #[test]
    fn natural_order_is_bytewise_for_non_numeric_keys() {
        let keys = ["B00X", "0205616461", "A1", "B00A"];
        let order = natural_order(&keys);
        let sorted: Vec<&str> = order.iter().map(|&i| keys[i]).collect();
        assert_eq!(sorted, ["0205616461", "A1", "B00A", "B00X"]);
    }

    #[test]
    fn rating_filter() {
        let mut log = RawLog::default();
        log.push("u", "a", 0.5, 0);
        log.push("u", "b", 3.0, 0);
        log.retain_min_rating(1.0);
        assert_eq!(log.rows.len(), 1);
    }
}

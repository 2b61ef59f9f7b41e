//! A prepared dataset as RecBole atomic files, so that any RecBole model runs on exactly our data
//! and split. In `OUT/NAME/`:
//!
//! - `NAME.inter` (`user_id:token`, `item_id:token`, `timestamp:float`): every history, the
//!   timestamp being the position in it (prepared datasets keep the order, not the times);
//! - `NAME.item` (`item_id:token`, `title:token_seq`), when the dataset has titles;
//! - `NAME.train.inter`, `NAME.valid.inter`, `NAME.test.inter` (`user_id:token`,
//!   `item_id_list:token_seq`, `item_id:token`): our samples one per row, inputs already capped,
//!   in our order, read by RecBole's `benchmark_filename` as they are (no re-splitting);
//! - `NAME.yaml`: the RecBole configuration lines that load them.
//!
//! User and item tokens are the dataset's own keys, so `prepare --from-recbole OUT/NAME` reads
//! the same ids back.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::split::SampleSet;
use super::PreparedDataset;

/// The files written, in the order written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exported {
    pub dir: PathBuf,
    pub files: Vec<PathBuf>,
}

/// RecBole separates the tokens of a `token_seq` with spaces and fields with tabs.
fn clean(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn interactions(dataset: &PreparedDataset) -> String {
    let inter = &dataset.interactions;
    let mut out = String::from("user_id:token\titem_id:token\ttimestamp:float\n");
    for (user, history) in inter.sequences.iter().enumerate() {
        for (position, &item) in history.iter().enumerate() {
            let _ = writeln!(
                out,
                "{}\t{}\t{position}",
                inter.user_keys[user],
                inter.item_keys[item as usize - 1]
            );
        }
    }
    out
}

fn samples(dataset: &PreparedDataset, set: &SampleSet) -> String {
    let inter = &dataset.interactions;
    let item = |id: u32| inter.item_keys[id as usize - 1].as_str();
    let mut out = String::from("user_id:token\titem_id_list:token_seq\titem_id:token\n");
    for (user, input, target) in set.iter() {
        let list: Vec<&str> = input.iter().map(|&i| item(i)).collect();
        let _ = writeln!(
            out,
            "{}\t{}\t{}",
            inter.user_keys[user as usize - 1],
            list.join(" "),
            item(target)
        );
    }
    out
}

fn items(dataset: &PreparedDataset) -> Option<String> {
    let titles = &dataset.side.titles;
    if titles.iter().all(Option::is_none) {
        return None;
    }
    let mut out = String::from("item_id:token\ttitle:token_seq\n");
    for (i, key) in dataset.interactions.item_keys.iter().enumerate() {
        let title = titles.get(i).cloned().flatten().unwrap_or_default();
        let _ = writeln!(out, "{key}\t{}", clean(&title));
    }
    Some(out)
}

/// The RecBole configuration that loads the exported files (`--config_files NAME.yaml`).
pub fn config_yaml(name: &str, data_path: &Path, dataset: &PreparedDataset) -> String {
    format!(
        "# Written by mmsr-bench export: {name} exactly as mmsr-bench splits it (samples as rows).\n\
data_path: {}\n\
dataset: {name}\n\
benchmark_filename: [train, valid, test]\n\
USER_ID_FIELD: user_id\n\
ITEM_ID_FIELD: item_id\n\
load_col:\n  inter: [user_id, item_id_list, item_id]\n\
alias_of_item_id: [item_id_list]\n\
MAX_ITEM_LIST_LENGTH: {}\n\
eval_args:\n  order: TO\n  mode: full\n\
metrics: [Hit, NDCG, MRR]\n\
topk: [5, 10, 20]\n\
valid_metric: NDCG@20\n",
        data_path.display(),
        dataset.split_config.max_len.max(1)
    )
}

/// Writes the files of `dataset` into `out/name/` (each atomically).
pub fn export(dataset: &PreparedDataset, name: &str, out: &Path) -> Result<Exported> {
    let dir = out.join(name);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let data_path = std::path::absolute(out).unwrap_or_else(|_| out.to_path_buf());
    let mut files: Vec<(String, String)> = vec![(format!("{name}.inter"), interactions(dataset))];
    if let Some(text) = items(dataset) {
        files.push((format!("{name}.item"), text));
    }
    for (part, set) in [
        ("train", &dataset.splits.train),
        ("valid", &dataset.splits.valid),
        ("test", &dataset.splits.test),
    ] {
        files.push((format!("{name}.{part}.inter"), samples(dataset, set)));
    }
    files.push((
        format!("{name}.yaml"),
        config_yaml(name, &data_path, dataset),
    ));
    let mut written = Vec::new();
    for (file, text) in files {
        let path = dir.join(file);
        write_atomically(&path, text.as_bytes())?;
        written.push(path);
    }
    Ok(Exported {
        dir,
        files: written,
    })
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp-export");
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::log::InteractionDataset;
    use crate::dataset::split::{split_sequences, SplitConfig};
    use crate::dataset::{PreparedDataset, Provenance};
    use crate::modality::ItemSideInfo;

    fn tiny() -> PreparedDataset {
        let sequences = vec![vec![1, 2, 3, 4, 5], vec![2, 3, 1, 4, 5]];
        let split = SplitConfig::default();
        PreparedDataset {
            name: "tiny".into(),
            provenance: Provenance {
                source: "hand-made".into(),
                k_core: None,
                min_rating: None,
            },
            split_config: split,
            splits: split_sequences(&sequences, &split),
            interactions: InteractionDataset {
                user_keys: vec!["u1".into(), "u2".into()],
                item_keys: ["a", "b", "c", "d", "e"].map(String::from).to_vec(),
                sequences,
            },
            side: ItemSideInfo {
                titles: vec![Some("Tab\there".into()), None, None, None, None],
                ..ItemSideInfo::default()
            },
            codes: None,
        }
    }

    #[test]
    fn the_files_hold_our_samples_by_hand() {
        let dir = tempfile::tempdir().unwrap();
        let data = tiny();
        let exported = export(&data, "tiny", dir.path()).unwrap();
        let read = |f: &str| std::fs::read_to_string(exported.dir.join(f)).unwrap();
        // n = 5: 1 test item, train part [0..4): samples ->2, ->3 train, ->4 validation.
        assert_eq!(
            read("tiny.train.inter"),
            "user_id:token\titem_id_list:token_seq\titem_id:token\nu1\ta\tb\nu1\ta b\tc\nu2\tb\tc\nu2\tb c\ta\n"
        );
        assert_eq!(
            read("tiny.valid.inter").lines().nth(1),
            Some("u1\ta b c\td")
        );
        assert_eq!(
            read("tiny.test.inter").lines().nth(2),
            Some("u2\tb c a d\te")
        );
        assert_eq!(read("tiny.inter").lines().nth(6), Some("u2\tb\t0"));
        assert_eq!(read("tiny.item").lines().nth(1), Some("a\tTab here"));
        assert!(read("tiny.yaml").contains("benchmark_filename: [train, valid, test]"));
        assert_eq!(exported.files.len(), 6);
    }
}

//! Item and code ids of an official folder, checked against the layout of spec §2.6 before any
//! table is sized by them, and the per-item code links read from the per-position bundles.
//! Every error names the file and sample that hold the offending id.

use std::path::Path;

use super::{file_error, OfficialError, SampleLists};

/// Smallest and largest id over samples -> positions -> bundle ids (None when all are empty).
pub(super) fn id_range(lists: &[Vec<Vec<u32>>]) -> Option<(u32, u32)> {
    let ids = lists.iter().flatten().flatten().copied();
    ids.fold(None, |acc, id| match acc {
        None => Some((id, id)),
        Some((lo, hi)) => Some((lo.min(id), hi.max(id))),
    })
}

/// One modality's codes: the bundle list that holds them and its id range.
pub(super) struct CodeSpan {
    pub name: &'static str,
    pub list: &'static str,
    pub which: fn(&SampleLists) -> &Vec<Vec<Vec<u32>>>,
    pub offset: u32,
    pub codes: usize,
}

/// Per-item code links from per-position bundles; every occurrence of an item must carry the
/// same bundle (true for official outputs, where bundles are item -> codes lookups). Errors name
/// the file and sample of the offending id.
pub(super) fn per_item_links(
    files: &[(&SampleLists, &Path)],
    span: &CodeSpan,
    num_items: usize,
    train_path: &Path,
) -> Result<Vec<Vec<u32>>, OfficialError> {
    let mut links: Vec<Option<Vec<u32>>> = vec![None; num_items + 1];
    for &(lists, path) in files {
        for (s, (input, bundles)) in lists.inputs.iter().zip((span.which)(lists)).enumerate() {
            for (&item, bundle) in input.iter().zip(bundles) {
                let local = bundle
                    .iter()
                    .map(|&id| {
                        id.checked_sub(span.offset)
                            .filter(|&local| (local as usize) < span.codes)
                            .ok_or_else(|| {
                                file_error(
                                    path,
                                    format!(
                                        "sample {s}: {} code id {id} in list {} is outside {}..={}, the {} codes of {}",
                                        span.name,
                                        span.list,
                                        span.offset,
                                        span.offset as usize + span.codes - 1,
                                        span.name,
                                        train_path.display()
                                    ),
                                )
                            })
                    })
                    .collect::<Result<Vec<u32>, _>>()?;
                match &links[item as usize] {
                    None => links[item as usize] = Some(local),
                    Some(existing) if *existing == local => {}
                    Some(_) => {
                        return Err(file_error(path, format!("sample {s}: item {item} carries other {} code bundles than where it occurred before; per-sample bundles are not supported", span.name)))
                    }
                }
            }
        }
    }
    Ok(links.into_iter().map(Option::unwrap_or_default).collect())
}

/// Slack of the id density check: the id space may be `2 × distinct ids + ID_SLACK`.
pub const ID_SLACK: u64 = 65_536;

/// Checks the item and code ids of both files against the layout of spec §2.6 before anything
/// is sized by them: items are `1..=n` and the codes of `train.txt` follow them, so every item id
/// (of either file) lies below the smallest code id of `train.txt`; and every id up to the
/// largest sizes a table row (item links, embeddings), so the id space must be about as dense
/// as the official producer numbers it (at most twice the distinct ids used, plus
/// [`ID_SLACK`]): a stray huge id would otherwise allocate gigabytes. Returns the item count
/// (the official get_item_num: the largest item id).
pub(super) fn check_ids(
    train: (&SampleLists, &Path),
    test: (&SampleLists, &Path),
    code_floor: u32,
    largest_code: (u32, &str),
) -> Result<usize, OfficialError> {
    let mut distinct = std::collections::HashSet::new();
    let mut num_items = 0;
    for (lists, path) in [train, test] {
        for (s, (input, &target)) in lists.inputs.iter().zip(&lists.targets).enumerate() {
            for &id in input.iter().chain([&target]) {
                if id >= code_floor {
                    return Err(file_error(
                        path,
                        format!(
                            "sample {s}: item id {id} is beyond the item ids 1..={} (items come before the codes, and the code ids of {} start at {code_floor})",
                            code_floor.saturating_sub(1),
                            train.1.display()
                        ),
                    ));
                }
                num_items = num_items.max(id);
                distinct.insert(id);
            }
        }
    }
    let train_codes = [&train.0.first, &train.0.second];
    distinct.extend(
        train_codes
            .iter()
            .flat_map(|l| l.iter().flatten().flatten()),
    );
    let (largest, list) = largest_code;
    let allowed = (2 * distinct.len() as u64 + ID_SLACK).min(u64::from(u32::MAX) - 1);
    if u64::from(largest) > allowed {
        return Err(file_error(
            train.1,
            format!(
                "code id {largest} in list {list} would size tables of {} rows, but the samples use {} distinct item and code ids: ids must be about dense, as the official producer numbers them (at most 2 × distinct + {ID_SLACK} = {allowed})",
                u64::from(largest) + 1,
                distinct.len()
            ),
        ));
    }
    Ok(num_items as usize)
}

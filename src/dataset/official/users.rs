//! The user ids an official folder carries (`all_train_seq.txt`: `(uid, [train items])` per
//! user; `all_test_seq.txt`: `(uid, [train items], [test items])`), and the training samples
//! mapped back to their users. The official producer writes, user by user in file order, the
//! prefixes of the train part from the longest down (input = the last `max_len` items before
//! position j, target = item j), so the mapping is a walk that checks every sample. With it the
//! validation carve-out is the spec's (§1.3): each user's longest-prefix sample, whose target is
//! the last train item; no user's samples fall on both sides.

use std::path::Path;

use super::{as_id, as_list, file_error, load_value, OfficialError, SampleLists};

/// One user's history as the folder stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserHistory {
    pub uid: u32,
    pub train: Vec<u32>,
    /// Empty when the folder has no `all_test_seq.txt`.
    pub test: Vec<u32>,
}

fn ids(value: &serde_pickle::Value, what: &str, path: &Path) -> Result<Vec<u32>, OfficialError> {
    as_list(value, what, path)?
        .iter()
        .map(|v| as_id(v, what, path))
        .collect()
}

/// The users of `dir`, or `None` when it has no `all_train_seq.txt`.
pub fn read_users(dir: &Path) -> Result<Option<Vec<UserHistory>>, OfficialError> {
    let train_path = dir.join("all_train_seq.txt");
    if !train_path.exists() {
        return Ok(None);
    }
    let value = load_value(&train_path)?;
    let mut users = Vec::new();
    for (n, entry) in as_list(&value, "a list of (uid, train items)", &train_path)?
        .iter()
        .enumerate()
    {
        let what = format!("entry {n} (uid, train items)");
        let [uid, train] = as_list(entry, &what, &train_path)? else {
            return Err(file_error(
                &train_path,
                format!("{what}: expected 2 fields"),
            ));
        };
        users.push(UserHistory {
            uid: as_id(uid, &what, &train_path)?,
            train: ids(train, &what, &train_path)?,
            test: Vec::new(),
        });
    }
    let test_path = dir.join("all_test_seq.txt");
    if test_path.exists() {
        let value = load_value(&test_path)?;
        let entries = as_list(
            &value,
            "a list of (uid, train items, test items)",
            &test_path,
        )?;
        if entries.len() != users.len() {
            return Err(file_error(
                &test_path,
                format!(
                    "{} users, but all_train_seq.txt has {}",
                    entries.len(),
                    users.len()
                ),
            ));
        }
        for (n, (entry, user)) in entries.iter().zip(&mut users).enumerate() {
            let what = format!("entry {n} (uid, train items, test items)");
            let [uid, train, test] = as_list(entry, &what, &test_path)? else {
                return Err(file_error(&test_path, format!("{what}: expected 3 fields")));
            };
            if as_id(uid, &what, &test_path)? != user.uid
                || ids(train, &what, &test_path)? != user.train
            {
                return Err(file_error(
                    &test_path,
                    format!("{what}: user or train items differ from all_train_seq.txt"),
                ));
            }
            user.test = ids(test, &what, &test_path)?;
        }
    }
    Ok(Some(users))
}

/// For every training sample, whether it is its user's validation sample (the longest prefix),
/// found by walking the users; `Err` says where the samples stop matching the histories.
pub fn validation_flags(
    users: &[UserHistory],
    train: &SampleLists,
    max_len: usize,
) -> Result<Vec<bool>, String> {
    let mut flags = Vec::with_capacity(train.inputs.len());
    let mut s = 0;
    for user in users {
        let t = &user.train;
        for j in (1..t.len()).rev() {
            let expected_input = &t[j.saturating_sub(max_len)..j];
            match (train.inputs.get(s), train.targets.get(s)) {
                (Some(input), Some(&target)) if input == expected_input && target == t[j] => {}
                _ => {
                    return Err(format!(
                        "training sample {s} is not user {}'s prefix of length {j} (the official producer's order)",
                        user.uid
                    ))
                }
            }
            flags.push(j == t.len() - 1);
            s += 1;
        }
    }
    if s != train.inputs.len() {
        return Err(format!(
            "the users' histories give {s} training samples, the file has {}",
            train.inputs.len()
        ));
    }
    Ok(flags)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lists(samples: &[(&[u32], u32)]) -> SampleLists {
        SampleLists {
            inputs: samples.iter().map(|(i, _)| i.to_vec()).collect(),
            targets: samples.iter().map(|(_, t)| *t).collect(),
            ..SampleLists::default()
        }
    }

    #[test]
    fn the_longest_prefix_of_each_user_is_its_validation_sample() {
        let users = vec![
            UserHistory {
                uid: 1,
                train: vec![1, 2, 3, 4],
                test: vec![],
            },
            UserHistory {
                uid: 2,
                train: vec![6, 7, 8],
                test: vec![],
            },
        ];
        let train = lists(&[
            (&[1, 2, 3], 4),
            (&[1, 2], 3),
            (&[1], 2),
            (&[6, 7], 8),
            (&[6], 7),
        ]);
        assert_eq!(
            validation_flags(&users, &train, 50).unwrap(),
            vec![true, false, false, true, false]
        );
        // Truncation to the last max_len items.
        let train = lists(&[
            (&[2, 3], 4),
            (&[1, 2], 3),
            (&[1], 2),
            (&[6, 7], 8),
            (&[6], 7),
        ]);
        assert!(validation_flags(&users, &train, 2).is_ok());
        let shuffled = lists(&[
            (&[1, 2], 3),
            (&[1, 2, 3], 4),
            (&[1], 2),
            (&[6, 7], 8),
            (&[6], 7),
        ]);
        let e = validation_flags(&users, &shuffled, 50).unwrap_err();
        assert!(
            e.contains("training sample 0 is not user 1's prefix of length 3"),
            "{e}"
        );
        let short = lists(&[
            (&[1, 2, 3], 4),
            (&[1, 2], 3),
            (&[1], 2),
            (&[6, 7], 8),
            (&[6], 7),
            (&[9], 9),
        ]);
        assert!(validation_flags(&users, &short, 50)
            .unwrap_err()
            .contains("give 5 training samples, the file has 6"));
    }
}

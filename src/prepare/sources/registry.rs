//! The registry of raw sources: `datasets/<name>.yaml` for the six Amazon-2014 datasets of the
//! MMSR paper. Each entry names the category stem, the raw files with their published URLs, sizes
//! and sha256 where known, and the expected 5-core counts (spec §1.1). The six files are compiled
//! into the binary; a registry directory on disk (the repository's `datasets/`) takes precedence,
//! and `download --record-checksums` writes sizes and checksums back into it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::dataset::registry::AMAZON_DATASETS;

/// The registry files compiled into the binary.
const BUILTIN: [(&str, &str); 6] = [
    ("beauty", include_str!("../../../datasets/beauty.yaml")),
    ("clothing", include_str!("../../../datasets/clothing.yaml")),
    ("sport", include_str!("../../../datasets/sport.yaml")),
    ("toy", include_str!("../../../datasets/toy.yaml")),
    ("kitchen", include_str!("../../../datasets/kitchen.yaml")),
    ("phone", include_str!("../../../datasets/phone.yaml")),
];

#[derive(Debug, Error)]
pub enum RegistryError {
    #[error("unknown dataset {name:?}; valid names: {}", valid.join(", "))]
    Unknown { name: String, valid: Vec<String> },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{origin}: invalid registry entry: {problem}")]
    Invalid { origin: String, problem: String },
}

/// What a raw file is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileRole {
    /// `ratings_<Cat>.csv`: every rating; MMSR's input (it applies the 5-core itself).
    Ratings,
    /// `reviews_<Cat>_5.json.gz`: the official 5-core reviews (an alternative input).
    Reviews,
    /// `meta_<Cat>.json.gz`: titles (and more) per product.
    Meta,
    /// `image_features_<Cat>.b`: 4096-d image features per product.
    ImageFeatures,
}

impl FileRole {
    pub const ALL: [FileRole; 4] = [
        FileRole::Ratings,
        FileRole::Reviews,
        FileRole::Meta,
        FileRole::ImageFeatures,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FileRole::Ratings => "ratings",
            FileRole::Reviews => "reviews",
            FileRole::Meta => "meta",
            FileRole::ImageFeatures => "image_features",
        }
    }

    pub fn parse(text: &str) -> Option<FileRole> {
        FileRole::ALL.into_iter().find(|r| r.name() == text)
    }
}

/// The standard 5-core statistics of spec §1.1 (train samples before the validation carve-out).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedCounts {
    pub users: usize,
    pub items: usize,
    pub interactions: usize,
    pub train_samples: usize,
    pub test_samples: usize,
}

/// One raw file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceFile {
    pub role: FileRole,
    /// File name under `<data-dir>/raw/<dataset>/`; equals the last segment of `url`.
    pub file: String,
    /// The published URL.
    pub url: String,
    /// Size in bytes, when known.
    #[serde(default)]
    pub size: Option<u64>,
    /// Lower-case hex sha256, when known.
    #[serde(default)]
    pub sha256: Option<String>,
    /// Number of lines / records the file is published with, when known.
    #[serde(default)]
    pub records: Option<u64>,
    /// Fetched only when asked for by role (`download --files`), e.g. the alternative 5-core
    /// reviews.
    #[serde(default)]
    pub optional: bool,
}

/// One dataset's registry entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetSource {
    pub name: String,
    /// Amazon-2014 category stem, e.g. `Clothing_Shoes_and_Jewelry`.
    pub category: String,
    /// The prefix of every URL that `--mirror` replaces (ends with `/`).
    pub url_root: String,
    pub expected: ExpectedCounts,
    pub files: Vec<SourceFile>,
}

/// Where a registry entry was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    File(PathBuf),
    Builtin(String),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::File(path) => write!(f, "{}", path.display()),
            Origin::Builtin(name) => write!(f, "datasets/{name}.yaml (built into the binary)"),
        }
    }
}

impl DatasetSource {
    pub fn file(&self, role: FileRole) -> Option<&SourceFile> {
        self.files.iter().find(|f| f.role == role)
    }

    /// `<data-dir>/raw/<name>`.
    pub fn raw_dir(&self, data_dir: &Path) -> PathBuf {
        data_dir.join("raw").join(&self.name)
    }

    /// Where the file of `role` lives in `data_dir`, if the registry has one.
    pub fn path(&self, data_dir: &Path, role: FileRole) -> Option<PathBuf> {
        self.file(role)
            .map(|f| self.raw_dir(data_dir).join(&f.file))
    }

    /// The URL to fetch `file` from: the published one, or with `mirror` in place of `url_root`
    /// (a `/` is put between them when `mirror` does not end with one).
    pub fn url(&self, file: &SourceFile, mirror: Option<&str>) -> String {
        match (mirror, file.url.strip_prefix(&self.url_root)) {
            (Some(mirror), Some(rest)) => {
                format!("{}/{rest}", mirror.trim_end_matches('/'))
            }
            _ => file.url.clone(),
        }
    }

    fn validate(&self, expected_name: &str, origin: &Origin) -> Result<(), RegistryError> {
        let invalid = |problem: String| RegistryError::Invalid {
            origin: origin.to_string(),
            problem,
        };
        if self.name != expected_name {
            return Err(invalid(format!(
                "name {:?} does not match the file name {expected_name:?}",
                self.name
            )));
        }
        if !self.url_root.ends_with('/') || !self.url_root.contains("://") {
            return Err(invalid(format!(
                "url_root {:?} must be an absolute URL ending with '/'",
                self.url_root
            )));
        }
        for (i, f) in self.files.iter().enumerate() {
            let what = format!("files[{i}] ({})", f.role.name());
            if self.files[..i].iter().any(|g| g.role == f.role) {
                return Err(invalid(format!("{what}: role listed twice")));
            }
            if !f.url.starts_with(&self.url_root) {
                return Err(invalid(format!(
                    "{what}: url {:?} does not start with url_root {:?}",
                    f.url, self.url_root
                )));
            }
            if f.url.rsplit('/').next() != Some(f.file.as_str()) {
                return Err(invalid(format!(
                    "{what}: file {:?} is not the last segment of its url",
                    f.file
                )));
            }
            if f.file.is_empty()
                || f.file.starts_with('.')
                || f.file.contains(['/', '\\'])
                || f.file.ends_with(".part")
            {
                return Err(invalid(format!(
                    "{what}: {:?} is not a plain file name",
                    f.file
                )));
            }
            if let Some(sum) = &f.sha256 {
                if sum.len() != 64 || !sum.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(invalid(format!(
                        "{what}: sha256 {sum:?} is not 64 hex digits"
                    )));
                }
            }
        }
        Ok(())
    }
}

/// The valid dataset arguments of `download`.
pub fn valid_names() -> Vec<String> {
    AMAZON_DATASETS
        .iter()
        .map(|s| s.to_string())
        .chain(["all".to_string()])
        .collect()
}

/// `all` or one of the six names; anything else is an error listing the valid ones.
pub fn resolve_names(arg: &str) -> Result<Vec<&'static str>, RegistryError> {
    if arg == "all" {
        return Ok(AMAZON_DATASETS.to_vec());
    }
    AMAZON_DATASETS
        .iter()
        .find(|&&n| n == arg)
        .map(|&n| vec![n])
        .ok_or_else(|| RegistryError::Unknown {
            name: arg.to_string(),
            valid: valid_names(),
        })
}

/// Parses and validates registry text for dataset `name`.
pub fn parse(text: &str, name: &str, origin: Origin) -> Result<DatasetSource, RegistryError> {
    let mut source: DatasetSource =
        serde_norway::from_str(text).map_err(|e| RegistryError::Invalid {
            origin: origin.to_string(),
            problem: e.to_string(),
        })?;
    for f in &mut source.files {
        if let Some(sum) = &mut f.sha256 {
            sum.make_ascii_lowercase();
        }
    }
    source.validate(name, &origin)?;
    Ok(source)
}

/// The entry for `name`: from `registry_dir/<name>.yaml` when a directory is given, else the
/// built-in copy. Returns where it came from, too.
pub fn load(
    name: &str,
    registry_dir: Option<&Path>,
) -> Result<(DatasetSource, Origin), RegistryError> {
    resolve_names(name)?;
    match registry_dir {
        Some(dir) => {
            let path = dir.join(format!("{name}.yaml"));
            let text = std::fs::read_to_string(&path).map_err(|source| RegistryError::Io {
                path: path.clone(),
                source,
            })?;
            let origin = Origin::File(path);
            Ok((parse(&text, name, origin.clone())?, origin))
        }
        None => {
            let text = BUILTIN
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, text)| *text)
                .ok_or_else(|| RegistryError::Unknown {
                    name: name.to_string(),
                    valid: valid_names(),
                })?;
            let origin = Origin::Builtin(name.to_string());
            Ok((parse(text, name, origin.clone())?, origin))
        }
    }
}

/// Writes `size` and `sha256` of `file` into the registry file at `path`, editing only the
/// `size:` and `sha256:` lines of that file's entry (comments and layout stay). Returns whether
/// anything changed. The result is parsed again before it replaces the file.
pub fn record_checksum(
    path: &Path,
    name: &str,
    file: &str,
    size: u64,
    sha256: &str,
) -> Result<bool, RegistryError> {
    let io = |source| RegistryError::Io {
        path: path.to_path_buf(),
        source,
    };
    let text = std::fs::read_to_string(path).map_err(io)?;
    let invalid = |problem: String| RegistryError::Invalid {
        origin: path.display().to_string(),
        problem,
    };
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let file_line = lines
        .iter()
        .position(|l| l.trim() == format!("file: {file}"))
        .ok_or_else(|| invalid(format!("no line `file: {file}` to record its checksum at")))?;
    let indent: String = lines[file_line].chars().take_while(|c| *c == ' ').collect();
    // The entry ends at the next list item or a less indented line.
    let end = (file_line + 1..lines.len())
        .find(|&i| {
            let l = &lines[i];
            !l.trim().is_empty() && !l.starts_with(&indent) || l.trim_start().starts_with("- ")
        })
        .unwrap_or(lines.len());
    for (key, value) in [("size", size.to_string()), ("sha256", sha256.to_string())] {
        let new = format!("{indent}{key}: {value}");
        match (file_line + 1..end).find(|&i| lines[i].trim_start().starts_with(&format!("{key}:")))
        {
            Some(i) => lines[i] = new,
            None => lines.insert(file_line + 1, new),
        }
    }
    let mut updated = lines.join("\n");
    updated.push('\n');
    if updated == text {
        return Ok(false);
    }
    let check = parse(&updated, name, Origin::File(path.to_path_buf()))?;
    let entry = check.files.iter().find(|f| f.file == file);
    if entry.map(|f| (f.size, f.sha256.as_deref())) != Some((Some(size), Some(sha256))) {
        return Err(invalid(format!(
            "could not record the checksum of {file}: unexpected layout; add `size: {size}` and `sha256: {sha256}` to its entry by hand"
        )));
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    std::io::Write::write_all(&mut tmp, updated.as_bytes()).map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_entries_are_valid_and_match_the_spec() {
        let want = [
            ("beauty", "Beauty", 22_363, 12_101, 198_502),
            (
                "clothing",
                "Clothing_Shoes_and_Jewelry",
                39_387,
                23_033,
                278_677,
            ),
            ("sport", "Sports_and_Outdoors", 35_598, 18_357, 296_337),
            ("toy", "Toys_and_Games", 19_412, 11_924, 167_597),
            ("kitchen", "Home_and_Kitchen", 66_519, 28_237, 551_682),
            (
                "phone",
                "Cell_Phones_and_Accessories",
                27_879,
                10_429,
                194_439,
            ),
        ];
        for (name, category, users, items, interactions) in want {
            let (s, origin) = load(name, None).unwrap();
            assert_eq!(origin, Origin::Builtin(name.into()));
            assert_eq!(s.category, category);
            assert_eq!(
                (s.expected.users, s.expected.items, s.expected.interactions),
                (users, items, interactions)
            );
            for role in FileRole::ALL {
                let f = s
                    .file(role)
                    .unwrap_or_else(|| panic!("{name}: no {role:?}"));
                assert!(f.file.contains(category), "{}", f.file);
            }
            assert_eq!(
                s.file(FileRole::Ratings).unwrap().url,
                format!("http://snap.stanford.edu/data/amazon/productGraph/categoryFiles/ratings_{category}.csv")
            );
            assert_eq!(
                s.file(FileRole::ImageFeatures).unwrap().url,
                format!("http://snap.stanford.edu/data/amazon/productGraph/image_features/categoryFiles/image_features_{category}.b")
            );
        }
    }

    #[test]
    fn mirror_replaces_the_url_root() {
        let (s, _) = load("toy", None).unwrap();
        let f = s.file(FileRole::ImageFeatures).unwrap();
        assert_eq!(
            s.url(f, Some("https://example.org/amazon")),
            "https://example.org/amazon/image_features/categoryFiles/image_features_Toys_and_Games.b"
        );
        assert_eq!(
            s.url(f, Some("http://127.0.0.1:8000/")),
            "http://127.0.0.1:8000/image_features/categoryFiles/image_features_Toys_and_Games.b"
        );
        assert_eq!(s.url(f, None), f.url);
    }

    #[test]
    fn unknown_names_list_the_valid_ones() {
        let e = resolve_names("beuaty").unwrap_err().to_string();
        assert_eq!(
            e,
            "unknown dataset \"beuaty\"; valid names: beauty, clothing, sport, toy, kitchen, phone, all"
        );
        assert_eq!(resolve_names("all").unwrap().len(), 6);
        assert!(load("synthetic", None).is_err());
    }

    #[test]
    fn record_checksum_edits_only_that_entry() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("phone.yaml");
        let original = BUILTIN[5].1;
        std::fs::write(&path, original).unwrap();
        let sum = "ab".repeat(32);
        let (s, _) = load("phone", Some(dir.path())).unwrap();
        let meta = s.file(FileRole::Meta).unwrap().file.clone();
        assert!(record_checksum(&path, "phone", &meta, 1234, &sum).unwrap());
        assert!(!record_checksum(&path, "phone", &meta, 1234, &sum).unwrap());
        let (after, _) = load("phone", Some(dir.path())).unwrap();
        for (old, new) in s.files.iter().zip(&after.files) {
            if new.file == meta {
                assert_eq!(
                    (new.size, new.sha256.as_deref()),
                    (Some(1234), Some(sum.as_str()))
                );
            } else {
                assert_eq!(old, new);
            }
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let changed = text
            .lines()
            .zip(original.lines())
            .filter(|(a, b)| a != b)
            .count();
        assert_eq!(changed, 2, "only the size and sha256 lines change");
    }

    #[test]
    fn invalid_entries_are_rejected_with_the_problem() {
        let text = BUILTIN[0].1.replace("name: beauty", "name: beuaty");
        let e = parse(&text, "beauty", Origin::File("x/beauty.yaml".into()))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("x/beauty.yaml: invalid registry entry: name \"beuaty\""),
            "{e}"
        );
        let text = BUILTIN[0]
            .1
            .replace("category: Beauty", "category: Beauty\ncolour: red");
        let e = parse(&text, "beauty", Origin::Builtin("beauty".into()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `colour`"), "{e}");
    }
}

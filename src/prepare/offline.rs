//! The six Amazon datasets from what is stored offline (`../shared/data/README.md` §3): one recipe
//! per dataset in `datasets/offline/<name>.yaml` names the interaction sequences, the item side
//! information per modality (or none) and how the data differs from the paper's, so
//! `mmsr-bench prepare <name>-offline` rebuilds it from the shared data folder alone. The recipes
//! are compiled into the binary; a registry directory on disk takes precedence.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use tch::Device;

use super::pipeline::{from_sequences, PrepareOptions, PrepareOutcome, SideSpec};
use super::sources::registry;
use super::sources::side::SideSource;

/// The recipes compiled into the binary.
const BUILTIN: [(&str, &str); 6] = [
    (
        "beauty-offline",
        include_str!("../../datasets/offline/beauty-offline.yaml"),
    ),
    (
        "sport-offline",
        include_str!("../../datasets/offline/sport-offline.yaml"),
    ),
    (
        "toy-offline",
        include_str!("../../datasets/offline/toy-offline.yaml"),
    ),
    (
        "clothing-offline",
        include_str!("../../datasets/offline/clothing-offline.yaml"),
    ),
    (
        "kitchen-offline",
        include_str!("../../datasets/offline/kitchen-offline.yaml"),
    ),
    (
        "phone-offline",
        include_str!("../../datasets/offline/phone-offline.yaml"),
    ),
];

/// Where the shared data lives when neither `--shared-data` nor `MMSR_SHARED_DATA` says.
pub const DEFAULT_SHARED_DATA: &str = "../shared/data";

/// One offline dataset: every path is relative to the shared data folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OfflineRecipe {
    pub name: String,
    /// The Amazon registry entry whose 5-core counts these sequences should match.
    pub registry: String,
    /// One user per line, `user item item ...`.
    pub sequences: PathBuf,
    /// False where the stored rows lost the time order (the next-item task is then not the
    /// paper's; said in the provenance and so in every table).
    pub time_ordered: bool,
    /// Whether the stored sequences are the standard 5-core (counts then checked against the
    /// registry entry).
    pub five_core: bool,
    #[serde(default)]
    pub text: Option<SideSource>,
    #[serde(default)]
    pub image_stand_in: Option<SideSource>,
    /// What a reader of the tables must know (origin, stand-ins, differences).
    pub label: String,
}

/// The names of the built-in recipes.
pub fn names() -> Vec<&'static str> {
    BUILTIN.iter().map(|(name, _)| *name).collect()
}

/// The recipe for `name`, from `registry_dir/offline/<name>.yaml` when that file exists, else the
/// built-in copy; None when `name` has no recipe.
pub fn find(name: &str, registry_dir: Option<&Path>) -> Result<Option<(OfflineRecipe, String)>> {
    let on_disk = registry_dir.map(|dir| dir.join("offline").join(format!("{name}.yaml")));
    let (text, origin) = match on_disk.filter(|p| p.exists()) {
        Some(path) => (
            std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?,
            path.display().to_string(),
        ),
        None => match BUILTIN.iter().find(|(n, _)| *n == name) {
            Some((_, text)) => (
                text.to_string(),
                format!("datasets/offline/{name}.yaml (built into the binary)"),
            ),
            None => return Ok(None),
        },
    };
    let recipe: OfflineRecipe = serde_norway::from_str(&text)
        .with_context(|| format!("{origin}: invalid offline recipe"))?;
    anyhow::ensure!(
        recipe.name == name,
        "{origin}: name {:?} does not match the file name {name:?}",
        recipe.name
    );
    Ok(Some((recipe, origin)))
}

/// Prepares the recipe's dataset from the shared data folder.
pub fn prepare(
    recipe: &OfflineRecipe,
    origin: &str,
    shared: &Path,
    options: &PrepareOptions,
    device: Device,
) -> Result<PrepareOutcome> {
    let sequences = shared.join(&recipe.sequences);
    anyhow::ensure!(
        sequences.exists(),
        "{}: the sequence file of recipe {origin} is missing; point --shared-data (or MMSR_SHARED_DATA) at the shared data folder",
        sequences.display()
    );
    let side = SideSpec {
        text: recipe.text.as_ref().map(|s| s.under(shared)),
        image_stand_in: recipe.image_stand_in.as_ref().map(|s| s.under(shared)),
    };
    let mut outcome = from_sequences(&recipe.name, &sequences, &side, options, device)?;
    let provenance = &mut outcome.dataset.provenance.source;
    *provenance = format!(
        "offline recipe {}: {}; {provenance}",
        recipe.name, recipe.label
    );
    if recipe.five_core {
        let (entry, _) = registry::load(&recipe.registry, None)?;
        let counts = outcome.dataset.counts();
        for (what, got, want) in [
            ("users", counts.users, entry.expected.users),
            ("items", counts.items, entry.expected.items),
            (
                "interactions",
                counts.interactions,
                entry.expected.interactions,
            ),
        ] {
            if got != want {
                outcome.warnings.push(format!(
                    "{}: {got} {what}, but the {} 5-core has {want} (spec §1.1)",
                    recipe.name, recipe.registry
                ));
            }
        }
        outcome.notes.push(format!(
            "counts checked against the {} 5-core of spec §1.1",
            recipe.registry
        ));
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_recipe_parses_and_names_an_amazon_entry() {
        for name in names() {
            let (recipe, origin) = find(name, None).unwrap().unwrap();
            assert!(origin.contains("built into the binary"));
            assert!(registry::load(&recipe.registry, None).is_ok(), "{name}");
            assert!(!recipe.label.is_empty());
        }
        assert!(find("nonesuch", None).unwrap().is_none());
        // The label is what tables show: it must say when the task is not the paper's.
        for name in names() {
            let recipe = find(name, None).unwrap().unwrap().0;
            assert_eq!(
                recipe.time_ordered,
                !recipe.label.contains("NOT time-ordered"),
                "{name}"
            );
            let modalities = recipe.text.is_some() || recipe.image_stand_in.is_some();
            assert_eq!(modalities, !recipe.label.contains("no modality"), "{name}");
        }
        let phone = find("phone-offline", None).unwrap().unwrap().0;
        assert!(!phone.time_ordered && phone.text.is_none());
    }

    #[test]
    fn a_recipe_on_disk_takes_precedence_and_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("offline")).unwrap();
        let path = dir.path().join("offline/beauty-offline.yaml");
        std::fs::write(&path, "name: other\nregistry: beauty\nsequences: s.txt\ntime_ordered: true\nfive_core: true\nlabel: x\n").unwrap();
        let e = find("beauty-offline", Some(dir.path())).unwrap_err();
        assert!(
            format!("{e:#}").contains("does not match the file name"),
            "{e:#}"
        );
        std::fs::write(&path, "name: beauty-offline\nregistry: beauty\nsequences: s.txt\ntime_ordered: true\nfive_core: true\nlabel: x\ncolour: red\n").unwrap();
        let e = format!(
            "{:#}",
            find("beauty-offline", Some(dir.path())).unwrap_err()
        );
        assert!(
            e.contains("beauty-offline.yaml: invalid offline recipe") && e.contains("colour"),
            "{e}"
        );
    }
}

//! The leaderboard page (`leaderboard --html`) in a real headless browser: Debian's chromium
//! driven by chromedriver over the W3C WebDriver HTTP API. The page of committed folders must
//! load without a script error or a fetch, render one row per leaderboard row, sort on a header
//! click (both directions, "–" last) and show every number of leaderboard.json. Needs
//! /usr/bin/chromium and /usr/bin/chromedriver (`./ci/setup-chromium.sh`): without them the test
//! fails, since a skipped browser test would pass having checked nothing. `check` treats a
//! committed index.html like the other generated files (the last test).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use mmsr_bench::record::read::load_results;
use mmsr_bench::report::aggregate::{build_boards, holm};
use mmsr_bench::report::html::{escape, inline_svg, modality_labels, page};
use serde_json::{json, Value};

use crate::common::webdriver::Browser;
use crate::common::{self, mmsr, stdout};

fn committed(folder: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("leaderboard")
        .join(folder)
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            fs::copy(&path, &target).unwrap();
        }
    }
}

/// `leaderboard --html` over a copy of a committed folder's runs; the folder and its JSON.
fn generate(folder: &str) -> (tempfile::TempDir, Value) {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&committed(folder).join("runs"), &dir.path().join("runs"));
    let out = mmsr(
        dir.path(),
        &["leaderboard", "--results", ".", "--out", ".", "--html"],
    );
    assert!(out.status.success(), "{}", common::stderr(&out));
    let text = fs::read_to_string(dir.path().join("leaderboard.json")).unwrap();
    (dir, serde_json::from_str(&text).unwrap())
}

/// Every board table as rendered: dataset, header keys and texts, rows with their cells.
const TABLES: &str = "return Array.prototype.map.call(document.querySelectorAll('table.board'), function (table) {
  var section = table.closest('section');
  return {
    dataset: table.getAttribute('data-dataset'),
    headers: Array.prototype.map.call(table.tHead.rows[0].cells, function (th) {
      return [th.getAttribute('data-key'), th.textContent];
    }),
    rows: Array.prototype.map.call(table.tBodies[0].rows, function (tr) {
      var cells = {};
      Array.prototype.forEach.call(tr.cells, function (td) {
        cells[td.getAttribute('data-key')] = {
          sort: td.getAttribute('data-sort'), text: td.textContent, std: td.getAttribute('data-std'),
          delta: td.getAttribute('data-delta'), n: td.getAttribute('data-n'),
          bold: Number(getComputedStyle(td).fontWeight) >= 700
        };
      });
      return {model: tr.getAttribute('data-model'), variant: tr.getAttribute('data-variant'), cells: cells};
    }),
    plots: Array.prototype.map.call(section.querySelectorAll('figure svg'), function (svg) {
      return svg.getBoundingClientRect().width;
    }),
    study: Array.prototype.map.call(section.querySelectorAll('table.study td.num'), function (td) {
      return [td.getAttribute('data-key'), td.getAttribute('data-sort')];
    })
  };
});";

/// One column's `data-sort` values, top to bottom, and its header's `aria-sort`.
const COLUMN: &str = "var table = document.querySelectorAll('table.board')[arguments[0]];
var selector = '[data-key=\"' + arguments[1] + '\"]';
return [table.querySelector('th' + selector).getAttribute('aria-sort'),
  Array.prototype.map.call(table.tBodies[0].rows, function (tr) {
    return tr.querySelector('td' + selector).getAttribute('data-sort');
  })];";

fn number(cell: &Value, attribute: &str) -> Option<f64> {
    cell[attribute]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
}

fn p_text(p: f64) -> String {
    if p < 0.001 {
        "<0.001".into()
    } else {
        format!("{p:.3}")
    }
}

fn fixed(x: Option<f64>, decimals: usize) -> String {
    x.map_or("–".into(), |v| format!("{v:.decimals$}"))
}

/// (c): every cell of every row shows, and keeps raw, the figures of `board` (leaderboard.json).
fn compare(table: &Value, board: &Value) {
    let dataset = board["dataset"].as_str().unwrap();
    assert_eq!(table["dataset"], dataset);
    let rows = board["rows"].as_array().unwrap();
    assert_eq!(
        table["rows"].as_array().unwrap().len(),
        rows.len(),
        "{dataset}: rows"
    );
    let keys: BTreeSet<String> = table["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h[0].as_str().unwrap().to_string())
        .collect();
    // Holm over the rows that have a p-value, per metric, from the JSON's p-values.
    let mut adjusted: BTreeMap<String, Vec<Option<f64>>> = BTreeMap::new();
    for name in ["NDCG@20", "HR@20"] {
        let raw: Vec<Option<f64>> = rows
            .iter()
            .map(|r| {
                let m = r["metrics"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|m| m["name"] == name);
                m.and_then(|m| m["vs_reference"]["p_value"].as_f64())
            })
            .collect();
        let present: Vec<f64> = raw.iter().flatten().copied().collect();
        let m = present.len();
        let header = table["headers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h[0] == format!("holm:{name}"))
            .unwrap();
        assert!(
            header[1].as_str().unwrap().contains(&format!("(m = {m})")),
            "{header}"
        );
        let mut corrected = holm(&present).into_iter();
        let column: Vec<Option<f64>> = raw
            .iter()
            .map(|p| p.and_then(|_| corrected.next()))
            .collect();
        // Holm by hand for the smallest p: p_min · m, on the row that holds it.
        if let Some((at, p_min)) = raw
            .iter()
            .enumerate()
            .filter_map(|(i, p)| p.map(|p| (i, p)))
            .min_by(|a, b| a.1.total_cmp(&b.1))
        {
            assert_eq!(
                column[at],
                Some((p_min * m as f64).min(1.0)),
                "{name}: row {at}"
            );
        }
        adjusted.insert(name.into(), column);
    }
    for (i, row) in rows.iter().enumerate() {
        let shown = table["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["model"] == row["model"] && r["variant"] == row["variant"])
            .unwrap_or_else(|| panic!("{dataset}: no row for {}", row["model"]));
        let cells = &shown["cells"];
        let model = row["model"].as_str().unwrap();
        let mut checked = BTreeSet::new();
        let mut check = |key: String, sort: Option<f64>, text: String| {
            let cell = &cells[&key];
            assert_eq!(number(cell, "sort"), sort, "{dataset} {model} {key}");
            assert_eq!(cell["text"], text, "{dataset} {model} {key}");
            checked.insert(key);
        };
        let variant = row["variant"].as_str().unwrap();
        let label = cells["model"]["text"].as_str().unwrap().to_string();
        assert!(
            label == model || label == format!("{model} #{variant}"),
            "{label}"
        );
        let sort = cells["model"]["sort"].as_str().unwrap();
        assert_eq!(sort, label, "{dataset} {model}: model sort key");
        let seeds = row["seeds"].as_array().unwrap().len();
        check("seeds".into(), Some(seeds as f64), seeds.to_string());
        for m in row["metrics"].as_array().unwrap() {
            let name = m["name"].as_str().unwrap();
            let (mean, std) = (
                m["value"]["mean"].as_f64().unwrap(),
                m["value"]["std"].as_f64(),
            );
            let key = format!("metric:{name}");
            assert_eq!(
                number(&cells[&key], "std"),
                std,
                "{dataset} {model} {key} std"
            );
            assert_eq!(
                cells[&key]["bold"], m["best"],
                "{dataset} {model} {key} best"
            );
            let text = match std {
                Some(s) => format!("{:.2} ± {:.2}", mean * 100.0, s * 100.0),
                None => format!("{:.2}", mean * 100.0),
            };
            check(key, Some(mean), text);
            if let Some(holm_column) = adjusted.get(name) {
                let test = &m["vs_reference"];
                let key = format!("p:{name}");
                let p = test["p_value"].as_f64();
                let text = match test.is_null() {
                    true => "–".to_string(),
                    false => {
                        let delta = test["mean_difference"].as_f64().unwrap();
                        assert_eq!(number(&cells[&key], "delta"), Some(delta));
                        assert_eq!(cells[&key]["n"], test["n"].to_string());
                        p.map_or(format!("n={}", test["n"]), |p| {
                            format!("{} ({:+.2})", p_text(p), delta * 100.0)
                        })
                    }
                };
                check(key, p, text);
                let h = holm_column[i];
                check(format!("holm:{name}"), h, h.map_or("–".into(), p_text));
            }
        }
        for key in ["train_seconds_per_epoch", "test_pass_seconds", "epochs_run"] {
            let mean = row[key]["mean"].as_f64();
            check(key.into(), mean, fixed(mean, 1));
        }
        let parameters = row["parameters"].as_u64().unwrap();
        check(
            "parameters".into(),
            Some(parameters as f64),
            parameters.to_string(),
        );
        let rss = row["peak_rss_bytes"].as_u64();
        assert_eq!(
            cells["peak_rss_bytes"]["sort"],
            rss.map_or(String::new(), |b| b.to_string())
        );
        check(
            "peak_rss_bytes".into(),
            rss.map(|b| b as f64),
            fixed(rss.map(|b| b as f64 / 1e6), 0),
        );
        let devices: Vec<&str> = row["device_kinds"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_str().unwrap())
            .collect();
        let devices = devices.join("; ");
        assert_eq!(cells["device_kinds"]["text"], devices);
        assert_eq!(cells["device_kinds"]["sort"], devices);
        checked.extend(["model".to_string(), "device_kinds".to_string()]);
        assert_eq!(
            checked, keys,
            "{dataset} {model}: columns not compared with the JSON"
        );
    }
}

/// (b): a click on `key`'s header sorts ascending, a second one descending; "–" stays last.
fn check_sorting(browser: &Browser, table: usize, key: &str) {
    let read = || {
        let v = browser.execute(COLUMN, json!([table, key]));
        let values: Vec<Option<f64>> = v[1]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                s.as_str()
                    .filter(|s| !s.is_empty())
                    .map(|s| s.parse().unwrap())
            })
            .collect();
        (v[0].as_str().map(String::from), values)
    };
    let multiset = |v: &[Option<f64>]| {
        let mut bits: Vec<Option<u64>> = v.iter().map(|x| x.map(f64::to_bits)).collect();
        bits.sort_unstable();
        bits
    };
    let (_, before) = read();
    let selector = format!("table.board th[data-key=\"{key}\"]");
    for (direction, ascending) in [("ascending", true), ("descending", false)] {
        browser.click(&selector, table);
        let (state, after) = read();
        assert_eq!(state.as_deref(), Some(direction), "{key}");
        assert_eq!(
            multiset(&after),
            multiset(&before),
            "{key}: rows lost or changed"
        );
        let present = after.iter().take_while(|v| v.is_some()).count();
        assert!(
            after[present..].iter().all(Option::is_none),
            "{key}: – not last: {after:?}"
        );
        let sorted = after[..present].windows(2).all(|w| match ascending {
            true => w[0] <= w[1],
            false => w[0] >= w[1],
        });
        assert!(sorted, "{key} not {direction}: {after:?}");
    }
}

#[test]
fn the_page_loads_sorts_and_shows_the_json_figures_in_a_browser() {
    let pages = ["main-cpu-2core", "quick-cpu-2core"].map(generate);
    let browser = Browser::start();
    for (dir, json) in &pages {
        let page = dir.path().join("index.html");
        let html = fs::read_to_string(&page).unwrap();
        for fetch in [
            "<link",
            "<img",
            "<iframe",
            "src=",
            "url(",
            "@import",
            "<script src",
        ] {
            assert!(!html.contains(fetch), "{fetch} in the page");
        }
        browser.open(&page);
        // (a) no script error, nothing fetched, one row per leaderboard row, the plots inline.
        assert_eq!(
            browser.execute("return window.__pageErrors", json!([])),
            json!([])
        );
        let fetched = browser.execute(
            "return performance.getEntriesByType('resource').map(function (e) { return e.name; })",
            json!([]),
        );
        assert_eq!(fetched, json!([]), "the page fetched something");
        let boards = json["datasets"].as_array().unwrap();
        let tables = browser.execute(TABLES, json!([]));
        assert_eq!(tables.as_array().unwrap().len(), boards.len());
        for (table, board) in tables.as_array().unwrap().iter().zip(boards) {
            let dataset = board["dataset"].as_str().unwrap();
            let files = ["accuracy-vs-time", "learning-curves", "missing-modality"]
                .iter()
                .filter(|k| dir.path().join(format!("plots/{dataset}-{k}.svg")).exists())
                .count();
            let widths = table["plots"].as_array().unwrap();
            assert_eq!(widths.len(), files, "{dataset}: plots inline");
            assert!(
                widths.iter().all(|w| w.as_f64().unwrap() > 100.0),
                "{widths:?}"
            );
            // (c) every figure equals leaderboard.json's.
            compare(table, board);
        }
        // The missing-modality study's figures, where the folder has one.
        let study: Vec<u64> = tables
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|t| t["study"].as_array().unwrap().clone())
            .filter(|c| c[0].as_str().unwrap().starts_with("rate:"))
            .filter_map(|c| {
                c[1].as_str()
                    .filter(|s| !s.is_empty())
                    .map(|s| s.parse::<f64>().unwrap().to_bits())
            })
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let expected: Vec<u64> = fs::read_to_string(dir.path().join("missing-modality.json"))
            .map(|t| serde_json::from_str::<Value>(&t).unwrap())
            .map(|v| {
                v.as_array()
                    .unwrap()
                    .iter()
                    .flat_map(|s| s["curves"].as_array().unwrap().clone())
                    .flat_map(|c| c["points"].as_array().unwrap().clone())
                    .map(|p| p["value"]["mean"].as_f64().unwrap().to_bits())
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(study, expected, "the missing-modality tables");
        // (b) sorting: a metric, a column with "–" (the reference has no p-value), a text one.
        for key in ["metric:NDCG@20", "p:NDCG@20", "holm:HR@20", "parameters"] {
            check_sorting(&browser, 0, key);
        }
        if boards.len() > 1 {
            check_sorting(&browser, boards.len() - 1, "metric:HR@5");
        }
        // Rows move whole: after the sorts every row still shows its own figures.
        let tables = browser.execute(TABLES, json!([]));
        for (table, board) in tables.as_array().unwrap().iter().zip(boards) {
            compare(table, board);
        }
        assert_eq!(
            browser.execute("return window.__pageErrors", json!([])),
            json!([])
        );
    }
    // Names and sources from strangers' result files stay text: nothing runs or is fetched.
    let hostile = hostile_page();
    browser.open(&hostile.path().join("index.html"));
    let seen = browser.execute(
        "return [window.__owned === undefined, document.scripts.length, document.images.length,
          performance.getEntriesByType('resource').length, window.__pageErrors,
          document.querySelector('table.board td[data-key=model]').textContent,
          document.querySelector('table.board').getAttribute('data-dataset')]",
        json!([]),
    );
    let first = format!("han-gnn{HOSTILE}");
    let dataset = format!("synthetic{HOSTILE}");
    assert_eq!(seen, json!([true, 2, 0, 0, [], first, dataset]));
}

/// Text that would run, fetch or break out of an attribute if the page did not escape it.
const HOSTILE: &str =
    "<script>window.__owned = 1</script><img src=x onerror=\"window.__owned = 2\">'\"&amp;";

/// The page of main-cpu-2core's runs with HOSTILE in every model and dataset name and source.
fn hostile_page() -> tempfile::TempDir {
    let mut results: Vec<_> = load_results(&committed("main-cpu-2core"))
        .unwrap()
        .into_iter()
        .map(|(_, r)| r)
        .collect();
    for r in &mut results {
        r.config.model = format!("{}{HOSTILE}", r.config.model);
        r.config.dataset = format!("{}{HOSTILE}", r.config.dataset);
        r.dataset.source = format!("{HOSTILE} {}", r.dataset.source);
    }
    let reference = format!("han-gnn{HOSTILE}");
    let boards = build_boards(&results, &reference);
    let text = page(&boards, &[], &reference, &BTreeMap::new());
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("index.html"), text).unwrap();
    dir
}

#[test]
fn check_reports_a_hand_edited_page() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("sub");
    copy_dir(&committed("main-cpu-2core"), &sub);
    let _ = fs::remove_file(sub.join("index.html"));
    let out = mmsr(
        dir.path(),
        &["leaderboard", "--results", "sub", "--out", "sub", "--html"],
    );
    assert!(out.status.success(), "{}", common::stderr(&out));
    let check = || {
        let out = mmsr(dir.path(), &["check", "sub"]);
        (out.status.code(), stdout(&out) + &common::stderr(&out))
    };
    let (code, text) = check();
    assert_eq!(code, Some(0), "{text}");
    // One figure changed by hand: the first NDCG@20 cell shows another number.
    let page = sub.join("index.html");
    let html = fs::read_to_string(&page).unwrap();
    let cell = html.find("<td data-key=\"metric:NDCG@20\"").unwrap();
    let text_at = cell + html[cell..].find('>').unwrap() + 1;
    let edited = format!("{}9{}", &html[..text_at], &html[text_at..]);
    fs::write(&page, edited).unwrap();
    let (code, text) = check();
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("index.html") && text.contains("stale or edited"),
        "{text}"
    );
    // Without a page there is nothing to compare.
    fs::remove_file(&page).unwrap();
    assert_eq!(check().0, Some(0));
}

#[test]
fn escapes_every_special_character() {
    assert_eq!(
        escape("<a href=\"x\">Tom's & co</a>"),
        "&lt;a href=&quot;x&quot;&gt;Tom&#39;s &amp; co&lt;/a&gt;"
    );
}

#[test]
fn inlines_plain_drawings_only() {
    let plain = "<?xml version=\"1.0\"?>\n<svg width=\"10\" viewBox=\"0 0 10 10\" xmlns=\"http://www.w3.org/2000/svg\">\n<rect x=\"0\" y=\"0\"/>\n<text x=\"1\">a &lt; b</text>\n</svg>\n";
    assert!(inline_svg(plain).unwrap().starts_with("<svg width"));
    for bad in [
        "<svg><script>alert(1)</script></svg>",
        "<svg onload=\"alert(1)\"></svg>",
        "<svg><a href=\"https://example.org\"><text>x</text></a></svg>",
        "<svg><image href=\"https://example.org/x.png\"/></svg>",
        "<svg><rect fill=\"url(https://example.org/#x)\"/></svg>",
        "<svg><rect style=\"background:url(x)\"/></svg>",
        "<svg><foreignObject><iframe></iframe></foreignObject></svg>",
        "<html><svg></svg>",
        "<svg><rect x=1/></svg>",
        "<svg><!-- <script> --></svg>",
    ] {
        assert_eq!(inline_svg(bad), None, "{bad}");
    }
}

#[test]
fn labels_modalities_from_the_source() {
    let beauty = "sequence file x; modalities: image = STAND-IN for image features (none offline): categories, seed 2024); text = title of y, seed 2023)";
    assert_eq!(
        modality_labels(beauty),
        vec![("image", "stand-in"), ("text", "present")]
    );
    let toy = "offline recipe; no image modality; modalities: text = item text of z";
    assert_eq!(
        modality_labels(toy),
        vec![("image", "absent"), ("text", "present")]
    );
    let none = "x; modalities: none (graph models run on the item sub-graph)";
    assert_eq!(
        modality_labels(none),
        vec![("image", "absent"), ("text", "absent")]
    );
    assert!(modality_labels("synthetic generator v4").is_empty());
}

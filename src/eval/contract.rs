//! The evaluator's public input contract (the `evaluate` command), in the spirit of OGB's Evaluator.
//!
//! One sample per JSON line or CSV row. Each gives the `target` item id and either the full
//! `scores` vector over all items (in item-id order) or the target's 1-based `rank`. Item ids are
//! 1-based by default (as in prepared datasets, where 0 is padding); `zero_based` switches to
//! 0-based ids. Ranks are computed with [`rank_of_target`], i.e. exactly as training evaluates.
//!
//! JSON lines: `{"target": 3, "scores": [0.1, 0.7, 0.2]}` or `{"target": 3, "rank": 12}`.
//! CSV (header required): `target,rank` or `target,<one column per item, in id order>`.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use thiserror::Error;

use super::metrics::{rank_of_target, MetricAccumulator, MetricSet};

/// Input error: always names the file, and the line where one is to blame.
#[derive(Debug, Error)]
pub enum EvalInputError {
    #[error("{path}:{line}: {problem}")]
    Sample {
        path: PathBuf,
        line: u64,
        problem: String,
    },
    #[error("{path}: no samples; expected one JSON object or one CSV row per sample")]
    Empty { path: PathBuf },
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum InputFormat {
    /// Decide by extension (.jsonl/.json/.ndjson, .csv), else by the first character.
    Auto,
    Jsonl,
    Csv,
}

#[derive(Debug, Clone)]
pub struct EvaluatorOptions {
    pub ks: Vec<usize>,
    /// Item ids start at 0 instead of 1.
    pub zero_based: bool,
    /// Number of items, to bound-check rank-only samples (score vectors give it themselves).
    pub num_items: Option<usize>,
}

/// Evaluates a file according to the contract above.
pub fn evaluate_file(
    path: &Path,
    format: InputFormat,
    options: &EvaluatorOptions,
) -> Result<MetricSet, EvalInputError> {
    let io_err = |source| EvalInputError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut reader = BufReader::new(File::open(path).map_err(io_err)?);
    let format = match format {
        InputFormat::Auto => detect_format(path, &mut reader).map_err(io_err)?,
        other => other,
    };
    evaluate_reader(reader, path, format, options)
}

/// Evaluates an already opened stream; `path` is only used in messages.
pub fn evaluate_reader<R: BufRead>(
    reader: R,
    path: &Path,
    format: InputFormat,
    options: &EvaluatorOptions,
) -> Result<MetricSet, EvalInputError> {
    let mut checker = SampleChecker::new(path, options);
    match format {
        InputFormat::Csv => read_csv(reader, &mut checker)?,
        _ => read_jsonl(reader, &mut checker)?,
    }
    if checker.accumulator.count() == 0 {
        return Err(EvalInputError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(checker.accumulator.finish())
}

fn detect_format<R: BufRead>(path: &Path, reader: &mut R) -> std::io::Result<InputFormat> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    Ok(match ext.as_deref() {
        Some("jsonl" | "json" | "ndjson") => InputFormat::Jsonl,
        Some("csv") => InputFormat::Csv,
        _ => {
            let head = reader.fill_buf()?;
            match head.iter().find(|b| !b.is_ascii_whitespace()) {
                Some(b'{') => InputFormat::Jsonl,
                _ => InputFormat::Csv,
            }
        }
    })
}

/// Validates samples one at a time and feeds their ranks to the accumulator (nothing is kept, so
/// files far larger than memory are fine).
struct SampleChecker<'a> {
    path: &'a Path,
    zero_based: bool,
    /// Items per score vector: fixed by `--num-items` or by the first score vector seen.
    num_items: Option<(usize, u64)>,
    accumulator: MetricAccumulator,
}

impl<'a> SampleChecker<'a> {
    fn new(path: &'a Path, options: &EvaluatorOptions) -> Self {
        Self {
            path,
            zero_based: options.zero_based,
            num_items: options.num_items.map(|n| (n, 0)),
            accumulator: MetricAccumulator::new(&options.ks),
        }
    }

    fn error(&self, line: u64, problem: impl Into<String>) -> EvalInputError {
        EvalInputError::Sample {
            path: self.path.to_path_buf(),
            line,
            problem: problem.into(),
        }
    }

    /// Converts an external item id to a 0-based index, checking it against `num_items`.
    fn target_index(&self, line: u64, target: i64) -> Result<usize, EvalInputError> {
        let first = if self.zero_based { 0 } else { 1 };
        let index = target - first;
        let hint = if self.zero_based {
            "(item ids are 0-based because of --zero-based)"
        } else {
            "(item ids are 1-based; pass --zero-based for 0-based ids)"
        };
        if index < 0 {
            return Err(self.error(line, format!("target {target} is out of range {hint}")));
        }
        if let Some((n, _)) = self.num_items {
            if index as usize >= n {
                let last = first + n as i64 - 1;
                return Err(self.error(
                    line,
                    format!("target {target} is out of range: item ids run from {first} to {last} {hint}"),
                ));
            }
        }
        Ok(index as usize)
    }

    fn add_scores(&mut self, line: u64, target: i64, scores: &[f64]) -> Result<(), EvalInputError> {
        if scores.is_empty() {
            return Err(self.error(line, "\"scores\" is empty; it must hold one score per item"));
        }
        if let Some(bad) = scores.iter().position(|s| !s.is_finite()) {
            return Err(self.error(
                line,
                format!(
                    "score at position {bad} is {} (scores must be finite numbers)",
                    scores[bad]
                ),
            ));
        }
        match self.num_items {
            None => self.num_items = Some((scores.len(), line)),
            Some((n, origin)) if n != scores.len() => {
                let source = if origin == 0 {
                    "--num-items says".to_string()
                } else {
                    format!("line {origin} had")
                };
                return Err(self.error(
                    line,
                    format!(
                        "ragged score vectors: {} scores here, but {source} {n} (every vector must cover all items)",
                        scores.len()
                    ),
                ));
            }
            Some(_) => {}
        }
        let index = self.target_index(line, target)?;
        self.accumulator.add_rank(rank_of_target(scores, index));
        Ok(())
    }

    fn add_rank(&mut self, line: u64, target: i64, rank: i64) -> Result<(), EvalInputError> {
        self.target_index(line, target)?;
        if rank < 1 {
            return Err(self.error(line, format!("rank {rank} is invalid: ranks start at 1")));
        }
        if let Some((n, _)) = self.num_items {
            if rank as usize > n {
                return Err(self.error(
                    line,
                    format!("rank {rank} exceeds the number of items ({n})"),
                ));
            }
        }
        self.accumulator.add_rank(rank as usize);
        Ok(())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonSample {
    target: i64,
    #[serde(default)]
    scores: Option<Vec<f64>>,
    #[serde(default)]
    rank: Option<i64>,
}

fn read_jsonl<R: BufRead>(
    mut reader: R,
    checker: &mut SampleChecker,
) -> Result<(), EvalInputError> {
    let mut text = String::new();
    let mut line_no = 0u64;
    loop {
        text.clear();
        let read = reader
            .read_line(&mut text)
            .map_err(|source| EvalInputError::Io {
                path: checker.path.to_path_buf(),
                source,
            })?;
        if read == 0 {
            return Ok(());
        }
        line_no += 1;
        let trimmed = text.trim();
        if trimmed.is_empty() {
            continue;
        }
        let sample: JsonSample = serde_json::from_str(trimmed).map_err(|e| {
            let hint = if ["NaN", "Infinity"].iter().any(|t| trimmed.contains(t)) {
                " (NaN or infinite score: JSON allows finite numbers only)"
            } else {
                ""
            };
            checker.error(line_no, format!("not a valid sample: {e}{hint}"))
        })?;
        match (sample.scores, sample.rank) {
            (Some(scores), None) => checker.add_scores(line_no, sample.target, &scores)?,
            (None, Some(rank)) => checker.add_rank(line_no, sample.target, rank)?,
            (Some(_), Some(_)) => {
                return Err(checker.error(line_no, "give either \"scores\" or \"rank\", not both"))
            }
            (None, None) => {
                return Err(checker.error(line_no, "missing field: give \"scores\" or \"rank\""))
            }
        }
    }
}

fn read_csv<R: Read>(reader: R, checker: &mut SampleChecker) -> Result<(), EvalInputError> {
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .from_reader(reader);
    let csv_error = |checker: &SampleChecker, e: csv::Error| {
        let line = e.position().map_or(1, |p| p.line());
        checker.error(line, format!("malformed CSV: {e}"))
    };
    let header = csv.headers().map_err(|e| csv_error(checker, e))?.clone();
    if header.iter().all(str::is_empty) {
        return Ok(()); // empty file: reported as "no samples"
    }
    let column = |name: &str| header.iter().position(|h| h.eq_ignore_ascii_case(name));
    let target_col = column("target").ok_or_else(|| {
        checker.error(
            1,
            "the CSV header has no \"target\" column (expected target,rank or target,<scores>)",
        )
    })?;
    let rank_col = column("rank");
    let mut scores = Vec::new();
    let mut record = csv::StringRecord::new();
    while csv
        .read_record(&mut record)
        .map_err(|e| csv_error(checker, e))?
    {
        let line = record.position().map_or(0, |p| p.line());
        let field = |i: usize| record.get(i).unwrap_or("");
        let target: i64 = field(target_col).parse().map_err(|_| {
            checker.error(
                line,
                format!("target {:?} is not an integer item id", field(target_col)),
            )
        })?;
        if let Some(rank_col) = rank_col {
            let rank: i64 = field(rank_col).parse().map_err(|_| {
                checker.error(
                    line,
                    format!("rank {:?} is not a positive integer", field(rank_col)),
                )
            })?;
            checker.add_rank(line, target, rank)?;
            continue;
        }
        scores.clear();
        for (i, value) in record.iter().enumerate().filter(|(i, _)| *i != target_col) {
            let score: f64 = value.parse().map_err(|_| {
                checker.error(
                    line,
                    format!("column {:?}: {value:?} is not a number", &header[i]),
                )
            })?;
            scores.push(score);
        }
        checker.add_scores(line, target, &scores)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::metrics::Metric;

    fn options() -> EvaluatorOptions {
        EvaluatorOptions {
            ks: vec![5, 10, 20],
            zero_based: false,
            num_items: None,
        }
    }

    fn eval(text: &str, format: InputFormat) -> Result<MetricSet, EvalInputError> {
        evaluate_reader(text.as_bytes(), Path::new("in.x"), format, &options())
    }

    fn err(text: &str, format: InputFormat) -> String {
        eval(text, format).unwrap_err().to_string()
    }

    #[test]
    fn jsonl_scores_and_ranks_agree() {
        // Target 2 of [0.1, 0.9, 0.9, 0.5]: item 2 ties with item 3 but has the lower id -> rank 1.
        // Target 4: rank 3 (0.9, 0.9 ahead).
        let by_scores = eval(
            "{\"target\": 2, \"scores\": [0.1, 0.9, 0.9, 0.5]}\n\n{\"target\": 4, \"scores\": [0.1, 0.9, 0.9, 0.5]}\n",
            InputFormat::Jsonl,
        )
        .unwrap();
        let by_rank = eval(
            "{\"target\": 2, \"rank\": 1}\n{\"target\": 4, \"rank\": 3}\n",
            InputFormat::Jsonl,
        )
        .unwrap();
        assert_eq!(by_scores, by_rank);
        assert_eq!(by_scores.num_samples, 2);
        assert!((by_scores.get(Metric::Mrr, 5).unwrap() - (1.0 + 1.0 / 3.0) / 2.0).abs() < 1e-12);
    }

    #[test]
    fn csv_scores_and_ranks() {
        let m = eval(
            "target,s1,s2,s3\n3,0.2,0.1,0.3\n1,0.2,0.1,0.3\n",
            InputFormat::Csv,
        )
        .unwrap();
        assert_eq!(m.num_samples, 2);
        assert!((m.get(Metric::Mrr, 5).unwrap() - 0.75).abs() < 1e-12); // ranks 1 and 2
        let r = eval("target,rank\n3,1\n1,2\n", InputFormat::Csv).unwrap();
        assert_eq!(m, r);
    }

    #[test]
    fn zero_based_ids() {
        let opts = EvaluatorOptions {
            zero_based: true,
            ..options()
        };
        let m = evaluate_reader(
            "{\"target\": 0, \"scores\": [0.9, 0.1]}".as_bytes(),
            Path::new("z.jsonl"),
            InputFormat::Jsonl,
            &opts,
        )
        .unwrap();
        assert_eq!(m.get(Metric::Hr, 5), Some(1.0));
        assert_eq!(m.get(Metric::Mrr, 5), Some(1.0));
    }

    #[test]
    fn bad_inputs_name_the_line_and_problem() {
        let j = InputFormat::Jsonl;
        assert!(err("{\"scores\": [1.0]}", j)
            .starts_with("in.x:1: not a valid sample: missing field `target`"));
        assert!(err("{\"target\": 1}", j).contains("in.x:1: missing field"));
        assert!(err("{\"target\": 1, \"scores\": [NaN, 1.0]}", j).contains("NaN or infinite score"));
        assert!(err("{\"target\": 3, \"scores\": [1.0, 2.0]}", j)
            .contains("in.x:1: target 3 is out of range: item ids run from 1 to 2"));
        assert!(
            err("{\"target\": 0, \"scores\": [1.0, 2.0]}", j).contains("target 0 is out of range")
        );
        let ragged = err(
            "{\"target\": 1, \"scores\": [1.0, 2.0]}\n{\"target\": 1, \"scores\": [1.0]}",
            j,
        );
        assert!(
            ragged.contains("in.x:2: ragged score vectors: 1 scores here, but line 1 had 2"),
            "{ragged}"
        );
        assert!(err("{\"target\": 1, \"rank\": 0}", j).contains("ranks start at 1"));
        assert!(err("{\"target\": 1, \"rank\": 2, \"scores\": [1.0]}", j).contains("not both"));
        assert!(err("{\"target\": 1, \"score\": [1.0]}", j).contains("unknown field `score`"));
        assert!(err("this is not json", j).starts_with("in.x:1: not a valid sample"));
        assert_eq!(
            err("", j),
            "in.x: no samples; expected one JSON object or one CSV row per sample"
        );
        assert_eq!(
            err("\n  \n", j),
            "in.x: no samples; expected one JSON object or one CSV row per sample"
        );

        let c = InputFormat::Csv;
        assert!(err("target,s1,s2\n1,0.5,NaN\n", c).contains("in.x:2: score at position 1 is NaN"));
        assert!(err("target,s1,s2\n1,0.5,abc\n", c)
            .contains("in.x:2: column \"s2\": \"abc\" is not a number"));
        assert!(err("target,s1,s2\n1,0.5,0.1\n1,0.5\n", c).contains("in.x:3: malformed CSV"));
        assert!(err("item,s1\n1,0.5\n", c).contains("no \"target\" column"));
        assert!(err("target,rank\nx,1\n", c).contains("in.x:2: target \"x\" is not an integer"));
        assert_eq!(
            err("", c),
            "in.x: no samples; expected one JSON object or one CSV row per sample"
        );
        assert_eq!(
            err("target,rank\n", c),
            "in.x: no samples; expected one JSON object or one CSV row per sample"
        );
    }

    #[test]
    fn num_items_bounds_rank_only_input() {
        let opts = EvaluatorOptions {
            num_items: Some(10),
            ..options()
        };
        let e = evaluate_reader(
            "{\"target\": 1, \"rank\": 11}".as_bytes(),
            Path::new("r.jsonl"),
            InputFormat::Jsonl,
            &opts,
        )
        .unwrap_err();
        assert!(e
            .to_string()
            .contains("rank 11 exceeds the number of items (10)"));
        let e = evaluate_reader(
            "{\"target\": 1, \"scores\": [1.0, 2.0]}".as_bytes(),
            Path::new("r.jsonl"),
            InputFormat::Jsonl,
            &opts,
        )
        .unwrap_err();
        assert!(e.to_string().contains("but --num-items says 10"), "{e}");
    }
}

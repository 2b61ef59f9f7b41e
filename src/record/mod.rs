//! The results layer: the result-file schema (one JSON document per run), run ids, atomic writes
//! and provenance. Everything that writes or reads a result file goes through here; it imports
//! nothing above the data, graph, config and metric types its schema holds.
pub mod env;
pub mod read;
pub mod result;

pub use env::Environment;
pub use result::{
    now_rfc3339, result_path, run_id, write_atomically, DatasetInfo, EpochRecord, RunResult,
    Timings, SCHEMA, SCHEMA_VERSION,
};

//! Results and their presentation: result files with provenance, tables and summaries. Reports
//! read result files only, so any result ever written can be tabulated again.
pub mod aggregate;
pub mod env;
pub mod leaderboard;
pub mod missing;
pub mod plots;
pub mod result;
pub mod scaling;
pub mod table;

pub use env::Environment;
pub use result::{RunResult, Timings};

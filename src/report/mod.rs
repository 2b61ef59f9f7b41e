//! Presenting results: tables, summaries, leaderboards and plots made from result files only
//! (`record`), so any result ever written can be tabulated again.
pub mod aggregate;
pub mod html;
pub mod leaderboard;
pub mod legend;
pub mod missing;
pub mod plots;
pub mod published;
pub mod reproduction;
pub mod snippets;
pub mod table;

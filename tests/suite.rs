//! Every integration test in one binary: one link of libtorch instead of one per file, and one
//! pool of test threads, so that the long tests of one file run beside the short ones of others.
//! Each file of `tests/` is a module (`cargo test --release --test suite crash::` runs one).
//! Tests that seed torch's process-global generator or draw from it hold
//! `common::torch_rng()` for their whole body, so that parallel tests never share its stream.

mod common;

mod check;
mod cli;
mod crash;
mod determinism;
mod docs;
mod download_all;
mod fuzz;
mod gpu_check;
mod graph_models;
mod hgt;
mod hostile_pickles;
mod hostile_submissions;
mod html_page;
mod layers;
mod minilm;
mod missing_modality;
mod model_versions;
mod model_zoo;
mod official;
mod official_protocol;
mod offline_datasets;
mod parity;
mod prepare_faults;
mod prepared_store;
mod published;
mod real_data;
mod real_pipeline;
mod recbole;
mod result_schema;
mod scaling;
mod sequence_models;
mod sources_amazon;
mod sources_cli;
mod sources_download;
mod style;
mod text_encoder;

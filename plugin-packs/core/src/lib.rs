//! The built-in plugins of aiperf-gen, registered in this crate's `plugins.yaml`.
//!
//! Each type implements its category's protocol (see `aiperf_runtime::protocols`) and
//! `aiperf_runtime::plugin::Plugin`. Generated binaries reach them through enums, never
//! through trait objects.

pub mod arrival;
pub mod dataset;
pub mod endpoints;
pub mod exporters;
pub mod loaders;
pub mod media;
pub mod models;
pub mod processors;
pub mod ramp;
pub mod rng;
pub mod samplers;
pub mod timing;
pub mod tokenizer;
pub mod transport;
pub mod ui;
pub mod url_selection;

#[cfg(test)]
mod test_config;

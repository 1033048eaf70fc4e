//! aiperf-gen: turns AIPerf-style plugin manifests into tailored, statically dispatched
//! benchmark binaries.
//!
//! Pipeline: discover packs → load and validate manifests ([`manifest`]) → resolve
//! conflicts → build a [`plan::BuildPlan`] → generate the crate ([`codegen`],
//! [`crate_gen`]) → build it with cargo ([`build`]).

pub mod build;
pub mod cli;
pub mod codegen;
pub mod crate_gen;
pub mod manifest;
pub mod plan;

//! aiperf-gen: turns AIPerf-style plugin manifests into tailored, statically dispatched
//! benchmark binaries.
//!
//! Pipeline: discover packs → load and validate manifests ([`manifest`]) → resolve
//! conflicts → build a [`plan::BuildPlan`] → generate the crate ([`codegen`],
//! [`crate_gen`]) → build it with cargo ([`build`]).

pub mod build;
pub mod check_class;
pub mod cli;
pub mod codegen;
pub mod crate_gen;
pub mod explorer;
pub mod manifest;
pub mod plan;
pub mod registry;
pub mod session;
pub mod validate;

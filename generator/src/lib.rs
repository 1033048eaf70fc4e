//! aiperf-gen: turns AIPerf-style plugin manifests into tailored, statically dispatched
//! benchmark binaries.
//!
//! Pipeline: discover packs → load and validate manifests ([`manifest`]) → resolve
//! conflicts → build a [`plan::BuildPlan`] → generate the crate ([`codegen`],
//! [`crate_gen`]) → build it with cargo ([`build`]).
//!
//! Every command loads through one [`session::Session`] (categories, packs, resolution,
//! diagnostics). On top of it: [`validate`] (the CI command and its output formats),
//! [`check_class`] (Rust class paths, then types and impls found in the packs' sources
//! with `syn`), [`explorer`] (the `plugins` command, rendered by the runtime's shared
//! explorer) and [`registry`] (AIPerf's registry API, for plugin authors' tests).

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

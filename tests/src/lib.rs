//! Test support for aiperf-gen: the `aiperf-mock` OpenAI-compatible server.

pub mod mock;

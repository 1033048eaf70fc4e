//! The manifest names crates other than this one.

//! Endpoints of a pack whose manifest misspells them.

pub mod endpoints;

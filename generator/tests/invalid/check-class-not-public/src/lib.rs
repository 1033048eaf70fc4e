mod internal;
pub mod public;

/// Reachable through the re-export although its module is private.
pub use internal::Hidden as Exported;

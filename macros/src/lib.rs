//! Static plugin dispatch for aiperf-gen.
//!
//! Two macros cooperate across crates without any global state:
//!
//! * `#[protocol]` on a trait keeps the trait and exports a `macro_rules!` template,
//!   `__aiperf_delegate_<Trait>`, that can implement the trait for an enum whose
//!   variants each hold a type implementing it.
//! * `#[dispatch(Protocol)]` on an enum checks every variant type implements the
//!   protocol (errors point at the variant) and invokes the template.
//!
//! Every plugin call on the enum is a `match` over its variants followed by a direct,
//! statically known call: no trait objects, no vtables.

use proc_macro::TokenStream;

mod dispatch;
mod protocol;

/// Marks a trait as a plugin protocol that generated enums can delegate to.
///
/// Rules, checked with errors on the offending tokens:
/// * no associated types or constants (they could differ per variant);
/// * every method takes `self`, `&self` or `&mut self`;
/// * arguments are plain identifiers;
/// * types in signatures are written so that another crate can name them: `crate::`
///   paths, `std`/`core`/`alloc` paths, prelude types, or the method's generic parameters.
#[proc_macro_attribute]
pub fn protocol(attr: TokenStream, item: TokenStream) -> TokenStream {
    protocol::expand(attr.into(), item.into()).into()
}

/// Declares a plugin enum and implements its protocol by delegation.
///
/// ```ignore
/// /// Linked endpoints.
/// #[aiperf_macros::dispatch(aiperf_runtime::protocols::EndpointProtocol)]
/// pub enum Endpoint {
///     Chat(aiperf_core::endpoints::ChatEndpoint),
///     Completions(aiperf_core::endpoints::CompletionsEndpoint),
/// }
/// ```
///
/// Also emits `From<Type>` for each variant type used by exactly one variant.
#[proc_macro_attribute]
pub fn dispatch(attr: TokenStream, item: TokenStream) -> TokenStream {
    dispatch::expand(attr.into(), item.into()).into()
}

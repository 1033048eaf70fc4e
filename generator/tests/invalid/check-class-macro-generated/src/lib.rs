/// Its impls come from a macro the checker cannot expand.
pub struct Generated;

acme_plugin_macros::endpoint_plugin!(Generated);

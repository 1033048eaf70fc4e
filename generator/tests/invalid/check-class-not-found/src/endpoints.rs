use aiperf_runtime::plugin::{Plugin, PluginContext, PluginError};
use aiperf_runtime::protocols::EndpointProtocol;

pub struct FastChat;

impl Plugin for FastChat {
    fn create(_ctx: &PluginContext<'_>) -> Result<Self, PluginError> {
        Ok(Self)
    }
}

impl EndpointProtocol for FastChat {}

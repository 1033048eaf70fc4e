use aiperf_runtime::plugin::{Plugin, PluginContext, PluginError};
use aiperf_runtime::protocols::TransportProtocol;

pub struct NoProtocol;
pub struct Nothing;
pub struct WrongProtocol;

impl Plugin for NoProtocol {
    fn create(_ctx: &PluginContext<'_>) -> Result<Self, PluginError> {
        Ok(Self)
    }
}

impl Plugin for WrongProtocol {
    fn create(_ctx: &PluginContext<'_>) -> Result<Self, PluginError> {
        Ok(Self)
    }
}

impl TransportProtocol for WrongProtocol {}

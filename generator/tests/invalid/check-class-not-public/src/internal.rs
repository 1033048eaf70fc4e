use aiperf_runtime::plugin::{Plugin, PluginContext, PluginError};
use aiperf_runtime::protocols::ArrivalPatternProtocol;

pub struct Hidden;
pub struct Secret;

impl Plugin for Hidden {
    fn create(_ctx: &PluginContext<'_>) -> Result<Self, PluginError> {
        Ok(Self)
    }
}

impl ArrivalPatternProtocol for Hidden {}

impl Plugin for Secret {
    fn create(_ctx: &PluginContext<'_>) -> Result<Self, PluginError> {
        Ok(Self)
    }
}

impl ArrivalPatternProtocol for Secret {}

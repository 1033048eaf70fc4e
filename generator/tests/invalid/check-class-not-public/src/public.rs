use aiperf_runtime::plugin::{Plugin, PluginContext, PluginError};
use aiperf_runtime::protocols::ArrivalPatternProtocol;

struct Private;

impl Plugin for Private {
    fn create(_ctx: &PluginContext<'_>) -> Result<Self, PluginError> {
        Ok(Self)
    }
}

impl ArrivalPatternProtocol for Private {}

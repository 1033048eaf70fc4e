use aiperf_runtime::plugin::{Plugin, PluginContext, PluginError};

pub struct Knob;
pub struct Chat;

impl Plugin for Knob {
    fn create(_ctx: &PluginContext<'_>) -> Result<Self, PluginError> {
        Ok(Self)
    }
}

impl Plugin for Chat {
    fn create(_ctx: &PluginContext<'_>) -> Result<Self, PluginError> {
        Ok(Self)
    }
}

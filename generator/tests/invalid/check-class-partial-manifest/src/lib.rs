//! A pack whose manifest has a malformed class path next to one naming a missing type:
//! the malformed one must not keep the other from being looked up.

pub mod ui {
    use aiperf_runtime::engine::Progress;
    use aiperf_runtime::plugin::{Plugin, PluginContext, PluginError};
    use aiperf_runtime::protocols::UiProtocol;

    pub struct LoudUi;

    impl Plugin for LoudUi {
        fn create(_ctx: &PluginContext<'_>) -> Result<Self, PluginError> {
            Ok(Self)
        }
    }

    impl UiProtocol for LoudUi {
        fn on_start(&mut self, _total: Option<u64>, _duration_s: Option<f64>) {}
        fn on_progress(&mut self, _progress: &Progress) {}
        fn on_finish(&mut self, _progress: &Progress) {}
    }
}

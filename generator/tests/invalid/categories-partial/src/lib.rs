//! A pack checked against a categories file with one broken category: its entries in the
//! sound category are still checked against these sources.

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

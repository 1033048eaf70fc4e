//! GPU telemetry samples.

use serde::{Deserialize, Serialize};

/// One reading of one GPU metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpuSample {
    pub gpu_index: u32,
    pub gpu_uuid: String,
    pub metric: String,
    pub value: f64,
    /// Wall-clock nanoseconds since the Unix epoch.
    pub timestamp_ns: u64,
}

//! The `http` transport: HTTP/1.1 over TCP with keep-alive, timed at every read.

use aiperf_runtime::http::client::{serialize_request, ConnectionPool, PoolConfig};
use aiperf_runtime::http::url::BaseUrl;
use aiperf_runtime::plugin::{Plugin, PluginContext, PluginError};
use aiperf_runtime::protocols::TransportProtocol;
use aiperf_runtime::record::{ErrorDetails, Outcome, RequestRecord, RunClock};

/// HTTP/1.1 transport. Instances owned by a worker hold that worker's connection pool;
/// others only serialize requests.
pub struct HttpTransport {
    base: BaseUrl,
    pool: Option<ConnectionPool>,
}

impl Plugin for HttpTransport {
    fn create(ctx: &PluginContext<'_>) -> Result<Self, PluginError> {
        let base = BaseUrl::parse(&ctx.config.url)
            .map_err(|e| PluginError::Config(format!("--url {}: {e}", ctx.config.url)))?;
        let pool = match ctx.worker {
            Some(_) => Some(
                ConnectionPool::for_url(&base, PoolConfig::default())
                    .map_err(|e| PluginError::Config(format!("--url {}: {e}", ctx.config.url)))?,
            ),
            None => None,
        };
        Ok(HttpTransport { base, pool })
    }
}

impl TransportProtocol for HttpTransport {
    fn prepare(&self, path: &str, headers: &[(String, String)], body: &[u8]) -> Vec<u8> {
        serialize_request("POST", &self.base, path, headers, body)
    }

    async fn send(
        &self,
        request: &[u8],
        streaming: bool,
        clock: &RunClock,
        record: &mut RequestRecord,
    ) {
        match &self.pool {
            Some(pool) => pool.send(request, streaming, clock, record).await,
            None => {
                // Only worker-owned instances send; reaching this is an engine bug, and
                // the request is still recorded rather than lost.
                record.start_ns = clock.now();
                record.end_ns = record.start_ns;
                record.outcome = Some(Outcome::ConnectionError);
                record.error = Some(ErrorDetails::new(
                    None,
                    "TransportError",
                    "this transport instance has no connection pool",
                ));
            }
        }
    }
}

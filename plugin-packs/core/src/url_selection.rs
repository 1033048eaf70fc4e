//! Spreading requests over several `--url`s.

use aiperf_runtime::plugin::{Plugin, PluginContext, PluginError};
use aiperf_runtime::protocols::UrlSelectionStrategyProtocol;

/// AIPerf's `round_robin`: 0, 1, …, n−1, 0, … Each worker owns one and starts at its own
/// offset, so the first requests of a run already reach every server, and the run as a
/// whole sends each URL an equal share (±1 per worker).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoundRobinUrlSelection {
    count: usize,
    next: usize,
}

impl RoundRobinUrlSelection {
    /// Cycles through `count` URLs starting at `start` (taken modulo `count`).
    pub fn new(count: usize, start: usize) -> Self {
        let count = count.max(1);
        RoundRobinUrlSelection {
            count,
            next: start % count,
        }
    }
}

impl Plugin for RoundRobinUrlSelection {
    fn create(ctx: &PluginContext<'_>) -> Result<Self, PluginError> {
        let start = ctx.worker.map_or(0, |w| w.id as usize);
        Ok(Self::new(ctx.config.url.len(), start))
    }
}

impl UrlSelectionStrategyProtocol for RoundRobinUrlSelection {
    fn next_url_index(&mut self) -> usize {
        let index = self.next;
        self.next = (self.next + 1) % self.count;
        index
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn take(s: &mut RoundRobinUrlSelection, n: usize) -> Vec<usize> {
        (0..n).map(|_| s.next_url_index()).collect()
    }

    #[test]
    fn cycles_in_order_from_the_start_offset() {
        assert_eq!(
            take(&mut RoundRobinUrlSelection::new(3, 0), 7),
            [0, 1, 2, 0, 1, 2, 0]
        );
        assert_eq!(
            take(&mut RoundRobinUrlSelection::new(3, 4), 4),
            [1, 2, 0, 1]
        );
        assert_eq!(take(&mut RoundRobinUrlSelection::new(1, 5), 3), [0, 0, 0]);
        // No URL at all still yields a valid index for the one default URL.
        assert_eq!(take(&mut RoundRobinUrlSelection::new(0, 0), 2), [0, 0]);
    }

    /// The engine creates one per worker; worker `id` starts at URL `id`, as the
    /// transport's own selector did before the strategy became a plugin call.
    #[test]
    fn each_worker_starts_at_its_own_url() {
        use crate::test_config::{config, context, worker_context, EMPTY_ENTRY};
        let cfg = config(&[
            "-m", "m", "-u", "http://a", "-u", "http://b", "-u", "http://c",
        ]);
        let starts: Vec<Vec<usize>> = (0..4)
            .map(|id| {
                let mut s = RoundRobinUrlSelection::create(&worker_context(&cfg, id, 4)).unwrap();
                take(&mut s, 2)
            })
            .collect();
        assert_eq!(starts, [[0, 1], [1, 2], [2, 0], [0, 1]]);
        let mut shared = RoundRobinUrlSelection::create(&context(&cfg, &EMPTY_ENTRY)).unwrap();
        assert_eq!(take(&mut shared, 4), [0, 1, 2, 0]);
    }
}

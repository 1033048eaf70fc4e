//! Which `--url` each request goes to: the run's url_selection_strategy, one instance
//! per worker, asked at the moment the request is written.

use std::cell::RefCell;

use crate::protocols::UrlSelectionStrategyProtocol;

/// A worker's strategy and the number of URLs it chooses among. Shared by the worker's
/// phases, so a strategy's sequence carries on from warmup into profiling.
pub(crate) struct UrlPicker<U> {
    count: usize,
    strategy: RefCell<U>,
}

impl<U: UrlSelectionStrategyProtocol> UrlPicker<U> {
    pub fn new(strategy: U, count: usize) -> Self {
        UrlPicker {
            count,
            strategy: RefCell::new(strategy),
        }
    }

    /// The next request's URL index, always below the number of URLs. With one URL there
    /// is no choice to make, and the strategy is not asked.
    pub fn next(&self) -> usize {
        match self.count {
            0 | 1 => 0,
            // A strategy's index past the end wraps rather than failing the request.
            n => self.strategy.borrow_mut().next_url_index() % n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts its calls and answers with an index past any real URL list.
    struct Wild(usize);

    impl UrlSelectionStrategyProtocol for Wild {
        fn next_url_index(&mut self) -> usize {
            self.0 += 1;
            usize::MAX - self.0
        }
    }

    #[test]
    fn indices_stay_in_range_and_one_url_asks_nothing() {
        let picker = UrlPicker::new(Wild(0), 3);
        let picked: Vec<usize> = (0..3).map(|_| picker.next()).collect();
        // usize::MAX is a multiple of 3 (4^n - 1).
        assert_eq!(picked, [2, 1, 0]);

        let single = UrlPicker::new(Wild(0), 1);
        assert_eq!((single.next(), single.next()), (0, 0));
        assert_eq!(single.strategy.borrow().0, 0);
        assert_eq!(UrlPicker::new(Wild(0), 0).next(), 0);
    }
}

//! Cancelling in-flight requests without losing their records.
//!
//! A request is cancelled by dropping its transport future (the connection is closed, not
//! returned to the pool), never by abandoning the task: the task itself records the
//! cancellation, so every request that was sent ends up in the records.

use std::cell::RefCell;
use std::future::Future;
use std::pin::pin;
use std::rc::Rc;
use std::task::{Poll, Waker};

/// Which of two raced futures finished first.
pub(crate) enum Either<A, B> {
    Left(A),
    Right(B),
}

/// Polls both futures; returns the first output and drops the other future.
pub(crate) async fn race<A: Future, B: Future>(a: A, b: B) -> Either<A::Output, B::Output> {
    let mut a = pin!(a);
    let mut b = pin!(b);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(x) = a.as_mut().poll(cx) {
            return Poll::Ready(Either::Left(x));
        }
        if let Poll::Ready(y) = b.as_mut().poll(cx) {
            return Poll::Ready(Either::Right(y));
        }
        Poll::Pending
    })
    .await
}

#[derive(Default)]
struct State {
    fired: bool,
    waiters: Vec<Waker>,
}

/// A one-shot signal for the tasks of one worker.
#[derive(Clone, Default)]
pub(crate) struct CancelSignal {
    state: Rc<RefCell<State>>,
}

impl CancelSignal {
    pub fn fire(&self) {
        let mut state = self.state.borrow_mut();
        state.fired = true;
        for w in state.waiters.drain(..) {
            w.wake();
        }
    }

    /// Completes once the signal has fired.
    pub async fn fired(&self) {
        std::future::poll_fn(|cx| {
            let mut state = self.state.borrow_mut();
            if state.fired {
                Poll::Ready(())
            } else {
                state.waiters.push(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }
}

/// A small deterministic generator for per-request choices (cancellation draws); the
/// measuring path needs no cryptographic quality, only independence across workers.
pub(crate) struct SplitMix(u64);

impl SplitMix {
    pub fn new(seed: u64) -> Self {
        SplitMix(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn race_returns_the_first_ready_future() {
        let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let signal = CancelSignal::default();
            let fired = signal.clone();
            monoio::spawn(async move { fired.fire() });
            let slow = monoio::time::sleep(std::time::Duration::from_secs(5));
            assert!(matches!(
                race(slow, signal.fired()).await,
                Either::Right(())
            ));
            let quick = std::future::ready(7);
            assert!(matches!(race(quick, signal.fired()).await, Either::Left(7)));
        });
    }

    #[test]
    fn splitmix_is_uniform_enough() {
        let mut rng = SplitMix::new(42);
        let n = 100_000;
        let below = (0..n).filter(|_| rng.next_f64() < 0.25).count();
        assert!((below as f64 / n as f64 - 0.25).abs() < 0.01, "{below}");
    }
}

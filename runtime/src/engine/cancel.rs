//! Cancelling in-flight requests without losing their records.
//!
//! A request is cancelled by dropping its transport future (the connection is closed, not
//! returned to the pool), never by abandoning the task: the task itself records the
//! cancellation, so every request that was sent ends up in the records.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// Which of two raced futures finished first.
pub(crate) enum Either<A, B> {
    Left(A),
    Right(B),
}

/// Polls both futures; returns the first output and drops the other future.
///
/// A plain function returning a struct, not an `async fn`: an async function keeps its
/// future arguments in its own state besides the pinned copies it polls, so every layer
/// of racing doubled the size of a request's future (and the bytes copied when it is
/// spawned and when it completes).
pub(crate) fn race<A: Future, B: Future>(a: A, b: B) -> Race<A, B> {
    Race { a, b }
}

/// [`race`]'s future.
pub(crate) struct Race<A, B> {
    a: A,
    b: B,
}

impl<A: Future, B: Future> Future for Race<A, B> {
    type Output = Either<A::Output, B::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: structural pinning. `a` and `b` are only ever reached through these
        // pinned references, never moved out, and `Race` has no `Drop` impl that could
        // move them; they are dropped in place with it.
        let this = unsafe { self.get_unchecked_mut() };
        let a = unsafe { Pin::new_unchecked(&mut this.a) };
        if let Poll::Ready(x) = a.poll(cx) {
            return Poll::Ready(Either::Left(x));
        }
        // SAFETY: as above.
        let b = unsafe { Pin::new_unchecked(&mut this.b) };
        b.poll(cx).map(Either::Right)
    }
}

#[derive(Default)]
struct State {
    fired: bool,
    /// One slot per waiting future, reused in place: a request polls its stopper at
    /// every read, and a waker pushed per poll would keep every finished task alive
    /// (their wakers hold them) until the signal fires.
    waiters: Vec<Option<Waker>>,
    free: Vec<usize>,
}

/// A one-shot signal for the tasks of one worker.
#[derive(Clone, Default)]
pub(crate) struct CancelSignal {
    state: Rc<RefCell<State>>,
}

impl CancelSignal {
    pub fn fire(&self) {
        let wakers: Vec<Waker> = {
            let mut state = self.state.borrow_mut();
            state.fired = true;
            state.free.clear();
            state.waiters.drain(..).flatten().collect()
        };
        for w in wakers {
            w.wake();
        }
    }

    /// Completes once the signal has fired.
    pub fn fired(&self) -> Fired<'_> {
        Fired {
            signal: self,
            slot: None,
        }
    }

    /// Futures waiting on the signal now.
    #[cfg(test)]
    fn waiting(&self) -> usize {
        let state = self.state.borrow();
        state.waiters.len() - state.free.len()
    }
}

/// [`CancelSignal::fired`]: holds one waker slot while pending, given back on drop.
pub(crate) struct Fired<'a> {
    signal: &'a CancelSignal,
    slot: Option<usize>,
}

impl Future for Fired<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.signal.state.borrow_mut();
        if state.fired {
            drop(state);
            self.slot = None;
            return Poll::Ready(());
        }
        match self.slot.and_then(|i| state.waiters.get_mut(i)) {
            Some(Some(w)) if w.will_wake(cx.waker()) => {}
            Some(w) => *w = Some(cx.waker().clone()),
            None => {
                let waker = Some(cx.waker().clone());
                let slot = match state.free.pop() {
                    Some(i) => {
                        if let Some(w) = state.waiters.get_mut(i) {
                            *w = waker;
                        }
                        i
                    }
                    None => {
                        state.waiters.push(waker);
                        state.waiters.len() - 1
                    }
                };
                drop(state);
                self.slot = Some(slot);
            }
        }
        Poll::Pending
    }
}

impl Drop for Fired<'_> {
    fn drop(&mut self) {
        let Some(i) = self.slot else { return };
        let mut state = self.signal.state.borrow_mut();
        // After `fire` the slots are gone; nothing to give back.
        if !state.fired {
            if let Some(w) = state.waiters.get_mut(i) {
                *w = None;
                state.free.push(i);
            }
        }
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
    fn waiting_futures_hold_one_slot_each_and_release_it() {
        let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let signal = CancelSignal::default();
            let waker = std::task::Waker::noop();
            let mut cx = Context::from_waker(waker);
            let mut a = std::pin::pin!(signal.fired());
            for _ in 0..100 {
                assert!(a.as_mut().poll(&mut cx).is_pending());
            }
            assert_eq!(signal.waiting(), 1);
            {
                let mut b = std::pin::pin!(signal.fired());
                assert!(b.as_mut().poll(&mut cx).is_pending());
                assert_eq!(signal.waiting(), 2);
            }
            assert_eq!(signal.waiting(), 1);
            // The freed slot is reused rather than the list growing.
            let mut c = std::pin::pin!(signal.fired());
            assert!(c.as_mut().poll(&mut cx).is_pending());
            assert_eq!(signal.state.borrow().waiters.len(), 2);
            signal.fire();
            assert!(a.as_mut().poll(&mut cx).is_ready());
            assert!(c.as_mut().poll(&mut cx).is_ready());
            assert_eq!(signal.waiting(), 0);
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

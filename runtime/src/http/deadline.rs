//! Request deadlines of one connection pool, watched by one timer task.
//!
//! A monoio timeout per request costs a timer-wheel insert and removal, and its entry
//! (cache-line aligned) makes every request's future larger and over-aligned, so each
//! spawn and completion copies it. A pool has one limit for all its requests, so later
//! requests never expire earlier: one watcher task sleeps until the earliest deadline in
//! flight, expires what is due and sleeps again, and a request only takes a slot here.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

#[derive(Default)]
struct State {
    slots: Vec<Slot>,
    free: Vec<usize>,
    /// A watcher task is running; it exits once no deadline is pending.
    watching: bool,
}

struct Slot {
    /// `None`: the slot is free.
    at: Option<Instant>,
    expired: bool,
    waker: Option<Waker>,
}

/// The deadlines of one pool's requests in flight.
#[derive(Clone, Default)]
pub(crate) struct Deadlines {
    state: Rc<RefCell<State>>,
}

impl Deadlines {
    /// A future that completes at `at` (to the timer's millisecond), unless dropped
    /// first. Every deadline given to one `Deadlines` must be no earlier than those given
    /// before it, as with one limit added to the current time: the watcher sleeps until
    /// the earliest one pending and relies on no later call undercutting it.
    pub fn expire_at(&self, at: Instant) -> Expiry {
        let mut state = self.state.borrow_mut();
        let slot = Slot {
            at: Some(at),
            expired: false,
            waker: None,
        };
        let index = match state.free.pop() {
            Some(i) => {
                if let Some(s) = state.slots.get_mut(i) {
                    *s = slot;
                }
                i
            }
            None => {
                state.slots.push(slot);
                state.slots.len() - 1
            }
        };
        if !state.watching {
            state.watching = true;
            monoio::spawn(watch(self.state.clone()));
        }
        Expiry {
            state: self.state.clone(),
            index,
        }
    }

    /// Deadlines pending now.
    #[cfg(test)]
    pub fn pending(&self) -> usize {
        let state = self.state.borrow();
        state.slots.len() - state.free.len()
    }
}

/// Expires what is due, then sleeps until the earliest deadline still pending.
async fn watch(state: Rc<RefCell<State>>) {
    loop {
        let now = Instant::now();
        let mut wake = Vec::new();
        let next = {
            let mut state = state.borrow_mut();
            let mut next: Option<Instant> = None;
            for slot in &mut state.slots {
                match slot.at {
                    Some(at) if !slot.expired && at <= now => {
                        slot.expired = true;
                        wake.extend(slot.waker.take());
                    }
                    Some(at) if !slot.expired => next = Some(next.map_or(at, |n| n.min(at))),
                    _ => {}
                }
            }
            if next.is_none() {
                state.watching = false;
            }
            next
        };
        for waker in wake {
            waker.wake();
        }
        let Some(next) = next else {
            return;
        };
        monoio::time::sleep(
            next.saturating_duration_since(now)
                .max(Duration::from_nanos(1)),
        )
        .await;
    }
}

/// Runs `fut` until `expiry` (for ever without one): `None` if the deadline came first
/// (`fut` is then dropped). A struct rather than an `async fn`, which would hold `fut`
/// twice (see `engine::cancel::race`).
pub(crate) fn until<F: Future>(fut: F, expiry: Option<Expiry>) -> Until<F> {
    Until { fut, expiry }
}

/// [`until`]'s future.
pub(crate) struct Until<F> {
    fut: F,
    expiry: Option<Expiry>,
}

impl<F: Future> Future for Until<F> {
    type Output = Option<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: structural pinning of `fut`: it is only reached through this pinned
        // reference, never moved out, and `Until` has no `Drop` impl. `expiry` is `Unpin`.
        let this = unsafe { self.get_unchecked_mut() };
        let fut = unsafe { Pin::new_unchecked(&mut this.fut) };
        if let Poll::Ready(out) = fut.poll(cx) {
            return Poll::Ready(Some(out));
        }
        match &mut this.expiry {
            Some(expiry) => Pin::new(expiry).poll(cx).map(|()| None),
            None => Poll::Pending,
        }
    }
}

/// One request's deadline ([`Deadlines::expire_at`]); its slot is given back on drop.
pub(crate) struct Expiry {
    state: Rc<RefCell<State>>,
    index: usize,
}

impl Future for Expiry {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.state.borrow_mut();
        let Some(slot) = state.slots.get_mut(self.index) else {
            return Poll::Pending;
        };
        if slot.expired {
            return Poll::Ready(());
        }
        match &mut slot.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            w => *w = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

impl Drop for Expiry {
    fn drop(&mut self) {
        let mut state = self.state.borrow_mut();
        if let Some(slot) = state.slots.get_mut(self.index) {
            slot.at = None;
            slot.expired = false;
            slot.waker = None;
            state.free.push(self.index);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtimes<F: Future<Output = ()>>(test: impl Fn() -> F) {
        monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .expect("epoll runtime")
            .block_on(test());
        if monoio::utils::detect_uring() {
            monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
                .enable_timer()
                .build()
                .expect("io_uring runtime")
                .block_on(test());
        }
    }

    #[test]
    fn deadlines_expire_in_order_and_free_their_slots() {
        runtimes(|| async {
            let deadlines = Deadlines::default();
            let start = Instant::now();
            let ms = Duration::from_millis;
            let first = deadlines.expire_at(start + ms(30));
            let second = deadlines.expire_at(start + ms(60));
            // Dropped before it expires: its slot is given back and reused.
            drop(deadlines.expire_at(start + ms(60)));
            assert_eq!(deadlines.pending(), 2);
            let third = deadlines.expire_at(start + ms(90));
            assert_eq!(deadlines.state.borrow().slots.len(), 3);
            first.await;
            let t1 = start.elapsed();
            second.await;
            let t2 = start.elapsed();
            third.await;
            let t3 = start.elapsed();
            // The timer ticks every millisecond; a loaded machine adds lateness.
            assert!((ms(30)..ms(500)).contains(&t1), "{t1:?}");
            assert!((ms(60)..ms(530)).contains(&t2), "{t2:?}");
            assert!((ms(90)..ms(560)).contains(&t3), "{t3:?}");
            assert_eq!(deadlines.pending(), 0);
            // The watcher has stopped; a new deadline starts another.
            monoio::time::sleep(ms(5)).await;
            assert!(!deadlines.state.borrow().watching);
            let again = Instant::now();
            deadlines.expire_at(again + ms(20)).await;
            assert!(again.elapsed() >= ms(20));
        });
    }
}

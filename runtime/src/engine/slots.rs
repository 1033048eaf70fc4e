//! A single-threaded counting semaphore for concurrency slots on one worker.
//!
//! Each worker owns its slots, so nothing here is shared across threads: `Rc` and
//! `RefCell` are enough. Waiters are served first come, first served: a returned slot is
//! handed to the oldest waiter outright (nobody polling in between can take it), and a
//! waiter that goes away leaves the queue, passing on a slot it was handed and never
//! took. A queue of bare wakers did neither: a waiter polled twice was queued twice, and a
//! slot returned to its stale entry woke nobody, so a worker could wait for good with a
//! slot free (prefill slots, taken by every turn of every session, hit it).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use crate::record::{Nanos, RunClock};

#[derive(Default)]
struct State {
    available: u32,
    /// Slots to drop as they are returned (capacity lowered while they were held).
    debt: u32,
    /// Slots held, by guards or handed to waiters that have not taken them yet.
    in_use: u32,
    waiters: VecDeque<Rc<Waiter>>,
    /// Wakers waiting for every slot to be returned.
    idle_waiters: Vec<Waker>,
}

/// One pending [`Acquire`]: how to wake it, and whether a slot was handed to it.
struct Waiter {
    waker: RefCell<Waker>,
    granted: Cell<bool>,
}

impl State {
    /// Gives one slot to the oldest waiter, or to the pool when nobody waits.
    fn hand_over(&mut self) {
        match self.waiters.pop_front() {
            Some(w) => {
                w.granted.set(true);
                self.in_use += 1;
                w.waker.borrow().wake_by_ref();
            }
            None => self.available += 1,
        }
    }

    /// Takes back a held slot: when slots are limited, dropped if capacity was lowered,
    /// else handed on.
    fn give_back(&mut self, limited: bool) {
        self.in_use -= 1;
        // Unlimited slots are only counted, for `idle`.
        if limited {
            if self.debt > 0 {
                self.debt -= 1;
            } else {
                self.hand_over();
            }
        }
        if self.in_use == 0 {
            for w in self.idle_waiters.drain(..) {
                w.wake();
            }
        }
    }
}

/// Concurrency slots of one worker; `None` capacity means unlimited.
#[derive(Clone)]
pub struct Slots {
    state: Rc<RefCell<State>>,
    limited: bool,
}

/// A held slot; returned on drop.
pub struct SlotGuard {
    state: Rc<RefCell<State>>,
    limited: bool,
}

impl Slots {
    pub fn new(capacity: Option<u32>) -> Self {
        let state = State {
            available: capacity.unwrap_or(0),
            ..State::default()
        };
        Slots {
            state: Rc::new(RefCell::new(state)),
            limited: capacity.is_some(),
        }
    }

    /// Waits for a free slot, after those who waited before.
    pub fn acquire(&self) -> Acquire<'_> {
        Acquire {
            slots: self,
            waiter: None,
        }
    }

    /// A slot, and how long the wait for it was (0 when one was free): time a limit held
    /// a request back, which its schedule shifts by rather than count as the client's
    /// lateness (AIPerf issues the credit once the slot is held).
    pub async fn acquire_timed(&self, clock: &RunClock) -> (SlotGuard, Nanos) {
        if let Some(guard) = self.try_acquire() {
            return (guard, 0);
        }
        let from = clock.now();
        let guard = self.acquire().await;
        (guard, clock.now().saturating_sub(from))
    }

    /// A free slot now, if there is one and nobody is waiting for it.
    pub fn try_acquire(&self) -> Option<SlotGuard> {
        let mut state = self.state.borrow_mut();
        if self.limited {
            if state.available == 0 || !state.waiters.is_empty() {
                return None;
            }
            state.available -= 1;
        }
        state.in_use += 1;
        Some(self.guard())
    }

    fn guard(&self) -> SlotGuard {
        SlotGuard {
            state: self.state.clone(),
            limited: self.limited,
        }
    }

    /// Changes how many slots exist (concurrency ramps); new ones go to waiters first.
    pub fn set_capacity(&self, capacity: u32) {
        if !self.limited {
            return;
        }
        let mut state = self.state.borrow_mut();
        let current = state.available + state.in_use - state.debt.min(state.in_use);
        if capacity > current {
            let mut added = capacity - current;
            // Slots still owed from a lowered capacity are simply kept.
            let forgiven = added.min(state.debt);
            state.debt -= forgiven;
            added -= forgiven;
            for _ in 0..added {
                state.hand_over();
            }
        } else {
            // Held slots cannot be taken back; the excess disappears as they are returned.
            let excess = current - capacity;
            let from_available = excess.min(state.available);
            state.available -= from_available;
            state.debt += excess - from_available;
        }
    }

    /// Waits until no slot is held.
    pub fn idle(&self) -> Idle<'_> {
        Idle { slots: self }
    }
}

pub struct Acquire<'a> {
    slots: &'a Slots,
    /// Its place in the queue, once it had to wait.
    waiter: Option<Rc<Waiter>>,
}

impl Future for Acquire<'_> {
    type Output = SlotGuard;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<SlotGuard> {
        let slots = self.slots;
        if let Some(waiter) = &self.waiter {
            if waiter.granted.get() {
                // The slot was counted in use when it was handed over.
                self.waiter = None;
                return Poll::Ready(slots.guard());
            }
            waiter.waker.borrow_mut().clone_from(cx.waker());
            return Poll::Pending;
        }
        if let Some(guard) = slots.try_acquire() {
            return Poll::Ready(guard);
        }
        let waiter = Rc::new(Waiter {
            waker: RefCell::new(cx.waker().clone()),
            granted: Cell::new(false),
        });
        slots.state.borrow_mut().waiters.push_back(waiter.clone());
        self.waiter = Some(waiter);
        Poll::Pending
    }
}

impl Drop for Acquire<'_> {
    fn drop(&mut self) {
        let Some(waiter) = self.waiter.take() else {
            return;
        };
        let mut state = self.slots.state.borrow_mut();
        if waiter.granted.get() {
            // Handed a slot it will never take: the next waiter gets it.
            state.give_back(true);
        } else {
            state.waiters.retain(|w| !Rc::ptr_eq(w, &waiter));
        }
    }
}

pub struct Idle<'a> {
    slots: &'a Slots,
}

impl Future for Idle<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.slots.state.borrow_mut();
        if state.in_use == 0 {
            return Poll::Ready(());
        }
        state.idle_waiters.push(cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.state.borrow_mut().give_back(self.limited);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::Wake;

    use super::*;

    /// Counts its wake-ups.
    #[derive(Default)]
    struct Counter(AtomicUsize);

    impl Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn waker() -> (Arc<Counter>, Waker) {
        let counter = Arc::new(Counter::default());
        (counter.clone(), Waker::from(counter))
    }

    fn poll<F: Future + Unpin>(f: &mut F, w: &Waker) -> Poll<F::Output> {
        Pin::new(f).poll(&mut Context::from_waker(w))
    }

    #[test]
    fn a_waiter_polled_again_is_queued_once_and_woken_for_its_slot() {
        let slots = Slots::new(Some(1));
        let held = slots.try_acquire().expect("a free slot");
        let (count_a, wa) = waker();
        let (count_b, wb) = waker();
        let mut a = slots.acquire();
        let mut b = slots.acquire();
        assert!(poll(&mut a, &wa).is_pending());
        // Spurious polls (a race's other side woke the task) used to queue it again.
        assert!(poll(&mut a, &wa).is_pending());
        assert!(poll(&mut b, &wb).is_pending());
        assert!(poll(&mut a, &wa).is_pending());
        drop(held);
        assert_eq!(count_a.0.load(Ordering::Relaxed), 1);
        let first = match poll(&mut a, &wa) {
            Poll::Ready(guard) => guard,
            Poll::Pending => panic!("the oldest waiter gets the returned slot"),
        };
        drop(first);
        // The second release reaches b, not a stale entry of a.
        assert_eq!(count_b.0.load(Ordering::Relaxed), 1);
        assert!(poll(&mut b, &wb).is_ready());
    }

    #[test]
    fn a_returned_slot_cannot_be_taken_past_the_queue() {
        let slots = Slots::new(Some(1));
        let held = slots.try_acquire().expect("a free slot");
        let (_, w) = waker();
        let mut waiting = slots.acquire();
        assert!(poll(&mut waiting, &w).is_pending());
        drop(held);
        assert!(slots.try_acquire().is_none());
        let mut late = slots.acquire();
        assert!(poll(&mut late, &w).is_pending());
        assert!(poll(&mut waiting, &w).is_ready());
    }

    #[test]
    fn a_waiter_that_leaves_passes_its_slot_on() {
        let slots = Slots::new(Some(1));
        let held = slots.try_acquire().expect("a free slot");
        let (_, w) = waker();
        let (count_c, wc) = waker();
        let mut gone_early = slots.acquire();
        let mut gone_late = slots.acquire();
        let mut c = slots.acquire();
        assert!(poll(&mut gone_early, &w).is_pending());
        assert!(poll(&mut gone_late, &w).is_pending());
        assert!(poll(&mut c, &wc).is_pending());
        drop(gone_early);
        // Handed the slot, then dropped without taking it (its race was lost).
        drop(held);
        drop(gone_late);
        assert_eq!(count_c.0.load(Ordering::Relaxed), 1);
        let guard = match poll(&mut c, &wc) {
            Poll::Ready(guard) => guard,
            Poll::Pending => panic!("the slot was passed on"),
        };
        drop(guard);
        assert!(
            slots.try_acquire().is_some(),
            "the slot is back in the pool"
        );
    }

    #[test]
    fn capacity_changes_serve_waiters_and_settle_debts() {
        let slots = Slots::new(Some(2));
        let a = slots.try_acquire().expect("slot 1");
        let b = slots.try_acquire().expect("slot 2");
        slots.set_capacity(1);
        drop(a);
        // Still one in use, at the new capacity of one.
        assert!(slots.try_acquire().is_none());
        let (count, w) = waker();
        let mut waiting = slots.acquire();
        assert!(poll(&mut waiting, &w).is_pending());
        slots.set_capacity(2);
        assert_eq!(count.0.load(Ordering::Relaxed), 1);
        let c = match poll(&mut waiting, &w) {
            Poll::Ready(guard) => guard,
            Poll::Pending => panic!("a new slot goes to the waiter"),
        };
        assert!(slots.try_acquire().is_none());
        drop((b, c));
        let both = (
            slots.try_acquire(),
            slots.try_acquire(),
            slots.try_acquire(),
        );
        assert!(both.0.is_some() && both.1.is_some() && both.2.is_none());
    }

    #[test]
    fn idle_waits_for_every_slot_unlimited_too() {
        let slots = Slots::new(None);
        let guards: Vec<_> = (0..3).filter_map(|_| slots.try_acquire()).collect();
        assert_eq!(guards.len(), 3);
        let (count, w) = waker();
        let mut idle = slots.idle();
        assert!(poll(&mut idle, &w).is_pending());
        drop(guards);
        assert_eq!(count.0.load(Ordering::Relaxed), 1);
        assert!(poll(&mut idle, &w).is_ready());
    }
}

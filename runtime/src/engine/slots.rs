//! A single-threaded counting semaphore for concurrency slots on one worker.
//!
//! Each worker owns its slots, so nothing here is shared across threads: `Rc` and
//! `RefCell` are enough, and waking is FIFO so no waiter starves.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

#[derive(Default)]
struct State {
    available: u32,
    /// Slots to drop as they are returned (capacity lowered while they were held).
    debt: u32,
    in_use: u32,
    waiters: VecDeque<Waker>,
    /// Wakers waiting for every slot to be returned.
    idle_waiters: Vec<Waker>,
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

    /// Waits for a free slot.
    pub fn acquire(&self) -> Acquire<'_> {
        Acquire { slots: self }
    }

    /// A free slot now, if there is one and nobody is waiting for it.
    pub fn try_acquire(&self) -> Option<SlotGuard> {
        let mut state = self.state.borrow_mut();
        if self.limited && (state.available == 0 || !state.waiters.is_empty()) {
            return None;
        }
        if self.limited {
            state.available -= 1;
        }
        state.in_use += 1;
        Some(SlotGuard {
            state: self.state.clone(),
            limited: self.limited,
        })
    }

    /// Changes how many slots exist (concurrency ramps); waiters are woken for new ones.
    pub fn set_capacity(&self, capacity: u32) {
        if !self.limited {
            return;
        }
        let mut state = self.state.borrow_mut();
        let current = state.available + state.in_use;
        if capacity > current {
            state.available += capacity - current;
            for _ in 0..(capacity - current) {
                match state.waiters.pop_front() {
                    Some(w) => w.wake(),
                    None => break,
                }
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
}

impl Future for Acquire<'_> {
    type Output = SlotGuard;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<SlotGuard> {
        let slots = self.slots;
        let mut state = slots.state.borrow_mut();
        if !slots.limited || state.available > 0 {
            if slots.limited {
                state.available -= 1;
            }
            state.in_use += 1;
            return Poll::Ready(SlotGuard {
                state: slots.state.clone(),
                limited: slots.limited,
            });
        }
        state.waiters.push_back(cx.waker().clone());
        Poll::Pending
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
        let mut state = self.state.borrow_mut();
        state.in_use -= 1;
        if self.limited && state.debt > 0 {
            state.debt -= 1;
        } else if self.limited {
            state.available += 1;
            if let Some(w) = state.waiters.pop_front() {
                w.wake();
            }
        }
        if state.in_use == 0 {
            for w in state.idle_waiters.drain(..) {
                w.wake();
            }
        }
    }
}

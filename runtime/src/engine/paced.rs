//! Later turns of a request-rate run's sessions, sent on the rate's ticks.
//!
//! AIPerf 0.13's rate loop (`timing/strategies/request_rate.py`, `execute_phase`) gives
//! each tick of the arrival pattern to one request: first to a later turn waiting in its
//! continuation queue (queued by `handle_credit_return` once the previous turn's credit
//! came back and the turn's `delay_ms` elapsed), and only when none waits to a new
//! session; a tick with neither passes unused. So the whole run, later turns included,
//! goes at the rate asked for. Without a rate (`--concurrency` alone) the pattern's
//! interval is 0, so a later turn goes as soon as it is queued: that path does not come
//! here, a session sends those turns itself.
//!
//! Our workers each run their own share of the rate, and a session stays on the worker
//! that started it (its connections, its chat history, its slot): its later turns wait in
//! that worker's queue, for that worker's ticks. Ticks never cross workers, which keeps
//! workers free of cross-thread wake-ups. Over several workers the price was at a run's
//! tail, when sessions are few: a worker with no turn waiting and no session left to start
//! let its tick pass while another worker had a turn waiting, where AIPerf's single loop
//! would have sent it; so `run` gives a rate run with multi-turn sessions one worker.
//!
//! Single-threaded (one queue per worker and phase): `Rc` and `RefCell` are enough.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};

use crate::engine::cancel::CancelSignal;
use crate::engine::slots::SlotGuard;
use crate::record::Nanos;

/// What a tick gives a waiting turn: its intended send time, its credit, and its prefill
/// slot (`--prefill-concurrency`), all taken by the worker's loop.
pub(crate) struct Tick {
    pub at: Nanos,
    pub credit: u64,
    pub prefill: Option<SlotGuard>,
}

enum Slot {
    Waiting(Option<Waker>),
    Granted(Tick),
    /// The loop ended: no tick will come.
    Closed,
    Taken,
}

/// One turn in the queue.
struct Waiting {
    slot: RefCell<Slot>,
}

#[derive(Default)]
struct State {
    /// Oldest first. A turn whose session gave up (its wait was dropped) is dead here.
    waiting: VecDeque<Weak<Waiting>>,
    /// Sessions that may still put a turn in the queue.
    live: usize,
    /// The worker's loop, waiting for a turn to be queued or for the last session to end.
    loop_waker: Option<Waker>,
    closed: bool,
}

impl State {
    fn wake_loop(&mut self) {
        if let Some(waker) = self.loop_waker.take() {
            waker.wake();
        }
    }

    /// Whether a turn waits, after dropping the oldest ones whose sessions gave up (only
    /// those at the front: a tick's check stays O(1); `pop` skips any others).
    fn any_waiting(&mut self) -> bool {
        while self.waiting.front().is_some_and(|w| w.strong_count() == 0) {
            self.waiting.pop_front();
        }
        !self.waiting.is_empty()
    }
}

/// One worker's queue of later turns waiting for a tick, in one phase.
#[derive(Clone, Default)]
pub(crate) struct TurnQueue {
    state: Rc<RefCell<State>>,
}

impl TurnQueue {
    /// Registers a session that has later turns to send on ticks. Taken by the loop when
    /// it starts the session, so the loop never sees "no session left" between the
    /// session's start and its first poll.
    pub fn enter(&self) -> Paced {
        self.state.borrow_mut().live += 1;
        Paced {
            queue: self.clone(),
        }
    }

    /// Whether a session of this worker may still queue a turn.
    pub fn has_live(&self) -> bool {
        self.state.borrow().live > 0
    }

    /// Whether a turn waits for a tick.
    pub fn has_waiting(&self) -> bool {
        self.state.borrow_mut().any_waiting()
    }

    /// Takes the oldest waiting turn out of the queue, to give it a tick.
    pub fn pop(&self) -> Option<Popped> {
        let mut state = self.state.borrow_mut();
        while let Some(weak) = state.waiting.pop_front() {
            if let Some(turn) = weak.upgrade() {
                return Some(Popped { turn: Some(turn) });
            }
        }
        None
    }

    /// Completes once a turn waits (at once if one does).
    pub fn queued(&self) -> Queued<'_> {
        Queued { queue: self }
    }

    /// Completes once `closed` fired (no new session from this worker) and no session
    /// may queue a turn any more: the loop has nothing left to give a tick to.
    pub async fn finished(&self, closed: &CancelSignal) {
        closed.fired().await;
        NoneLive { queue: self }.await;
    }

    /// The loop ended: every waiting turn, and every turn queued from now on, gets no
    /// tick, and its session ends.
    pub fn close(&self) {
        let waiting: Vec<Rc<Waiting>> = {
            let mut state = self.state.borrow_mut();
            state.closed = true;
            state
                .waiting
                .drain(..)
                .filter_map(|w| w.upgrade())
                .collect()
        };
        for turn in waiting {
            wake_with(&turn, Slot::Closed);
        }
    }
}

/// A turn taken out of the queue: given its tick, or, dropped without one, told that no
/// tick will come (its session ends rather than wait for good).
pub(crate) struct Popped {
    turn: Option<Rc<Waiting>>,
}

impl Popped {
    pub fn grant(mut self, tick: Tick) {
        if let Some(turn) = self.turn.take() {
            wake_with(&turn, Slot::Granted(tick));
        }
    }
}

impl Drop for Popped {
    fn drop(&mut self) {
        if let Some(turn) = self.turn.take() {
            wake_with(&turn, Slot::Closed);
        }
    }
}

/// Settles a waiting turn and wakes its session.
fn wake_with(turn: &Waiting, settled: Slot) {
    let previous = std::mem::replace(&mut *turn.slot.borrow_mut(), settled);
    if let Slot::Waiting(Some(waker)) = previous {
        waker.wake();
    }
}

/// A session that may still queue turns; dropped once it will not (its last turn sent,
/// or the session stopped).
pub(crate) struct Paced {
    queue: TurnQueue,
}

impl Paced {
    /// Queues the session's next turn and waits for its tick; `None` when the loop ended
    /// first. Dropping the wait takes the turn out of the queue.
    pub fn next_tick(&self) -> NextTick {
        let mut state = self.queue.state.borrow_mut();
        let slot = match state.closed {
            true => Slot::Closed,
            false => Slot::Waiting(None),
        };
        let turn = Rc::new(Waiting {
            slot: RefCell::new(slot),
        });
        if !state.closed {
            state.waiting.push_back(Rc::downgrade(&turn));
            state.wake_loop();
        }
        NextTick { turn }
    }
}

impl Drop for Paced {
    fn drop(&mut self) {
        let mut state = self.queue.state.borrow_mut();
        state.live -= 1;
        if state.live == 0 {
            state.wake_loop();
        }
    }
}

/// [`Paced::next_tick`]'s future.
pub(crate) struct NextTick {
    turn: Rc<Waiting>,
}

impl Future for NextTick {
    type Output = Option<Tick>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Tick>> {
        let mut slot = self.turn.slot.borrow_mut();
        match std::mem::replace(&mut *slot, Slot::Taken) {
            Slot::Granted(tick) => Poll::Ready(Some(tick)),
            Slot::Closed | Slot::Taken => Poll::Ready(None),
            Slot::Waiting(_) => {
                *slot = Slot::Waiting(Some(cx.waker().clone()));
                Poll::Pending
            }
        }
    }
}

/// [`TurnQueue::queued`]'s future.
pub(crate) struct Queued<'a> {
    queue: &'a TurnQueue,
}

impl Future for Queued<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.queue.state.borrow_mut();
        if state.any_waiting() {
            return Poll::Ready(());
        }
        state.loop_waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// Completes once no session may queue a turn.
struct NoneLive<'a> {
    queue: &'a TurnQueue,
}

impl Future for NoneLive<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.queue.state.borrow_mut();
        if state.live == 0 {
            return Poll::Ready(());
        }
        state.loop_waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn poll<F: Future + Unpin>(f: &mut F) -> Poll<F::Output> {
        let mut cx = Context::from_waker(Waker::noop());
        Pin::new(f).poll(&mut cx)
    }

    fn tick(credit: u64) -> Tick {
        Tick {
            at: 1_000 * credit,
            credit,
            prefill: None,
        }
    }

    #[test]
    fn ticks_go_to_the_oldest_waiting_turn() {
        let queue = TurnQueue::default();
        let (a, b) = (queue.enter(), queue.enter());
        assert!(!queue.has_waiting());
        assert!(queue.pop().is_none(), "no turn waits");
        let mut first = b.next_tick();
        let mut second = a.next_tick();
        assert!(poll(&mut first).is_pending());
        assert!(queue.has_waiting());
        queue.pop().expect("a waiting turn").grant(tick(7));
        assert!(matches!(
            poll(&mut first),
            Poll::Ready(Some(Tick { credit: 7, .. }))
        ));
        assert!(poll(&mut second).is_pending(), "one tick, one turn");
        queue.pop().expect("a waiting turn").grant(tick(8));
        assert!(matches!(
            poll(&mut second),
            Poll::Ready(Some(Tick { credit: 8, .. }))
        ));
        assert!(!queue.has_waiting());
    }

    #[test]
    fn a_turn_that_stopped_waiting_gets_no_tick() {
        let queue = TurnQueue::default();
        let session = queue.enter();
        let gone = session.next_tick();
        let mut kept = session.next_tick();
        drop(gone);
        queue.pop().expect("the turn still waiting").grant(tick(3));
        assert!(matches!(
            poll(&mut kept),
            Poll::Ready(Some(Tick { credit: 3, .. }))
        ));
        let gone = session.next_tick();
        drop(gone);
        assert!(!queue.has_waiting());
        assert!(queue.pop().is_none());
    }

    #[test]
    fn a_turn_popped_and_given_no_tick_ends() {
        let queue = TurnQueue::default();
        let session = queue.enter();
        let mut waiting = session.next_tick();
        assert!(poll(&mut waiting).is_pending());
        drop(queue.pop());
        assert!(matches!(poll(&mut waiting), Poll::Ready(None)));
    }

    #[test]
    fn the_loop_is_finished_once_closed_and_no_session_is_left() {
        let queue = TurnQueue::default();
        let closed = CancelSignal::default();
        let session = queue.enter();
        let mut finished = Box::pin(queue.finished(&closed));
        let mut cx = Context::from_waker(Waker::noop());
        assert!(finished.as_mut().poll(&mut cx).is_pending());
        closed.fire();
        assert!(
            finished.as_mut().poll(&mut cx).is_pending(),
            "a session has turns left"
        );
        drop(session);
        assert!(!queue.has_live());
        assert!(finished.as_mut().poll(&mut cx).is_ready());
    }

    #[test]
    fn closing_ends_every_wait() {
        let queue = TurnQueue::default();
        let session = queue.enter();
        let mut waiting = session.next_tick();
        assert!(poll(&mut waiting).is_pending());
        queue.close();
        assert!(matches!(poll(&mut waiting), Poll::Ready(None)));
        let mut late = session.next_tick();
        assert!(matches!(poll(&mut late), Poll::Ready(None)));
        assert!(queue.pop().is_none());
    }

    #[test]
    fn queued_completes_when_a_turn_waits() {
        let queue = TurnQueue::default();
        let session = queue.enter();
        let mut queued = queue.queued();
        assert!(poll(&mut queued).is_pending());
        let _turn = session.next_tick();
        assert!(poll(&mut queued).is_ready());
    }
}

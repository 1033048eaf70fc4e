//! When a read completed, as the worker can best tell.
//!
//! A worker sleeps in the kernel until completions arrive, then reaps all that are ready at
//! once and runs their tasks one after another. Reading the clock as each task gets its
//! turn would add the time spent on the tasks before it: at 256 streams whose tokens
//! arrive together, the last of a burst was stamped half a millisecond late. Every data
//! completion reaped together was complete when the worker woke, so they all share the
//! clock reading taken by the first of them.
//!
//! Only completions that had to wait share it. A read that finds its bytes at once (the
//! epoll driver reads inside the task's poll; TLS may hold decrypted bytes) may have got
//! them after the shared reading, so it reads the clock itself. Without io_uring every
//! read goes to the clock: epoll only reports readiness, and the bytes are read later,
//! while the task runs.

use std::cell::Cell;
use std::future::Future;
use std::time::Instant;

use crate::record::{Nanos, RunClock};

thread_local! {
    /// The shared reading of the current batch, with the epoch of the clock it came from
    /// (a reading of another run's clock is never reused).
    static BATCH: Cell<Option<(Instant, Nanos)>> = const { Cell::new(None) };
}

/// Awaits `read` and returns its output with the instant it completed.
pub(crate) async fn stamped<F: Future>(clock: &RunClock, read: F) -> (F::Output, Nanos) {
    let mut read = std::pin::pin!(read);
    let mut waited = false;
    let out = std::future::poll_fn(|cx| {
        let poll = read.as_mut().poll(cx);
        waited |= poll.is_pending();
        poll
    })
    .await;
    let at = if waited && !monoio::utils::is_legacy() {
        batch_now(clock)
    } else {
        clock.now()
    };
    (out, at)
}

/// The clock reading shared by the completions reaped with this one.
///
/// The first caller of a batch reads the clock and queues a task that forgets the
/// reading. The executor runs tasks first in, first out, and the driver queued every task
/// of this batch when it reaped it, so the forgetting task runs after all of them and
/// before any task of a later reap.
fn batch_now(clock: &RunClock) -> Nanos {
    let epoch = clock.epoch();
    if let Some((e, at)) = BATCH.get() {
        if e == epoch {
            return at;
        }
    }
    let at = clock.now();
    BATCH.set(Some((epoch, at)));
    drop(monoio::spawn(async { BATCH.set(None) }));
    at
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;
    use std::task::{Poll, Waker};
    use std::time::Duration;

    /// Pending until opened; opening wakes every waiter at once, as a reap does.
    #[derive(Clone, Default)]
    struct Gate(Rc<RefCell<(bool, Vec<Waker>)>>);

    impl Gate {
        async fn wait(&self) {
            std::future::poll_fn(|cx| {
                let mut state = self.0.borrow_mut();
                if state.0 {
                    Poll::Ready(())
                } else {
                    state.1.push(cx.waker().clone());
                    Poll::Pending
                }
            })
            .await
        }

        fn open(&self) {
            let wakers = {
                let mut state = self.0.borrow_mut();
                state.0 = true;
                std::mem::take(&mut state.1)
            };
            wakers.into_iter().for_each(Waker::wake);
        }
    }

    /// Tasks woken together share one reading although each takes 2 ms; a task woken
    /// after them gets its own; a future that is ready at once reads the clock itself.
    #[test]
    fn completions_woken_together_share_one_reading() {
        let mut rt = monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
            .enable_timer()
            .build()
            .expect("runtime");
        let clock = RunClock::new();
        let (legacy, early, late, ready) = rt.block_on(async move {
            let gate = Gate::default();
            let burst: Vec<_> = (0..3)
                .map(|_| {
                    let gate = gate.clone();
                    monoio::spawn(async move {
                        let (_, at) = stamped(&clock, gate.wait()).await;
                        std::thread::sleep(Duration::from_millis(2));
                        at
                    })
                })
                .collect();
            monoio::time::sleep(Duration::from_millis(5)).await;
            gate.open();
            let mut early = Vec::new();
            for task in burst {
                early.push(task.await);
            }
            let second = Gate::default();
            let later = monoio::spawn({
                let second = second.clone();
                async move { stamped(&clock, second.wait()).await.1 }
            });
            monoio::time::sleep(Duration::from_millis(5)).await;
            second.open();
            let late = later.await;
            let before = clock.now();
            let (_, ready) = stamped(&clock, std::future::ready(())).await;
            (monoio::utils::is_legacy(), early, late, (before, ready))
        });
        if legacy {
            // Without io_uring every completion reads the clock: 2 ms apart here.
            assert!(early[1] >= early[0] + 2_000_000, "{early:?}");
        } else {
            assert_eq!(early[0], early[1], "{early:?}");
            assert_eq!(early[1], early[2], "{early:?}");
        }
        assert!(late >= early[0] + 6_000_000, "{early:?} {late}");
        assert!(ready.1 >= ready.0, "{ready:?}");
    }
}

//! A deadline timer accurate to tens of microseconds.
//!
//! tokio's timer wheel rounds every deadline up to the next millisecond tick, so a 4 ms
//! inter-token latency would come out as 4-5 ms with a sawtooth error. The mock is the ground
//! truth of the client's timing tests, so it needs better than that: one dedicated thread owns
//! a min-heap of absolute deadlines, blocks on a condvar until shortly before the earliest one
//! (the kernel wakes a blocked thread 50-100 µs late), and spins the rest of the way.
//! Sleepers are woken through a oneshot channel, so any async task can await a deadline.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

/// How long before a deadline the timer thread stops blocking and starts spinning. It must
/// exceed the kernel's wake-up latency (scheduling on a virtual machine takes tens of
/// microseconds), and every microsecond of it is burnt CPU per distinct deadline.
pub const DEFAULT_SPIN: Duration = Duration::from_micros(200);

/// The thread spins only when the previous deadline fired at least this many spin windows
/// ago, which caps spinning at about a fifth of one core. Dense deadlines (hundreds of
/// streams, one every few microseconds) would otherwise keep it spinning without pause, and
/// a spinning mock steals the very core the client under test needs: on two cores that
/// tripled the TTFT error seen at 256 streams. Sparse deadlines, where a late wake-up would
/// show, still get the spin.
const SPIN_DUTY_RATIO: u32 = 5;

struct Entry {
    deadline: Instant,
    /// Breaks ties so that equal deadlines fire in the order they were armed.
    seq: u64,
    tx: oneshot::Sender<()>,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Entry {}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.deadline, self.seq).cmp(&(other.deadline, other.seq))
    }
}

#[derive(Default)]
struct State {
    heap: BinaryHeap<Reverse<Entry>>,
    seq: u64,
    stopped: bool,
}

struct Shared {
    state: Mutex<State>,
    cv: Condvar,
    /// Set when a new earliest deadline is armed, so that a thread spinning towards a later
    /// deadline (without the lock, so arming never waits on it) notices and re-plans.
    rearm: AtomicBool,
    spin: Duration,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the heap inconsistent in a way that
        // matters here, so keep serving rather than propagating the poison.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Owns the timer thread; dropping it stops the thread and completes every pending [`Sleep`].
pub struct PreciseTimer {
    handle: TimerHandle,
    thread: Option<JoinHandle<()>>,
}

/// A cheap, clonable handle for arming deadlines on a [`PreciseTimer`].
#[derive(Clone)]
pub struct TimerHandle {
    shared: Arc<Shared>,
}

impl PreciseTimer {
    /// Starts the timer thread. `spin` is how long before each deadline the thread busy-waits
    /// instead of blocking; zero means never spin (then expect ~50-100 µs of lateness).
    pub fn start(spin: Duration) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            cv: Condvar::new(),
            rearm: AtomicBool::new(false),
            spin,
        });
        let for_thread = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("aiperf-mock-timer".into())
            .spawn(move || run(&for_thread))?;
        Ok(Self {
            handle: TimerHandle { shared },
            thread: Some(thread),
        })
    }

    pub fn handle(&self) -> TimerHandle {
        self.handle.clone()
    }
}

impl Drop for PreciseTimer {
    fn drop(&mut self) {
        self.handle.shared.lock().stopped = true;
        self.handle
            .shared
            .rearm
            .store(true, AtomicOrdering::Release);
        self.handle.shared.cv.notify_one();
        if let Some(thread) = self.thread.take() {
            // The thread only ever exits by seeing `stopped`; a panic in it has nothing left
            // for us to clean up.
            let _ = thread.join();
        }
    }
}

impl TimerHandle {
    /// Completes at `deadline` (never before it), or at once if the deadline has passed or
    /// the timer has been stopped.
    pub fn sleep_until(&self, deadline: Instant) -> Sleep {
        if deadline <= Instant::now() {
            return Sleep { rx: None };
        }
        let (tx, rx) = oneshot::channel();
        let mut st = self.shared.lock();
        if st.stopped {
            return Sleep { rx: None };
        }
        let earliest = st
            .heap
            .peek()
            .is_none_or(|Reverse(top)| deadline < top.deadline);
        st.seq = st.seq.wrapping_add(1);
        let seq = st.seq;
        st.heap.push(Reverse(Entry { deadline, seq, tx }));
        drop(st);
        if earliest {
            self.shared.rearm.store(true, AtomicOrdering::Release);
            self.shared.cv.notify_one();
        }
        Sleep { rx: Some(rx) }
    }
}

/// Future returned by [`TimerHandle::sleep_until`]. Dropping it cancels nothing on the timer
/// thread; the entry just fires into a closed channel.
pub struct Sleep {
    rx: Option<oneshot::Receiver<()>>,
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let Some(rx) = self.rx.as_mut() else {
            return Poll::Ready(());
        };
        // An error means the timer stopped and dropped the sender: treat it as fired so that
        // nothing waits forever during shutdown.
        match Pin::new(rx).poll(cx) {
            Poll::Ready(_) => {
                self.rx = None;
                Poll::Ready(())
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

fn run(shared: &Shared) {
    precise_wakeups();
    let mut due: Vec<oneshot::Sender<()>> = Vec::new();
    let mut last_fired: Option<Instant> = None;
    let mut st = shared.lock();
    loop {
        if st.stopped {
            // Dropping the senders completes every pending Sleep.
            st.heap.clear();
            return;
        }
        let now = Instant::now();
        while st.heap.peek().is_some_and(|Reverse(e)| e.deadline <= now) {
            if let Some(Reverse(e)) = st.heap.pop() {
                due.push(e.tx);
            }
        }
        if !due.is_empty() {
            last_fired = Some(now);
            // Waking tasks touches the runtime's queues; keep that outside the lock so that
            // arming a deadline never waits behind it.
            drop(st);
            for tx in due.drain(..) {
                let _ = tx.send(());
            }
            st = shared.lock();
            continue;
        }
        let Some(next) = st.heap.peek().map(|Reverse(e)| e.deadline) else {
            st = shared.cv.wait(st).unwrap_or_else(PoisonError::into_inner);
            continue;
        };
        let remaining = next.saturating_duration_since(now);
        let spin = if last_fired.is_some_and(|t| now - t < shared.spin * SPIN_DUTY_RATIO) {
            Duration::ZERO
        } else {
            shared.spin
        };
        if remaining > spin {
            st = match shared.cv.wait_timeout(st, remaining - spin) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        } else {
            // Cleared under the lock: any deadline armed after this point sets it again and
            // cuts the spin short, and any armed before it is already in the heap we planned
            // from.
            shared.rearm.store(false, AtomicOrdering::Relaxed);
            drop(st);
            while Instant::now() < next && !shared.rearm.load(AtomicOrdering::Acquire) {
                std::hint::spin_loop();
            }
            st = shared.lock();
        }
    }
}

/// Asks the kernel to wake this thread at its deadline instead of up to 50 µs after it
/// (the default timer slack, which lets the kernel merge wake-ups). With it a blocked wait
/// ends within a few microseconds on an idle core, so the thread needs to spin far less.
fn precise_wakeups() {
    // SAFETY: PR_SET_TIMERSLACK takes one integer argument and only changes this thread's
    // timer slack; it reads and writes no memory of ours.
    let rc = unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong) };
    if rc != 0 {
        tracing::debug!(
            error = %std::io::Error::last_os_error(),
            "timer slack unchanged; wake-ups may be up to 50 µs late"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime")
    }

    /// Lateness of 40 sequential sleeps to deadlines that are not whole milliseconds
    /// (which tokio's wheel would round up). Panics if any wakes early.
    fn sequential_lateness(handle: &TimerHandle) -> Vec<Duration> {
        let handle = handle.clone();
        runtime().block_on(async move {
            let start = Instant::now();
            let mut late = Vec::new();
            for k in 1..=40u32 {
                let deadline = start + Duration::from_micros(2_250 * u64::from(k));
                handle.sleep_until(deadline).await;
                let now = Instant::now();
                assert!(now >= deadline, "woke {:?} early", deadline - now);
                late.push(now - deadline);
            }
            late
        })
    }

    /// Lateness of 20 concurrent tasks, armed latest-first so that each new deadline is
    /// the earliest and forces the timer thread to re-plan. Panics if any wakes early.
    fn concurrent_lateness(handle: &TimerHandle) -> Vec<Duration> {
        let handle = handle.clone();
        runtime().block_on(async move {
            let start = Instant::now();
            let mut tasks = Vec::new();
            for k in (1..=20u64).rev() {
                let h = handle.clone();
                let deadline = start + Duration::from_micros(1_000 + 300 * k);
                tasks.push(tokio::spawn(async move {
                    h.sleep_until(deadline).await;
                    let now = Instant::now();
                    assert!(now >= deadline, "woke {:?} early", deadline - now);
                    now - deadline
                }));
            }
            let mut late = Vec::new();
            for t in tasks {
                late.push(t.await.expect("task"));
            }
            late
        })
    }

    fn median(mut v: Vec<Duration>) -> Duration {
        v.sort();
        v[v.len() / 2]
    }

    /// Tokio's 1 ms wheel shows ~1 ms of lateness on such deadlines; ours stays far below. Up to
    /// three tries, since a shared machine can preempt any thread for milliseconds.
    fn assert_precise(measure: fn(&TimerHandle) -> Vec<Duration>) {
        let timer = PreciseTimer::start(DEFAULT_SPIN).expect("timer");
        let mut medians = Vec::new();
        for _ in 0..3 {
            let m = median(measure(&timer.handle()));
            if m < Duration::from_micros(300) {
                return;
            }
            medians.push(m);
        }
        panic!("median lateness too high in every try: {medians:?}");
    }

    #[test]
    fn never_early_and_rarely_late() {
        assert_precise(sequential_lateness);
    }

    #[test]
    fn concurrent_sleepers_all_fire_on_time() {
        assert_precise(concurrent_lateness);
    }

    #[test]
    fn stopping_completes_pending_sleeps() {
        let timer = PreciseTimer::start(DEFAULT_SPIN).expect("timer");
        let sleep = timer
            .handle()
            .sleep_until(Instant::now() + Duration::from_secs(3600));
        drop(timer);
        let started = Instant::now();
        runtime().block_on(sleep);
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn past_deadline_is_ready_at_once() {
        let timer = PreciseTimer::start(Duration::ZERO).expect("timer");
        let past = Instant::now();
        let started = Instant::now();
        runtime().block_on(timer.handle().sleep_until(past));
        assert!(started.elapsed() < Duration::from_millis(100));
    }
}

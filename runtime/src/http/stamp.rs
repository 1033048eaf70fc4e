//! When a read completed, as the worker can best tell.
//!
//! On plain TCP the kernel tells: every socket asks for receive timestamps
//! (`SO_TIMESTAMPNS`), and a read takes the stamp of the last segment it returned, the
//! moment the bytes reached this host. The worker's own wake-up (tens of microseconds
//! after an idle wait) and its turn among other tasks stay out of the figure. The kernel
//! gives one stamp per read, though: events that all arrived before the worker read
//! them come out of one read and share the last one's arrival (as AIPerf's events of
//! one read share its time), so a worker that falls behind by more than an event's gap
//! stamps the earlier ones late; the client health's events per read shows how often.
//!
//! Without a kernel stamp (TLS, whose reads go through rustls; a kernel that does not
//! stamp; the first segments after start-up, before the kernel switched stamping on),
//! the worker's clock decides. A worker sleeps in the kernel until completions arrive,
//! then reaps all that are ready at once and runs their tasks one after another. Reading
//! the clock as each task gets its turn would add the time spent on the tasks before it:
//! at 256 streams whose tokens arrive together, the last of a burst was stamped half a
//! millisecond late. Every data completion reaped together was complete when the worker
//! woke, so they all share the clock reading taken by the first of them.
//!
//! Only completions that had to wait share it. A read that finds its bytes at once (the
//! epoll driver reads inside the task's poll; TLS may hold decrypted bytes) may have got
//! them after the shared reading, so it reads the clock itself. Without io_uring every
//! read goes to the clock: epoll only reports readiness, and the bytes are read later,
//! while the task runs.

use std::cell::Cell;
use std::future::Future;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, RawFd};
use std::time::Instant;

use monoio::net::TcpStream;

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

/// Asks the kernel to stamp what `fd` receives; false where it refuses.
pub(crate) fn enable_rx_stamps(fd: RawFd) -> bool {
    let on: libc::c_int = 1;
    // SAFETY: the pointer and length describe `on`, a live c_int, as SO_TIMESTAMPNS
    // expects; the caller owns the open socket `fd`.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    rc == 0
}

/// One read from a socket with receive stamps on: waits until it is readable, then
/// `recvmsg` into `buf` (from its start, as a runtime read fills it) with the kernel's
/// stamp, in run time and never before `floor` (the caller's request started going out
/// then) or after now.
pub(crate) async fn read_kernel_stamped(
    s: &TcpStream,
    mut buf: Vec<u8>,
    clock: &RunClock,
    floor: Nanos,
) -> ((io::Result<usize>, Vec<u8>), Nanos) {
    loop {
        if let Err(e) = s.readable(false).await {
            return ((Err(e), buf), clock.now());
        }
        buf.clear();
        if buf.capacity() == 0 {
            // An empty buffer would read 0 bytes, which means end of stream.
            buf.reserve(super::client::READ_BUF_SIZE);
        }
        match recv_stamped(s.as_raw_fd(), buf.spare_capacity_mut()) {
            Ok((n, stamp)) => {
                // SAFETY: recvmsg initialised the first n bytes of the spare capacity.
                unsafe { buf.set_len(n) };
                let now = clock.now();
                let at = stamp.map_or(now, |wall| {
                    wall.saturating_sub(clock.wall_ns(0))
                        .clamp(floor.min(now), now)
                });
                return ((Ok(n), buf), at);
            }
            // Readiness can be stale (epoll); wait again.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => return ((Err(e), buf), clock.now()),
        }
    }
}

/// Space for one `SCM_TIMESTAMPNS` control message, aligned as `cmsghdr` requires.
#[repr(C, align(8))]
struct ControlBuf([u8; 64]);

/// One non-blocking `recvmsg` into `buf`: the bytes read and the kernel's receive time
/// (wall-clock nanoseconds), when it gave one.
fn recv_stamped(fd: RawFd, buf: &mut [MaybeUninit<u8>]) -> io::Result<(usize, Option<u64>)> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut control = ControlBuf([0; 64]);
    // SAFETY: msghdr is plain data; every field the kernel reads is set below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.0.as_mut_ptr().cast();
    msg.msg_controllen = control.0.len() as _;
    // SAFETY: `msg` points at `iov` (which describes `buf`, writable for its length) and
    // at `control`, both alive until the call returns; the kernel writes only within them.
    let n = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_DONTWAIT) };
    let n = usize::try_from(n).map_err(|_| io::Error::last_os_error())?;
    let mut stamp = None;
    // SAFETY: the CMSG_* helpers walk the control buffer the kernel just filled, bounded
    // by the msg_controllen it set; the timespec is read unaligned from inside it.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_TIMESTAMPNS
            {
                let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast());
                if let (Ok(secs), Ok(nanos)) = (u64::try_from(ts.tv_sec), u64::try_from(ts.tv_nsec))
                {
                    stamp = Some(secs.saturating_mul(1_000_000_000).saturating_add(nanos));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    Ok((n, stamp))
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

    /// The stamp of a kernel-stamped read is when the bytes arrived, not when the worker
    /// got round to reading them: here the worker is blocked for 30 ms after they came.
    #[test]
    fn kernel_stamped_read_reports_arrival_not_the_late_read() {
        use std::io::Write as _;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let clock = RunClock::new();
        let mut rt = monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
            .enable_timer()
            .build()
            .expect("runtime");
        let server = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().expect("accept");
            let mut sent = Vec::new();
            for chunk in [&b"first"[..], b"second"] {
                // The kernel switches stamping on through a work queue: give it time.
                std::thread::sleep(Duration::from_millis(60));
                sent.push(clock.now());
                conn.write_all(chunk).expect("write");
            }
            sent
        });
        let (got, stamped) = rt.block_on(async move {
            let tcp = TcpStream::connect_addr(addr).await.expect("connect");
            let stamped = enable_rx_stamps(tcp.as_raw_fd());
            let mut got = Vec::new();
            let mut buf = Vec::with_capacity(64);
            for _ in 0..2 {
                let ((n, back), at) = read_kernel_stamped(&tcp, buf, &clock, 0).await;
                let n = n.expect("read");
                got.push((back[..n].to_vec(), at));
                // Busy elsewhere: the next chunk arrives while this thread sleeps.
                std::thread::sleep(Duration::from_millis(90));
                buf = back;
            }
            (got, stamped)
        });
        let sent = server.join().expect("server");
        assert_eq!(got[0].0, b"first");
        assert_eq!(got[1].0, b"second");
        assert!(stamped, "SO_TIMESTAMPNS refused");
        // The second chunk came ~30 ms before the read; its stamp is its arrival.
        let (arrived, read_at) = (sent[1], got[1].1);
        assert!(
            read_at >= arrived && read_at < arrived + 5_000_000,
            "sent at {arrived}, stamped {read_at}"
        );
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

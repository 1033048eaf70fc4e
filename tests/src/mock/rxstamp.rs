//! Request arrival times from the kernel's receive timestamps.
//!
//! The mock anchors every deadline of a response (TTFT, each inter-token gap) to the
//! moment the request arrived. Reading the clock when hyper hands over the parsed request
//! would count the mock's own delays as the client's: waking a parked worker thread costs
//! 50-150 µs on a virtual machine, and a burst of 256 requests queues behind the parsing
//! of the ones before it for milliseconds. The kernel stamps each segment as it is
//! received (`SO_TIMESTAMPNS`); the stamp of the read that completed a request's head is
//! when the request really arrived, whatever the mock was doing at that moment.

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;

/// The receive time of the latest bytes read from one connection.
#[derive(Debug)]
pub(crate) struct RxClock {
    base: Instant,
    /// Nanoseconds after `base`, plus one so that zero means "no stamp yet".
    latest: AtomicU64,
}

impl RxClock {
    /// When the latest read's bytes reached the socket, or `None` before the first
    /// stamped read.
    pub(crate) fn latest(&self) -> Option<Instant> {
        match self.latest.load(Ordering::Relaxed) {
            0 => None,
            n => Some(self.base + Duration::from_nanos(n - 1)),
        }
    }

    fn record(&self, at: Instant) {
        let ns = at.saturating_duration_since(self.base).as_nanos();
        let ns = u64::try_from(ns).unwrap_or(u64::MAX - 1);
        self.latest.store(ns + 1, Ordering::Relaxed);
    }
}

/// A TCP stream whose reads go through `recvmsg` to collect the kernel's receive stamp.
pub(crate) struct Stamped {
    inner: TcpStream,
    clock: Arc<RxClock>,
}

impl Stamped {
    /// Turns on receive timestamps for `stream`; hands the stream back unchanged when the
    /// kernel refuses (the caller then reads the clock itself).
    pub(crate) fn new(stream: TcpStream) -> Result<Self, TcpStream> {
        if let Err(e) = enable(&stream) {
            tracing::debug!(error = %e, "no receive timestamps; arrival is read from the clock");
            return Err(stream);
        }
        // A request that came with the handshake arrived before this call; the base lies a
        // second back so that its stamp is not clamped to now.
        let now = Instant::now();
        let clock = Arc::new(RxClock {
            base: now.checked_sub(Duration::from_secs(1)).unwrap_or(now),
            latest: AtomicU64::new(0),
        });
        Ok(Stamped {
            inner: stream,
            clock,
        })
    }

    pub(crate) fn clock(&self) -> Arc<RxClock> {
        Arc::clone(&self.clock)
    }
}

/// Asks the kernel to stamp what `socket` receives. On a listener it is inherited by every
/// accepted connection, and it makes the kernel start stamping at start-up: the switch is
/// thrown through a work queue, and segments that arrive before that carry no stamp.
pub(crate) fn enable(socket: &impl AsRawFd) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: the pointer and length describe `on`, a live c_int, as SO_TIMESTAMPNS
    // expects; the descriptor stays open for the duration of the call.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Space for one `SCM_TIMESTAMPNS` control message, aligned as `cmsghdr` requires.
#[repr(C, align(8))]
struct ControlBuf([u8; 64]);

/// One `recvmsg` into `buf`; returns the bytes read and the kernel's receive time.
fn recv_stamped(fd: i32, buf: &mut [MaybeUninit<u8>]) -> io::Result<(usize, Option<SystemTime>)> {
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
    // SAFETY: `msg` points at `iov` (which describes `buf`, writable for its length) and at
    // `control`, both alive until the call returns; the kernel writes only within them.
    let n = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_DONTWAIT) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut stamp = None;
    // SAFETY: the CMSG_* helpers walk the control buffer the kernel just filled, bounded by
    // the msg_controllen it set; the timespec is read unaligned from inside that buffer.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_TIMESTAMPNS
            {
                let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast());
                let (secs, nanos) = (u64::try_from(ts.tv_sec), u32::try_from(ts.tv_nsec));
                if let (Ok(secs), Ok(nanos)) = (secs, nanos) {
                    stamp = Some(UNIX_EPOCH + Duration::new(secs, nanos));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    // recvmsg never returns more than it was given room for.
    Ok((n as usize, stamp))
}

/// The monotonic instant of a wall-clock receive stamp taken moments ago.
fn to_instant(stamp: SystemTime) -> Instant {
    let now = Instant::now();
    // A stamp from the future (the wall clock stepped back) is taken as now.
    let age = SystemTime::now().duration_since(stamp).unwrap_or_default();
    now.checked_sub(age).unwrap_or(now)
}

impl AsyncRead for Stamped {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            ready!(this.inner.poll_read_ready(cx))?;
            let fd = this.inner.as_raw_fd();
            // SAFETY: recv_stamped only writes into the slice, and we mark as initialised
            // exactly the bytes it reports written.
            let unfilled = unsafe { buf.unfilled_mut() };
            match this
                .inner
                .try_io(Interest::READABLE, || recv_stamped(fd, unfilled))
            {
                Ok((n, stamp)) => {
                    if let Some(stamp) = stamp.filter(|_| n > 0) {
                        this.clock.record(to_instant(stamp));
                    }
                    // SAFETY: the kernel initialised the first n bytes of `unfilled`.
                    unsafe { buf.assume_init(n) };
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for Stamped {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// The stamp is when the bytes arrived, not when they were read: a read that starts
    /// 30 ms after the write still reports an arrival about 30 ms earlier.
    #[tokio::test]
    async fn stamps_arrival_not_read_time() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut client = TcpStream::connect(addr).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let mut server = Stamped::new(server).expect("SO_TIMESTAMPNS on loopback");
        let clock = server.clock();
        assert!(clock.latest().is_none());
        // The kernel turns stamping on through a work queue, moments after the first socket
        // asks for it; the server asks on its listener at start-up for the same reason.
        tokio::time::sleep(Duration::from_millis(20)).await;

        let sent = Instant::now();
        client.write_all(b"hello").await.unwrap();
        tokio::time::sleep(Duration::from_millis(30)).await;
        let mut buf = [0u8; 16];
        let n = server.read(&mut buf).await.unwrap();
        let read_at = Instant::now();
        assert_eq!(&buf[..n], b"hello");

        let arrival = clock.latest().expect("a stamped read");
        let after_send = arrival.saturating_duration_since(sent);
        assert!(
            after_send < Duration::from_millis(5),
            "arrival {after_send:?} after send"
        );
        assert!(read_at - arrival >= Duration::from_millis(25));
    }
}

//! `#[dispatch]` across crates: the protocol lives in `aiperf_runtime`, the enum here.
//! Sync, generic and async methods must all reach the selected variant.

use aiperf_runtime::protocols::TransportProtocol;
use aiperf_runtime::protocols::{ArrivalPatternProtocol, NextCredit, TimingStrategyProtocol};
use aiperf_runtime::record::{RequestRecord, RunClock};

struct Every(u64, f64);
struct Never;

impl ArrivalPatternProtocol for Every {
    fn next_interval_ns(&mut self) -> Option<u64> {
        Some(self.0)
    }
    fn set_rate(&mut self, rate: f64) {
        self.1 = rate;
    }
    fn rate(&self) -> f64 {
        self.1
    }
}

impl ArrivalPatternProtocol for Never {
    fn next_interval_ns(&mut self) -> Option<u64> {
        None
    }
    fn set_rate(&mut self, _: f64) {}
    fn rate(&self) -> f64 {
        0.0
    }
}

/// Two arrival patterns behind one enum.
#[aiperf_macros::dispatch(aiperf_runtime::protocols::ArrivalPatternProtocol)]
enum Arrivals {
    Every(Every),
    Never(Never),
}

struct AddInterval(u64);

impl TimingStrategyProtocol for AddInterval {
    fn next_credit<A: ArrivalPatternProtocol>(&mut self, arrivals: &mut A, now: u64) -> NextCredit {
        match arrivals.next_interval_ns() {
            Some(i) => {
                self.0 += i;
                NextCredit::At(now + self.0)
            }
            None => NextCredit::WhenSlotFree,
        }
    }
}

#[aiperf_macros::dispatch(aiperf_runtime::protocols::TimingStrategyProtocol)]
enum Timing {
    Add(AddInterval),
}

struct Recorder(&'static str);

impl TransportProtocol for Recorder {
    fn prepare(&self, path: &str, _: &[(String, String)], body: &[u8]) -> Vec<u8> {
        [self.0.as_bytes(), path.as_bytes(), body].concat()
    }
    async fn send(
        &self,
        request: &[u8],
        url_index: usize,
        _: bool,
        clock: &RunClock,
        record: &mut RequestRecord,
    ) {
        record.start_ns = clock.now();
        record.x_request_id = String::from_utf8_lossy(request).into_owned();
        record.x_correlation_id = url_index.to_string();
    }
}

#[aiperf_macros::dispatch(aiperf_runtime::protocols::TransportProtocol)]
enum Transports {
    A(Recorder),
}

#[test]
fn sync_methods_reach_the_selected_variant() {
    let mut every: Arrivals = Every(5, 1.0).into();
    assert_eq!(every.next_interval_ns(), Some(5));
    every.set_rate(3.0);
    assert_eq!(every.rate(), 3.0);
    let mut never: Arrivals = Never.into();
    assert_eq!(never.next_interval_ns(), None);
    assert_eq!(never.rate(), 0.0);
}

#[test]
fn generic_methods_are_forwarded() {
    let mut timing = Timing::Add(AddInterval(0));
    let mut arrivals = Arrivals::Every(Every(10, 1.0));
    assert_eq!(timing.next_credit(&mut arrivals, 100), NextCredit::At(110));
    assert_eq!(timing.next_credit(&mut arrivals, 100), NextCredit::At(120));
    let mut never = Arrivals::Never(Never);
    assert_eq!(timing.next_credit(&mut never, 0), NextCredit::WhenSlotFree);
}

#[test]
fn async_methods_are_awaited_through_the_enum() {
    let transport = Transports::A(Recorder("x"));
    let request = transport.prepare("/p", &[], b"{}");
    assert_eq!(request, b"x/p{}");
    let clock = RunClock::new();
    let mut record = RequestRecord::default();
    let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .build()
        .expect("runtime");
    rt.block_on(transport.send(&request, 2, false, &clock, &mut record));
    assert_eq!(record.x_request_id, "x/p{}");
    assert_eq!(record.x_correlation_id, "2");
}

/// A category that links nothing still yields a type implementing its protocol.
#[aiperf_macros::dispatch(aiperf_runtime::protocols::TransportProtocol)]
enum NoTransport {}

#[test]
fn an_empty_category_compiles_to_an_uninhabited_enum() {
    fn implements<T: TransportProtocol>() {}
    implements::<NoTransport>();
    assert_eq!(std::mem::size_of::<NoTransport>(), 0);
}

//! The client-health verdict: was the client itself the bottleneck?
//!
//! A benchmark client that falls behind its own schedule or saturates its cores reports
//! its own delays as the server's. Every run says how late the client was, how busy its
//! workers were, and how many response events arrived per read, and it says so plainly
//! when those figures mean the measurements are suspect.

use serde_json::json;

use crate::engine::pipeline::BacklogReport;
use crate::results::Stats;

/// Scheduling lateness p99 above which the client was behind its schedule.
pub(crate) const LATENESS_P99_LIMIT_MS: f64 = 1.0;
/// Worker CPU share above which a worker core was saturated.
pub(crate) const BUSY_LIMIT: f64 = 0.9;

/// Where the client itself held requests back: a record thread behind the workers, and
/// requests whose bytes were not prepared yet when due.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct ClientWaits {
    pub backlog: BacklogReport,
    pub unprepared: u64,
    pub unprepared_s: f64,
    /// Arrivals of the schedule skipped because `--concurrency` (or
    /// `--prefill-concurrency`) slots were all busy: the user's cap, not the client's
    /// delay, so a note rather than a reason.
    pub skipped_arrivals: u64,
    pub concurrency: Option<u32>,
    pub prefill_concurrency: Option<u32>,
    /// CPU and wall time of the record thread while requests were in flight (spooling
    /// records, or processing them when the spool is off).
    pub record_thread: WorkerReport,
    /// Seconds the record thread spent on the spooled records after the run (parsing,
    /// metrics, the records file).
    pub records_after_run_s: f64,
    /// Connections that failed because the client was out of file descriptors, and the
    /// process's open-file limit.
    pub out_of_descriptors: u64,
    pub open_file_limit: Option<u64>,
    /// Requests the stop kept from being sent, and the longest any had waited past its
    /// scheduled time: a backlog the lateness of the requests sent does not show.
    pub unsent: u64,
    pub unsent_wait_max_s: f64,
    /// Requests of the run (the profiling phase's records), the measure of the counts
    /// above.
    pub requests: u64,
    /// The lateness given leaves out this many first requests (a closed loop's first
    /// wave, all due at the start); 0 when it covers every request.
    pub lateness_after: u64,
}

/// CPU and wall time of one worker thread.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct WorkerReport {
    pub cpu_s: f64,
    pub wall_s: f64,
}

impl WorkerReport {
    pub fn busy(&self) -> f64 {
        if self.wall_s > 0.0 {
            (self.cpu_s / self.wall_s).min(1.0)
        } else {
            0.0
        }
    }
}

/// CPU seconds (user + system) the calling thread has used.
pub(crate) fn thread_cpu_seconds() -> f64 {
    // SAFETY: `rusage` is plain data that getrusage fills; no pointer is retained.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: the pointer is valid for the call; RUSAGE_THREAD is Linux's per-thread usage.
    if unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) } != 0 {
        return 0.0;
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// The verdict as JSON (for `profile_export_aiperf.json`) and as console text.
pub(crate) fn assess(
    lateness_ms: Option<&Stats>,
    events: u64,
    reads: u64,
    workers: &[WorkerReport],
    driver: &str,
    waits: &ClientWaits,
) -> (serde_json::Value, String) {
    let backlog = &waits.backlog;
    let after = match waits.lateness_after {
        0 => String::new(),
        n => format!(" after the first {n} requests"),
    };
    let mut reasons = Vec::new();
    // A few requests of the first wave may find their bytes still being prepared at the
    // start; a share of the run's requests is what says the preparation held it back.
    if waits.unprepared > 0 && waits.unprepared * 100 > waits.requests {
        let waited = match waits.unprepared {
            1 => "1 request waited for its bytes".to_owned(),
            n => format!("{n} requests waited for their bytes"),
        };
        reasons.push(format!(
            "{waited} to be prepared, {:.1} ms in all",
            waits.unprepared_s * 1e3
        ));
    }
    if backlog.waits > 0 {
        reasons.push(format!(
            "the record thread fell behind: workers held back new requests {} times, {:.1} ms \
             in all (backlog peak {} records, {:.1} MiB)",
            backlog.waits,
            backlog.waited_s * 1e3,
            backlog.peak_records,
            backlog.peak_bytes as f64 / f64::from(1u32 << 20)
        ));
    }
    if let Some(l) = lateness_ms {
        if l.p99 > LATENESS_P99_LIMIT_MS {
            reasons.push(format!(
                "scheduling lateness{after} p99 {:.3} ms exceeds {LATENESS_P99_LIMIT_MS} ms: \
                 requests left later than the schedule asked",
                l.p99
            ));
        }
    }
    for (i, w) in workers.iter().enumerate() {
        if w.busy() > BUSY_LIMIT {
            reasons.push(format!(
                "worker {i} was {:.0}% busy (over {:.0}%): its core was saturated",
                w.busy() * 100.0,
                BUSY_LIMIT * 100.0
            ));
        }
    }
    let records = &waits.record_thread;
    if records.busy() > BUSY_LIMIT {
        reasons.push(format!(
            "the record thread was {:.0}% busy (over {:.0}%): taking in records \
             kept a core to itself",
            records.busy() * 100.0,
            BUSY_LIMIT * 100.0
        ));
    }
    if waits.out_of_descriptors > 0 {
        let limit = waits
            .open_file_limit
            .map_or_else(String::new, |l| format!(" (its open-file limit is {l})"));
        let bound = match waits.concurrency {
            Some(c) => format!("lower --concurrency ({c}) below it"),
            None => "bound the requests in flight with --concurrency".to_owned(),
        };
        reasons.push(format!(
            "{} connections could not be opened because the client ran out of file \
             descriptors{limit}: those requests failed here, not at the server; raise the \
             limit (`ulimit -n`) or {bound}",
            waits.out_of_descriptors
        ));
    }
    if waits.unsent > 0 && waits.unsent_wait_max_s * 1e3 > LATENESS_P99_LIMIT_MS {
        let waiting = match waits.unsent {
            1 => "1 request was".to_owned(),
            n => format!("{n} requests were"),
        };
        reasons.push(format!(
            "{waiting} still waiting to be sent when the run stopped, up to {:.1} ms past \
             the scheduled time: the client was behind its schedule (the lateness figures \
             count only the requests sent)",
            waits.unsent_wait_max_s * 1e3
        ));
    }
    let events_per_read = if reads > 0 {
        events as f64 / reads as f64
    } else {
        0.0
    };
    let bottleneck = !reasons.is_empty();
    let busy: Vec<f64> = workers
        .iter()
        .map(|w| (w.busy() * 1e4).round() / 1e4)
        .collect();
    let value = json!({
        "client_bottleneck": bottleneck,
        "reasons": reasons,
        "scheduling_lateness_ms": lateness_ms.map(|l| json!({
            "p50": l.p50, "p90": l.p90, "p99": l.p99, "max": l.max,
        })),
        "events_per_read": events_per_read,
        "response_events": events,
        "reads": reads,
        "worker_busy": busy,
        "worker_cpu_seconds": workers.iter().map(|w| w.cpu_s).collect::<Vec<_>>(),
        "workers": workers.len(),
        "io_driver": driver,
        "record_backlog": {
            "peak_records": backlog.peak_records,
            "peak_bytes": backlog.peak_bytes,
            "held_back": backlog.waits,
            "held_back_ms": backlog.waited_s * 1e3,
        },
        "unprepared_requests": waits.unprepared,
        "unprepared_wait_ms": waits.unprepared_s * 1e3,
        "skipped_arrivals": waits.skipped_arrivals,
        "record_thread_busy": (records.busy() * 1e4).round() / 1e4,
        "record_thread_cpu_seconds": records.cpu_s,
        "records_processed_after_run_s": waits.records_after_run_s,
        "out_of_file_descriptors": waits.out_of_descriptors,
        "scheduling_lateness_after_first_requests": waits.lateness_after,
        "unsent_at_stop": waits.unsent,
        "unsent_wait_max_ms": waits.unsent_wait_max_s * 1e3,
    });

    let lateness = match lateness_ms {
        Some(l) => format!(
            "scheduling lateness{after} p50 {:.3} ms, p99 {:.3} ms",
            l.p50, l.p99
        ),
        None => "scheduling lateness n/a".to_owned(),
    };
    let busy_text: Vec<String> = busy.iter().map(|b| format!("{:.0}%", b * 100.0)).collect();
    let count = match workers.len() {
        1 => "1 worker".to_owned(),
        n => format!("{n} workers"),
    };
    // A large body takes many reads for its one event: "0.00 events per read" said
    // nothing, the reads per event do.
    let reads_text = if events_per_read > 0.0 && events_per_read < 0.995 {
        format!("{:.1} reads per event", 1.0 / events_per_read)
    } else {
        format!("{events_per_read:.2} events per read")
    };
    let summary = format!(
        "{lateness}; {reads_text}; workers busy {} ({driver}, {count}); record thread busy \
         {:.0}%",
        busy_text.join(", "),
        records.busy() * 100.0
    );
    let mut text = if bottleneck {
        let mut t = format!(
            "Client health: CLIENT-BOUND: these figures include client delay\n  {summary}\n"
        );
        for r in value["reasons"].as_array().into_iter().flatten() {
            t.push_str(&format!("  - {}\n", r.as_str().unwrap_or_default()));
        }
        t
    } else {
        format!("Client health: ok ({summary})\n")
    };
    if waits.skipped_arrivals > 0 {
        // (phrase, whether it is one slot)
        let slots = |n: Option<u32>, flag: &str| match n {
            Some(1) => (format!("the one {flag} slot"), true),
            Some(n) => (format!("all {n} {flag} slots"), false),
            None => (format!("the {flag} slots"), false),
        };
        let concurrency = waits.concurrency.map(|c| slots(Some(c), "--concurrency"));
        let prefill = waits
            .prefill_concurrency
            .map(|p| slots(Some(p), "--prefill-concurrency"));
        let (cause, one) = match (concurrency, prefill) {
            (Some((c, one_c)), Some((p, one_p))) => (format!("{c} or {p}"), one_c && one_p),
            (Some(only), None) | (None, Some(only)) => only,
            (None, None) => slots(None, "--concurrency"),
        };
        let n = waits.skipped_arrivals;
        let arrivals = if n == 1 {
            "arrival was"
        } else {
            "arrivals were"
        };
        let were = if one { "was" } else { "were" };
        text.push_str(&format!(
            "  Note: {n} scheduled {arrivals} skipped because {cause} {were} busy (as AIPerf \
             does): the rate sent was below the rate asked.\n"
        ));
    }
    (value, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lateness(p50: f64, p99: f64) -> Stats {
        Stats {
            avg: p50,
            min: 0.0,
            max: p99,
            sum: 0.0,
            std: 0.0,
            count: 10,
            p1: 0.0,
            p5: 0.0,
            p10: 0.0,
            p25: 0.0,
            p50,
            p75: p50,
            p90: p99,
            p95: p99,
            p99,
        }
    }

    #[test]
    fn a_healthy_run_says_ok() {
        let w = [WorkerReport {
            cpu_s: 1.0,
            wall_s: 10.0,
        }];
        let (json, text) = assess(
            Some(&lateness(0.01, 0.2)),
            300,
            100,
            &w,
            "io_uring",
            &ClientWaits {
                record_thread: WorkerReport {
                    cpu_s: 2.5,
                    wall_s: 10.0,
                },
                records_after_run_s: 1.5,
                ..ClientWaits::default()
            },
        );
        assert_eq!(json["client_bottleneck"], false);
        assert_eq!(json["events_per_read"], 3.0);
        assert_eq!(json["record_thread_busy"], 0.25);
        assert_eq!(json["records_processed_after_run_s"], 1.5);
        assert_eq!(
            text,
            "Client health: ok (scheduling lateness p50 0.010 ms, p99 0.200 ms; 3.00 events per \
             read; workers busy 10% (io_uring, 1 worker); record thread busy 25%)\n"
        );
    }

    /// Large bodies take several reads each: the text gives the reads per event.
    #[test]
    fn a_body_of_many_reads_gives_reads_per_event() {
        let w = [WorkerReport {
            cpu_s: 1.0,
            wall_s: 10.0,
        }];
        let (json, text) = assess(
            Some(&lateness(0.01, 0.2)),
            10,
            2_500,
            &w,
            "io_uring",
            &ClientWaits::default(),
        );
        assert_eq!(json["events_per_read"], 0.004);
        assert!(text.contains("; 250.0 reads per event; "), "{text}");
    }

    /// Requests that failed for want of a file descriptor failed in the client: the run
    /// is client-bound, and says what to do.
    #[test]
    fn running_out_of_file_descriptors_is_the_clients_doing() {
        let w = [WorkerReport {
            cpu_s: 1.0,
            wall_s: 10.0,
        }];
        let waits = ClientWaits {
            out_of_descriptors: 1234,
            open_file_limit: Some(1024),
            ..ClientWaits::default()
        };
        let (json, text) = assess(Some(&lateness(0.01, 0.2)), 10, 10, &w, "io_uring", &waits);
        assert_eq!(json["client_bottleneck"], true);
        assert_eq!(json["out_of_file_descriptors"], 1234);
        assert!(
            text.ends_with(
                "  - 1234 connections could not be opened because the client ran out of \
                 file descriptors (its open-file limit is 1024): those requests failed here, \
                 not at the server; raise the limit (`ulimit -n`) or bound the requests in \
                 flight with --concurrency\n"
            ),
            "{text}"
        );
    }

    /// With --concurrency given, the advice is to lower it, not to give it.
    #[test]
    fn out_of_descriptors_under_a_concurrency_says_to_lower_it() {
        let w = [WorkerReport::default()];
        let waits = ClientWaits {
            out_of_descriptors: 7,
            open_file_limit: Some(64),
            concurrency: Some(500),
            ..ClientWaits::default()
        };
        let (_, text) = assess(Some(&lateness(0.01, 0.2)), 10, 10, &w, "io_uring", &waits);
        assert!(
            text.ends_with("(`ulimit -n`) or lower --concurrency (500) below it\n"),
            "{text}"
        );
    }

    /// Requests still waiting to go when the run stopped show how far behind the client
    /// was, which the lateness of the requests it did send does not; a wait within the
    /// lateness limit (a connection being opened at the stop) is no verdict.
    #[test]
    fn requests_left_waiting_at_the_stop_make_the_client_the_bottleneck() {
        let w = [WorkerReport::default()];
        let behind = ClientWaits {
            unsent: 84_745,
            unsent_wait_max_s: 0.4567,
            ..ClientWaits::default()
        };
        let (json, text) = assess(Some(&lateness(0.01, 0.2)), 10, 10, &w, "io_uring", &behind);
        assert_eq!(json["client_bottleneck"], true);
        assert_eq!(json["unsent_at_stop"], 84_745);
        assert!(
            text.ends_with(
                "  - 84745 requests were still waiting to be sent when the run stopped, up to \
                 456.7 ms past the scheduled time: the client was behind its schedule (the \
                 lateness figures count only the requests sent)\n"
            ),
            "{text}"
        );
        let connecting = ClientWaits {
            unsent: 64,
            unsent_wait_max_s: 0.0004,
            ..ClientWaits::default()
        };
        let (json, _) = assess(
            Some(&lateness(0.01, 0.2)),
            10,
            10,
            &w,
            "io_uring",
            &connecting,
        );
        assert_eq!(json["client_bottleneck"], false);
        assert_eq!(json["unsent_at_stop"], 64);
    }

    /// A closed loop's lateness is given, and judged, after its first wave; the text says
    /// so. A few requests waiting for their bytes is no verdict either.
    #[test]
    fn lateness_after_the_first_wave_says_so() {
        let w = [WorkerReport::default()];
        // Two of the first wave waited for their bytes: no verdict on 5,120 requests.
        let waits = ClientWaits {
            lateness_after: 256,
            unprepared: 2,
            unprepared_s: 0.0108,
            requests: 5120,
            ..ClientWaits::default()
        };
        let (json, text) = assess(Some(&lateness(0.01, 0.2)), 10, 10, &w, "io_uring", &waits);
        assert_eq!(json["client_bottleneck"], false);
        assert_eq!(json["scheduling_lateness_after_first_requests"], 256);
        assert!(
            text.contains("scheduling lateness after the first 256 requests p50 0.010 ms"),
            "{text}"
        );
    }

    #[test]
    fn late_or_saturated_clients_are_called_out() {
        let w = [
            WorkerReport {
                cpu_s: 9.5,
                wall_s: 10.0,
            },
            WorkerReport {
                cpu_s: 1.0,
                wall_s: 10.0,
            },
        ];
        let waits = ClientWaits {
            backlog: BacklogReport {
                peak_records: 5000,
                peak_bytes: 9 << 20,
                waits: 3,
                waited_s: 0.0125,
            },
            unprepared: 2,
            unprepared_s: 0.004,
            ..ClientWaits::default()
        };
        let (json, text) = assess(Some(&lateness(0.5, 2.5)), 10, 10, &w, "epoll", &waits);
        assert_eq!(json["client_bottleneck"], true);
        assert_eq!(json["reasons"].as_array().map(Vec::len), Some(4));
        assert_eq!(json["unprepared_requests"], 2);
        assert_eq!(json["record_backlog"]["held_back"], 3);
        assert!(text.starts_with("Client health: CLIENT-BOUND"), "{text}");
        assert!(
            text.contains("scheduling lateness p99 2.500 ms exceeds 1 ms"),
            "{text}"
        );
        assert!(text.contains("worker 0 was 95% busy"), "{text}");
        assert!(
            text.contains(
                "the record thread fell behind: workers held back new requests 3 times, 12.5 ms \
                 in all (backlog peak 5000 records, 9.0 MiB)"
            ),
            "{text}"
        );
        assert!(
            text.contains("2 requests waited for their bytes to be prepared, 4.0 ms in all"),
            "{text}"
        );
    }

    #[test]
    fn the_skipped_arrivals_note_names_the_limits_that_were_full() {
        let note = |concurrency, prefill| {
            let waits = ClientWaits {
                skipped_arrivals: 7,
                concurrency,
                prefill_concurrency: prefill,
                ..ClientWaits::default()
            };
            let (_, text) = assess(None, 0, 0, &[], "io_uring", &waits);
            let line = text
                .lines()
                .find(|l| l.contains("Note:"))
                .map(str::to_owned);
            line.expect("a note").trim().to_owned()
        };
        let one = ClientWaits {
            skipped_arrivals: 1,
            concurrency: Some(2),
            ..ClientWaits::default()
        };
        let (_, text) = assess(None, 0, 0, &[], "io_uring", &one);
        assert!(
            text.contains("Note: 1 scheduled arrival was skipped because all 2 --concurrency"),
            "{text}"
        );
        let tail = "(as AIPerf does): the rate sent was below the rate asked.";
        for (concurrency, prefill, cause) in [
            (Some(1), None, "the one --concurrency slot was busy"),
            (Some(20), None, "all 20 --concurrency slots were busy"),
            (None, Some(4), "all 4 --prefill-concurrency slots were busy"),
            (
                Some(20),
                Some(4),
                "all 20 --concurrency slots or all 4 --prefill-concurrency slots were busy",
            ),
            (None, Some(1), "the one --prefill-concurrency slot was busy"),
            (
                Some(3),
                Some(1),
                "all 3 --concurrency slots or the one --prefill-concurrency slot were busy",
            ),
            (
                Some(1),
                Some(1),
                "the one --concurrency slot or the one --prefill-concurrency slot was busy",
            ),
        ] {
            assert_eq!(
                note(concurrency, prefill),
                format!("Note: 7 scheduled arrivals were skipped because {cause} {tail}")
            );
        }
    }
}

//! `fixed_schedule`: replays the timestamps of a trace.

use aiperf_runtime::dataset::{ms_to_ns, Conversation, DatasetView};
use aiperf_runtime::plugin::{Plugin, PluginContext, PluginError, WorkerShare};
use aiperf_runtime::protocols::{ArrivalPatternProtocol, NextCredit, TimingStrategyProtocol};
use aiperf_runtime::record::Nanos;

/// Milliseconds in a day: a schedule longer than this is most likely in the wrong unit
/// (epoch milliseconds without an offset, or seconds read as milliseconds).
const SUSPICIOUS_SPAN_MS: f64 = 86_400_000.0;
/// One microsecond: rows closer than this are most likely seconds read as milliseconds
/// scaled the wrong way, or nanoseconds.
const SUSPICIOUS_SPACING_MS: f64 = 0.001;

/// Sends every conversation's first turn at its trace timestamp, as AIPerf's
/// `fixed_schedule`: the instant of a timestamp `ts` (ms) is `start + (ts - zero)`, where
/// the zero is `--fixed-schedule-start-offset` when given, else the first timestamp kept
/// (AIPerf 0.13's default `auto_offset`, which `--fixed-schedule-auto-offset` names; the
/// two flags together are refused). Conversations whose first timestamp lies outside
/// `[start offset, end offset]` are skipped.
///
/// A conversation's later turns are sent as AIPerf sends them, once the previous turn's
/// response has ended: at their own `timestamp_ms` (absolute, as above; at once when that
/// instant has passed), or `delay_ms` after that response, or right after it when they
/// have neither ([`next_turn_at`](TimingStrategyProtocol::next_turn_at)).
///
/// Workers split the time-sorted conversations round-robin (the `k`-th to start goes to
/// worker `k mod count`), each worker replaying whole conversations, so the union over
/// workers is exactly the trace: every conversation once, starting at its instant, ties
/// in file order. Timestamps reach this strategy in milliseconds: loaders convert from
/// `--trace-timestamp-unit`. The engine's request count and duration limits still apply.
#[derive(Debug, Clone, Default)]
pub struct FixedScheduleStrategy {
    auto_offset: bool,
    start_offset_ms: Option<f64>,
    end_offset_ms: Option<f64>,
    /// This worker's session starts, in order: `(instant, conversation)`.
    schedule: Vec<(Nanos, usize)>,
    next: usize,
    /// The phase's first instant and the schedule's zero (ms), for later turns'
    /// timestamps.
    origin: (Nanos, f64),
}

impl FixedScheduleStrategy {
    pub fn new(
        auto_offset: bool,
        start_offset_ms: Option<f64>,
        end_offset_ms: Option<f64>,
    ) -> Result<Self, PluginError> {
        for (flag, value) in [
            ("--fixed-schedule-start-offset", start_offset_ms),
            ("--fixed-schedule-end-offset", end_offset_ms),
        ] {
            if value.is_some_and(|v| !v.is_finite()) {
                return Err(PluginError::Config(format!(
                    "{flag} must be a number of milliseconds"
                )));
            }
        }
        if let (Some(start), Some(end)) = (start_offset_ms, end_offset_ms) {
            if start > end {
                return Err(PluginError::Config(format!(
                    "--fixed-schedule-start-offset ({start} ms) is after \
                     --fixed-schedule-end-offset ({end} ms)"
                )));
            }
        }
        Ok(FixedScheduleStrategy {
            auto_offset,
            start_offset_ms,
            end_offset_ms,
            schedule: Vec::new(),
            next: 0,
            origin: (0, 0.0),
        })
    }

    /// This worker's session starts as prepared: `(instant, conversation)` in order.
    pub fn schedule(&self) -> &[(Nanos, usize)] {
        &self.schedule
    }

    /// The run instant of a trace timestamp (ms).
    fn instant(&self, ts: f64) -> Nanos {
        let (start, zero) = self.origin;
        start.saturating_add(ms_to_ns(ts - zero))
    }

    fn within_offsets(&self, ts: f64) -> bool {
        self.start_offset_ms.is_none_or(|start| ts >= start)
            && self.end_offset_ms.is_none_or(|end| ts <= end)
    }
}

impl Plugin for FixedScheduleStrategy {
    fn create(ctx: &PluginContext<'_>) -> Result<Self, PluginError> {
        let config = ctx.config;
        FixedScheduleStrategy::new(
            config.fixed_schedule_auto_offset || config.fixed_schedule_start_offset.is_none(),
            config.fixed_schedule_start_offset,
            config.fixed_schedule_end_offset,
        )
    }
}

impl TimingStrategyProtocol for FixedScheduleStrategy {
    fn prepare(
        &mut self,
        dataset: DatasetView<'_>,
        worker: WorkerShare,
        start: Nanos,
    ) -> Result<(), PluginError> {
        // Only a synthetic dataset is composed while the run goes; a trace is held.
        let DatasetView::Held(conversations) = dataset else {
            return Err(PluginError::Config(
                "fixed_schedule replays a trace's timestamps; a synthetic dataset has none".into(),
            ));
        };
        self.schedule.clear();
        self.next = 0;
        // Every conversation's first timestamp, in trace order.
        let mut entries = Vec::with_capacity(conversations.len());
        for (index, conversation) in conversations.iter().enumerate() {
            let ts = conversation
                .turns
                .first()
                .and_then(|turn| turn.timestamp_ms)
                .filter(|ts| ts.is_finite())
                .ok_or_else(|| {
                    PluginError::Config(format!(
                        "fixed_schedule needs a timestamp on the first turn of every \
                         conversation; `{}` (entry {}) has none",
                        conversation.session_id,
                        index + 1
                    ))
                })?;
            if self.within_offsets(ts) {
                entries.push((ts, index));
            }
        }
        // Stable: equal timestamps keep their file order.
        entries.sort_by(|a, b| a.0.total_cmp(&b.0));
        let zero = if self.auto_offset {
            entries.first().map_or(0.0, |e| e.0)
        } else {
            self.start_offset_ms.unwrap_or(0.0)
        };
        if worker.id == 0 {
            let timestamps: Vec<f64> = entries.iter().map(|e| e.0).collect();
            for warning in sanity_warnings(&timestamps, zero) {
                tracing::warn!("{warning}");
            }
            if entries.is_empty() {
                tracing::warn!("fixed_schedule: no trace entry lies within the offsets");
            }
        }
        self.origin = (start, zero);
        let count = worker.count.max(1) as usize;
        // Stable sort above: ties keep their place in the trace.
        self.schedule = entries
            .iter()
            .enumerate()
            .filter(|(rank, _)| rank % count == worker.id as usize)
            .map(|(_, &(ts, index))| (self.instant(ts), index))
            .collect();
        Ok(())
    }

    fn next_credit<A: ArrivalPatternProtocol>(
        &mut self,
        _arrivals: &mut A,
        _now: Nanos,
    ) -> NextCredit {
        match self.schedule.get(self.next) {
            Some(&(at, conversation)) => {
                self.next += 1;
                NextCredit::Turn {
                    at,
                    conversation,
                    turn: 0,
                    turns: u32::MAX,
                    user: None,
                    draw: None,
                }
            }
            None => NextCredit::Done,
        }
    }

    fn next_turn_at(
        &self,
        conversation: &Conversation,
        turn: u32,
        _previous_at: Nanos,
        previous_end: Nanos,
    ) -> Nanos {
        let Some(turn) = conversation.turns.get(turn as usize) else {
            return previous_end;
        };
        match (turn.timestamp_ms, turn.delay_ms) {
            (Some(ts), _) if ts.is_finite() => self.instant(ts).max(previous_end),
            (_, Some(delay)) => previous_end.saturating_add(ms_to_ns(delay)),
            _ => previous_end,
        }
    }
}

/// BC-34's unit check on sorted first timestamps (ms) and the schedule's zero: a span
/// of more than a day, or rows closer than a microsecond, most likely mean the trace is
/// in another unit than `--trace-timestamp-unit` says (or needs an offset).
pub fn sanity_warnings(sorted_ms: &[f64], zero_ms: f64) -> Vec<String> {
    let mut warnings = Vec::new();
    let Some(&last) = sorted_ms.last() else {
        return warnings;
    };
    let span = last - zero_ms;
    if span > SUSPICIOUS_SPAN_MS {
        warnings.push(format!(
            "the trace schedule spans {:.1} days from its zero ({zero_ms} ms) to its last \
             request ({last} ms): check --trace-timestamp-unit (ms or s), and that \
             --fixed-schedule-start-offset is in the trace's own time base",
            span / SUSPICIOUS_SPAN_MS
        ));
    }
    let closest = sorted_ms
        .windows(2)
        .map(|w| w[1] - w[0])
        .filter(|gap| *gap > 0.0)
        .min_by(f64::total_cmp);
    if let Some(gap) = closest.filter(|gap| *gap < SUSPICIOUS_SPACING_MS) {
        warnings.push(format!(
            "trace requests are as close as {:.3} µs apart: check \
             --trace-timestamp-unit (ms or s)",
            gap * 1000.0
        ));
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arrival::ConcurrencyBurstArrival;
    use crate::test_config::{config, context, EMPTY_ENTRY};
    use aiperf_runtime::dataset::Turn;

    /// Conversations with these first timestamps (ms), one turn each.
    fn trace(timestamps: &[f64]) -> Vec<Conversation> {
        timestamps
            .iter()
            .enumerate()
            .map(|(i, &ts)| Conversation {
                session_id: format!("s{i}"),
                turns: vec![Turn {
                    timestamp_ms: Some(ts),
                    ..Turn::default()
                }],
            })
            .collect()
    }

    fn strategy(args: &[&str]) -> FixedScheduleStrategy {
        let mut all = vec!["-m", "m"];
        all.extend_from_slice(args);
        let cfg = config(&all);
        FixedScheduleStrategy::create(&context(&cfg, &EMPTY_ENTRY)).unwrap()
    }

    fn drain(strategy: &mut FixedScheduleStrategy) -> Vec<(Nanos, usize, u32)> {
        let mut out = Vec::new();
        loop {
            match strategy.next_credit(&mut ConcurrencyBurstArrival, 0) {
                NextCredit::Turn {
                    at,
                    conversation,
                    turn,
                    turns,
                    user,
                    draw,
                } => {
                    assert_eq!(turns, u32::MAX, "sessions run to the conversation's end");
                    assert_eq!(user, None, "trace sessions are no user's");
                    assert_eq!(draw, None, "a trace is held, its sessions are no draws");
                    out.push((at, conversation, turn));
                }
                NextCredit::Done => return out,
                other => panic!("unexpected credit {other:?}"),
            }
        }
    }

    fn replay(args: &[&str], conversations: &[Conversation], start: Nanos) -> Vec<Nanos> {
        let mut s = strategy(args);
        s.prepare(
            DatasetView::Held(conversations),
            WorkerShare { id: 0, count: 1 },
            start,
        )
        .unwrap();
        drain(&mut s).into_iter().map(|(at, _, _)| at).collect()
    }

    const MS: u64 = 1_000_000;

    #[test]
    fn epoch_timestamps_with_auto_offset() {
        // BC-34 file 1, in milliseconds (the default unit).
        let conversations = trace(&[1_714_000_000_123.0, 1_714_000_000_623.0]);
        let at = replay(&["--fixed-schedule-auto-offset"], &conversations, 7);
        assert_eq!(at, vec![7, 7 + 500 * MS]);
        // The same without the flag: auto-offset is the default, as in AIPerf 0.13.
        assert_eq!(replay(&[], &conversations, 7), vec![7, 7 + 500 * MS]);
        // A start offset of 0 is the zero: the first request is 54 years away, and the
        // sanity check says so.
        let at = replay(&["--fixed-schedule-start-offset", "0"], &conversations, 0);
        assert_eq!(at, vec![1_714_000_000_123 * MS, 1_714_000_000_623 * MS]);
        let warnings = sanity_warnings(&[1_714_000_000_123.0, 1_714_000_000_623.0], 0.0);
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("--fixed-schedule-start-offset"));
        assert!(sanity_warnings(
            &[1_714_000_000_123.0, 1_714_000_000_623.0],
            1_714_000_000_123.0
        )
        .is_empty());
    }

    #[test]
    fn relative_timestamps() {
        // BC-34 file 2 after a loader read it with `--trace-timestamp-unit s`.
        let at = replay(&[], &trace(&[0.0, 500.0]), 1_000);
        assert_eq!(at, vec![1_000, 1_000 + 500 * MS]);
        // The same file read as milliseconds: 0.5 ms apart, exactly.
        let at = replay(&[], &trace(&[0.0, 0.5]), 0);
        assert_eq!(at, vec![0, 500_000]);
        assert!(sanity_warnings(&[0.0, 0.5], 0.0).is_empty());
        // Sub-microsecond spacing is suspicious.
        let warnings = sanity_warnings(&[0.0, 0.0, 0.0005], 0.0);
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("--trace-timestamp-unit"));
    }

    #[test]
    fn offsets_filter_and_set_the_zero() {
        let conversations = trace(&[100.0, 200.0, 300.0, 400.0]);
        // Start offset: rows before it are skipped and it is the zero.
        let mut s = strategy(&["--fixed-schedule-start-offset", "200"]);
        s.prepare(
            DatasetView::Held(&conversations),
            WorkerShare { id: 0, count: 1 },
            0,
        )
        .unwrap();
        assert_eq!(
            drain(&mut s),
            vec![(0, 1, 0), (100 * MS, 2, 0), (200 * MS, 3, 0)]
        );
        // End offset (inclusive) with auto-offset: zero is the first row kept.
        let at = replay(
            &[
                "--fixed-schedule-auto-offset",
                "--fixed-schedule-end-offset",
                "300",
            ],
            &conversations,
            0,
        );
        assert_eq!(at, vec![0, 100 * MS, 200 * MS]);
        // Neither offset flag: the zero is the first timestamp.
        assert_eq!(replay(&[], &trace(&[300.0, 400.0]), 0), vec![0, 100 * MS]);
        // Both zeros at once are refused, as AIPerf 0.13 refuses them.
        let err = config(&[
            "-m",
            "m",
            "--fixed-schedule-auto-offset",
            "--fixed-schedule-start-offset",
            "150",
        ])
        .validate()
        .unwrap_err();
        assert!(
            err.starts_with("--fixed-schedule-auto-offset and --fixed-schedule-start-offset"),
            "{err}"
        );
    }

    #[test]
    fn unsorted_rows_replay_in_time_order_and_ties_in_file_order() {
        let mut s = strategy(&[]);
        s.prepare(
            DatasetView::Held(&trace(&[90.0, 0.0, 50.0, 50.0])),
            WorkerShare { id: 0, count: 1 },
            0,
        )
        .unwrap();
        assert_eq!(
            drain(&mut s),
            vec![(0, 1, 0), (50 * MS, 2, 0), (50 * MS, 3, 0), (90 * MS, 0, 0)]
        );
    }

    #[test]
    fn workers_split_round_robin_and_the_union_is_the_trace() {
        let timestamps: Vec<f64> = (0..10).map(|k| f64::from(k) * 10.0).collect();
        let conversations = trace(&timestamps);
        let mut union = Vec::new();
        for id in 0..3 {
            let mut s = strategy(&[]);
            s.prepare(
                DatasetView::Held(&conversations),
                WorkerShare { id, count: 3 },
                0,
            )
            .unwrap();
            let mine = drain(&mut s);
            let expected: Vec<usize> = (id as usize..10).step_by(3).collect();
            assert_eq!(
                mine.iter().map(|c| c.1).collect::<Vec<_>>(),
                expected,
                "worker {id}"
            );
            union.extend(mine);
        }
        union.sort_unstable();
        let expected: Vec<_> = (0..10).map(|k| (k as u64 * 10 * MS, k, 0)).collect();
        assert_eq!(union, expected);
    }

    #[test]
    fn later_turns_wait_for_the_previous_response() {
        let turn = |timestamp_ms, delay_ms| Turn {
            timestamp_ms,
            delay_ms,
            ..Turn::default()
        };
        let conversations = vec![
            Conversation {
                session_id: "a".into(),
                turns: vec![
                    turn(Some(1000.0), None),
                    turn(None, Some(30.0)),
                    turn(Some(1200.0), None),
                    turn(None, None),
                    turn(Some(f64::NAN), Some(5.5)),
                ],
            },
            Conversation {
                session_id: "b".into(),
                turns: vec![turn(Some(1010.0), None)],
            },
        ];
        let mut s = strategy(&["--fixed-schedule-auto-offset"]);
        let start = 7 * MS;
        s.prepare(
            DatasetView::Held(&conversations),
            WorkerShare { id: 0, count: 1 },
            start,
        )
        .unwrap();
        // Only sessions start from the schedule; the engine sends the later turns.
        assert_eq!(drain(&mut s), vec![(start, 0, 0), (start + 10 * MS, 1, 0)]);
        let a = &conversations[0];
        // The previous turn was due at 7 ms and answered at 100 ms.
        let next = |turn| s.next_turn_at(a, turn, start, 100 * MS);
        // `delay_ms` counts from the response, not from the previous send.
        assert_eq!(next(1), 130 * MS);
        // A timestamp is absolute: 200 ms after the first one...
        assert_eq!(next(2), start + 200 * MS);
        // ...unless the response came later: then at once, never before it.
        assert_eq!(s.next_turn_at(a, 2, start, 500 * MS), 500 * MS);
        // Neither: right after the response.
        assert_eq!(next(3), 100 * MS);
        // A timestamp that is not a number gives way to the delay.
        assert_eq!(next(4), 100 * MS + 5_500_000);
        assert_eq!(next(9), 100 * MS);
    }

    #[test]
    fn missing_timestamps_and_bad_offsets_are_errors() {
        let mut conversations = trace(&[0.0]);
        conversations.push(Conversation {
            session_id: "untimed".into(),
            turns: vec![Turn::default()],
        });
        let err = strategy(&[])
            .prepare(
                DatasetView::Held(&conversations),
                WorkerShare { id: 0, count: 1 },
                0,
            )
            .unwrap_err();
        assert!(err.to_string().contains("`untimed` (entry 2)"), "{err}");
        let turns = std::sync::Arc::from([1]);
        let composed = DatasetView::Composed { turns: &turns };
        let err = strategy(&[])
            .prepare(composed, WorkerShare { id: 0, count: 1 }, 0)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "fixed_schedule replays a trace's timestamps; a synthetic dataset has none"
        );
        assert!(FixedScheduleStrategy::new(false, Some(10.0), Some(5.0)).is_err());
        assert!(FixedScheduleStrategy::new(false, Some(f64::NAN), None).is_err());
        // Nothing in range: done at once.
        let mut s = strategy(&["--fixed-schedule-start-offset", "1"]);
        s.prepare(
            DatasetView::Held(&trace(&[0.0])),
            WorkerShare { id: 0, count: 1 },
            0,
        )
        .unwrap();
        assert!(drain(&mut s).is_empty());
        // A worker with no share of a short trace is done at once too.
        let mut s = strategy(&[]);
        s.prepare(
            DatasetView::Held(&trace(&[0.0])),
            WorkerShare { id: 5, count: 8 },
            0,
        )
        .unwrap();
        assert!(drain(&mut s).is_empty());
    }

    #[test]
    fn conversions_saturate() {
        assert_eq!(ms_to_ns(-5.0), 0);
        assert_eq!(ms_to_ns(f64::NAN), 0);
        assert_eq!(ms_to_ns(1e300), u64::MAX);
        assert_eq!(ms_to_ns(1.5), 1_500_000);
        let at = replay(&[], &trace(&[-10.0, 1e300]), 5);
        assert_eq!(at, vec![5, u64::MAX]);
    }
}

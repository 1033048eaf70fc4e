//! `user_centric_rate`: simulated users, each sending its turns a fixed gap apart.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::sync::Arc;

use aiperf_runtime::dataset::{Conversation, DatasetView};
use aiperf_runtime::limits::{MAX_RATE, MIN_RATE};
use aiperf_runtime::plugin::{Plugin, PluginContext, PluginError, WorkerShare};
use aiperf_runtime::protocols::{ArrivalPatternProtocol, NextCredit, TimingStrategyProtocol};
use aiperf_runtime::record::Nanos;

/// Most `--num-users`: each worker keeps a small record per user's chain.
const MAX_USERS: u32 = 10_000_000;

/// AIPerf's user-centric mode for KV-cache benchmarks: `N` users (`--num-users`) share
/// `Q` requests per second (`--user-centric-rate`); users start `1/Q` apart and each
/// sends its turns `N/Q` apart, so the total rate is `Q`.
///
/// The run opens in a steady state, as AIPerf's does: with
/// `L = max(1, round(mean turns) - 1)`, user `i` of `N` is `age = (N - i)·L` gaps into
/// its session and has `L - floor(age/N)` turns left (none: it is skipped); it starts at
/// slot `age mod N` (`i·step mod N`, `step` the smallest number above 1 coprime to `N`,
/// when `N` and `L` share a factor), i.e. `(N - slot)/Q` after the start, and a fresh
/// user with all its turns starts at once. Each of these users begins a *chain*: when a
/// user's last turn is due (`first send + turns·N/Q`), a new user with a whole
/// conversation takes its place, forever; the engine's request count or duration ends
/// the run. Users take conversations in the order they appear (sequential, wrapping): the
/// `k`-th new user of the run takes draw `k` ([`NextCredit::Turn`]'s `draw`), so a dataset
/// too large to hold is composed in that order while the run goes.
///
/// A user sends its next turn once the previous response has ended, `N/Q` after the
/// previous turn was due: at `max(response, previous + N/Q)`, as AIPerf does
/// ([`next_turn_at`](TimingStrategyProtocol::next_turn_at)); the engine sends it. New
/// users keep to the chains' schedule whatever the server does (open loop).
///
/// Users are numbered as AIPerf numbers them, from 1: opening user `i` is `i + 1` (a
/// skipped one uses its number up), the fresh user `N + 1`, and new users follow in the
/// order they start. A user's number is its session's X-Correlation-ID (`str(user_id)`
/// in AIPerf), which the strategy hands on with the session
/// ([`NextCredit::Turn`]'s `user`).
///
/// Workers split the chains round-robin (chain `k` to worker `k mod count`). Which
/// conversation and number a new user gets depends on the global order of new users, so
/// every worker follows all chains' spawn times (a heap pop each) and sends only its own:
/// the union over workers is exactly the single-process schedule.
#[derive(Debug, Clone)]
pub struct UserCentricStrategy {
    rate: f64,
    users: u32,
    /// Conversations the earlier phases drew: the users take those after them.
    first: u64,
    plan: Option<Plan>,
}

/// The schedule state after `prepare`.
#[derive(Debug, Clone)]
struct Plan {
    start: Nanos,
    gap_ns: f64,
    /// Turns of each conversation (users are given whole conversations).
    turns: Arc<[u32]>,
    share: WorkerShare,
    /// Whether this worker owns any chain; a worker without one is done at once.
    owns_chains: bool,
    /// Every chain's next new user: `(instant, chain)`, all workers' alike.
    spawns: BinaryHeap<Reverse<(Instant, usize)>>,
    /// New users so far, over all workers: the sampling order.
    sampled: u64,
    /// The number of the next new user, over all workers.
    next_user: u64,
    /// This worker's next new user, taken from `spawns` and waiting to be sent.
    next_spawn: Option<Spawn>,
    /// This worker's opening users not yet started, earliest last.
    opening: Vec<(Instant, InitialUser)>,
}

/// A new user of this worker's, due at `at` on `chain`.
#[derive(Debug, Clone, Copy)]
struct Spawn {
    at: Instant,
    chain: usize,
    conversation: usize,
    user: u64,
    draw: u64,
}

/// Nanoseconds from the phase start, as `f64` so that `1/Q` steps do not drift; always
/// finite and non-negative, ordered totally.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Instant(f64);

impl Eq for Instant {}

impl PartialOrd for Instant {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Instant {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// One user of the opening steady state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InitialUser {
    /// Position in the start order: the user's first turn is `order/Q` after the start.
    pub order: u64,
    /// Turns it sends.
    pub turns: u32,
    pub conversation: usize,
    /// Its number (AIPerf's `user_id`, from 1), the session's correlation id.
    pub user: u64,
    /// The draw that gave it its conversation (the conversation is the draw modulo the
    /// dataset's size).
    pub draw: u64,
}

impl UserCentricStrategy {
    pub fn new(rate: f64, users: u32) -> Result<Self, PluginError> {
        // The rate bounds every rate flag has: at the top the stagger between users is
        // 100 ns, which keeps every instant of a run of years exactly representable and
        // strictly increasing; below the bottom the users' turn gap overflowed to
        // infinity, and a plan whose chains never advanced spun a core for good.
        if !(rate.is_finite() && (MIN_RATE..=MAX_RATE).contains(&rate)) {
            return Err(PluginError::Config(format!(
                "--user-centric-rate must be a number of requests per second from \
                 {MIN_RATE:e} (one per 3.2e9 s) to {MAX_RATE:e}, got {}",
                aiperf_runtime::limits::show(rate)
            )));
        }
        if users == 0 || users > MAX_USERS {
            return Err(PluginError::Config(format!(
                "--num-users must be between 1 and {MAX_USERS}, got {users}"
            )));
        }
        Ok(UserCentricStrategy {
            rate,
            users,
            first: 0,
            plan: None,
        })
    }

    /// The opening users, in AIPerf's generation order (the fresh user last).
    /// `first`: the draws earlier phases made; the users take the conversations after.
    pub fn initial_users(users: u32, turns: &[u32], first: u64) -> Vec<InitialUser> {
        let n = u64::from(users);
        let len = turns.len().max(1);
        let mean = turns.iter().map(|&t| f64::from(t)).sum::<f64>() / len as f64;
        // Python's round(): ties to even.
        let session_turns = mean.round_ties_even() as u64;
        let lifetime = session_turns.saturating_sub(1).max(1);
        let step = (gcd(n, lifetime) > 1).then(|| coprime_step(n));
        let mut sampled = first;
        let mut take = |limit: Option<u64>| {
            let draw = sampled;
            // The remainder is below `len`, a usize.
            let conversation = (draw % len as u64) as usize;
            sampled += 1;
            let full = turns.get(conversation).copied().unwrap_or(0);
            let turns = match limit {
                Some(limit) => u32::try_from(limit).unwrap_or(u32::MAX).min(full),
                None => full,
            };
            (conversation, turns, draw)
        };
        let mut out = Vec::new();
        for i in 0..n {
            let age = (n - i) * lifetime;
            // A user virtually done before the start still uses its number up, as AIPerf's.
            let Some(left) = lifetime.checked_sub(age / n).filter(|&left| left > 0) else {
                continue;
            };
            let slot = match step {
                Some(step) => (i * step) % n,
                None => age % n,
            };
            let (conversation, turns, draw) = take(Some(left));
            out.push(InitialUser {
                order: n - slot,
                turns,
                conversation,
                user: i + 1,
                draw,
            });
        }
        let (conversation, turns, draw) = take(None);
        out.push(InitialUser {
            order: 0,
            turns,
            conversation,
            user: n + 1,
            draw,
        });
        out
    }
}

impl Plugin for UserCentricStrategy {
    fn create(ctx: &PluginContext<'_>) -> Result<Self, PluginError> {
        let config = ctx.config;
        let rate = config.user_centric_rate.ok_or_else(|| {
            PluginError::Config("user_centric_rate needs --user-centric-rate".into())
        })?;
        let users = config
            .num_users
            .ok_or_else(|| PluginError::Config("--user-centric-rate needs --num-users".into()))?;
        UserCentricStrategy::new(rate, users)
    }
}

impl Plan {
    fn owns(&self, chain: usize) -> bool {
        chain % self.share.count.max(1) as usize == self.share.id as usize
    }

    fn length(&self, conversation: usize) -> u32 {
        self.turns.get(conversation).copied().unwrap_or(1).max(1)
    }

    /// Follows the spawn schedule of all chains until this worker's next new user.
    fn find_next_spawn(&mut self) {
        if self.next_spawn.is_some() || !self.owns_chains {
            return;
        }
        // Every chain advances by at least one turn gap per spawn, so this worker's own
        // chain comes up after a bounded number of others' spawns.
        while let Some(Reverse((at, chain))) = self.spawns.pop() {
            let draw = self.sampled;
            let conversation = (draw % self.turns.len().max(1) as u64) as usize;
            self.sampled += 1;
            let user = self.next_user;
            self.next_user += 1;
            if self.owns(chain) {
                self.next_spawn = Some(Spawn {
                    at,
                    chain,
                    conversation,
                    user,
                    draw,
                });
                return;
            }
            let end = at.0 + f64::from(self.length(conversation)) * self.gap_ns;
            self.spawns.push(Reverse((Instant(end), chain)));
        }
    }

    /// User `user`'s session: its first turn at `at`, `turns` turns in all, of the
    /// conversation of `draw`.
    fn session(&self, at: Instant, turns: u32, user: u64, draw: u64) -> NextCredit {
        // Instants are finite and non-negative; `as` saturates past u64::MAX.
        NextCredit::Turn {
            at: self.start.saturating_add(at.0.round() as u64),
            // The remainder is below the dataset's size, a usize.
            conversation: (draw % self.turns.len().max(1) as u64) as usize,
            turn: 0,
            turns,
            user: Some(user),
            draw: Some(draw),
        }
    }

    fn next(&mut self) -> NextCredit {
        self.find_next_spawn();
        let opening = self.opening.last().map(|o| o.0);
        // An opening user goes first on a tie: it was scheduled earlier.
        let spawn = self.next_spawn.filter(|s| opening.is_none_or(|o| s.at < o));
        if let Some(spawn) = spawn {
            self.next_spawn = None;
            let turns = self.length(spawn.conversation);
            let end = spawn.at.0 + f64::from(turns) * self.gap_ns;
            self.spawns.push(Reverse((Instant(end), spawn.chain)));
            return self.session(spawn.at, turns, spawn.user, spawn.draw);
        }
        match self.opening.pop() {
            Some((at, user)) => self.session(at, user.turns, user.user, user.draw),
            None => NextCredit::Done,
        }
    }
}

impl TimingStrategyProtocol for UserCentricStrategy {
    /// The engine's count includes the draw AIPerf's warmup loop makes before it learns
    /// the phase is over, and drops (after one warmup session its users take
    /// conversations 2, 3, ...; after three, 4, 5, ...).
    fn after_draws(&mut self, drawn: u64) -> u64 {
        self.first = drawn;
        self.first
    }

    fn prepare(
        &mut self,
        dataset: DatasetView<'_>,
        worker: WorkerShare,
        start: Nanos,
    ) -> Result<(), PluginError> {
        if dataset.is_empty() {
            return Err(PluginError::Config(
                "user_centric_rate needs at least one conversation".into(),
            ));
        }
        let turns = dataset.turn_counts();
        if let Some(empty) = turns.iter().position(|&t| t == 0) {
            let name = match dataset.held().get(empty) {
                Some(conversation) => format!("`{}`", conversation.session_id),
                None => empty.to_string(),
            };
            return Err(PluginError::Config(format!(
                "conversation {name} has no turns"
            )));
        }
        let stagger_ns = 1e9 / self.rate;
        let gap_ns = stagger_ns * f64::from(self.users);
        let initial = Self::initial_users(self.users, &turns, self.first);
        let share = WorkerShare {
            id: worker.id,
            count: worker.count.max(1),
        };
        let mut plan = Plan {
            start,
            gap_ns,
            turns,
            share,
            owns_chains: false,
            spawns: BinaryHeap::with_capacity(initial.len()),
            sampled: self.first + initial.len() as u64,
            // The opening used up numbers 1 to N + 1 (skipped users' too).
            next_user: u64::from(self.users) + 2,
            next_spawn: None,
            opening: Vec::new(),
        };
        for (chain, user) in initial.iter().enumerate() {
            let send = user.order as f64 * stagger_ns;
            let end = send + f64::from(user.turns) * gap_ns;
            plan.spawns.push(Reverse((Instant(end), chain)));
            if plan.owns(chain) {
                plan.owns_chains = true;
                if user.turns > 0 {
                    plan.opening.push((Instant(send), *user));
                }
            }
        }
        // Latest first, so the next one pops off the end; orders are distinct.
        plan.opening.sort_by_key(|o| Reverse(o.0));
        self.plan = Some(plan);
        Ok(())
    }

    fn next_credit<A: ArrivalPatternProtocol>(
        &mut self,
        _arrivals: &mut A,
        _now: Nanos,
    ) -> NextCredit {
        match &mut self.plan {
            Some(plan) => plan.next(),
            None => NextCredit::Done,
        }
    }

    fn next_turn_at(
        &self,
        _conversation: &Conversation,
        _turn: u32,
        previous_at: Nanos,
        previous_end: Nanos,
    ) -> Nanos {
        let gap = self.plan.as_ref().map_or(0.0, |p| p.gap_ns);
        // The gap is finite and positive (rate and users are bounded); `as` saturates.
        previous_at
            .saturating_add(gap.round() as u64)
            .max(previous_end)
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// The smallest step above 1 coprime to `n` (1 when `n <= 2`): visits every slot once.
fn coprime_step(n: u64) -> u64 {
    (2..n).find(|&step| gcd(n, step) == 1).unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arrival::ConcurrencyBurstArrival;
    use crate::test_config::{config, context, EMPTY_ENTRY};
    use aiperf_runtime::dataset::Turn;

    const MS: u64 = 1_000_000;

    fn dataset(conversations: usize, turns: usize) -> Vec<Conversation> {
        (0..conversations)
            .map(|i| Conversation {
                session_id: format!("c{i}"),
                turns: vec![Turn::default(); turns],
            })
            .collect()
    }

    /// The first `n` sessions of worker `id` of `count`, as `(ms, conversation, turns)`.
    fn credits(
        rate: &str,
        users: &str,
        data: &[Conversation],
        id: u32,
        count: u32,
        n: usize,
    ) -> Vec<(u64, usize, u32)> {
        sessions(rate, users, data, id, count, n)
            .into_iter()
            .map(|(ms, conversation, turns, _)| (ms, conversation, turns))
            .collect()
    }

    /// As [`credits`], with each session's user number.
    fn sessions(
        rate: &str,
        users: &str,
        data: &[Conversation],
        id: u32,
        count: u32,
        n: usize,
    ) -> Vec<(u64, usize, u32, u64)> {
        drawn(rate, users, DatasetView::Held(data), id, count, n)
            .into_iter()
            .map(|(ms, conversation, turns, user, _)| (ms, conversation, turns, user))
            .collect()
    }

    /// As [`sessions`], with each session's draw, of any view of the dataset.
    fn drawn(
        rate: &str,
        users: &str,
        data: DatasetView<'_>,
        id: u32,
        count: u32,
        n: usize,
    ) -> Vec<(u64, usize, u32, u64, u64)> {
        let cfg = config(&["-m", "m", "--user-centric-rate", rate, "--num-users", users]);
        let mut s = UserCentricStrategy::create(&context(&cfg, &EMPTY_ENTRY)).unwrap();
        s.prepare(data, WorkerShare { id, count }, 1_000).unwrap();
        (0..n)
            .map_while(|_| match s.next_credit(&mut ConcurrencyBurstArrival, 0) {
                NextCredit::Turn {
                    at,
                    conversation,
                    turn,
                    turns,
                    user,
                    draw,
                } => {
                    assert_eq!(turn, 0, "users start their conversation at its first turn");
                    assert_eq!((at - 1_000) % 1_000, 0, "whole microseconds here");
                    let user = user.expect("every session is a user's");
                    let draw = draw.expect("every session is a draw");
                    assert_eq!(draw % data.len() as u64, conversation as u64, "draw {draw}");
                    Some(((at - 1_000) / MS, conversation, turns, user, draw))
                }
                NextCredit::Done => None,
                other => panic!("unexpected credit {other:?}"),
            })
            .collect()
    }

    /// After a warmup that drew conversations, the users take those after them, as
    /// AIPerf's sampler (shared by the phases) hands them out; later spawns go on from
    /// there, wrapping.
    #[test]
    fn users_take_the_conversations_after_the_warmups() {
        let users = UserCentricStrategy::initial_users(3, &[2; 5], 2);
        let taken: Vec<usize> = users.iter().map(|u| u.conversation).collect();
        assert_eq!(taken, [2, 3, 4]);
        let mut strategy = UserCentricStrategy::new(10.0, 3).expect("valid");
        // One warmup session, and the one AIPerf's warmup drew and dropped (counted by
        // the engine): the users start at conversation 2, as AIPerf's do.
        assert_eq!(strategy.after_draws(2), 2);
        assert_eq!(strategy.first, 2);
        let conversations: Vec<Conversation> = (0..5)
            .map(|i| Conversation {
                session_id: format!("s{i}"),
                turns: vec![aiperf_runtime::dataset::Turn::default(); 2],
            })
            .collect();
        strategy
            .prepare(
                DatasetView::Held(&conversations),
                WorkerShare { id: 0, count: 1 },
                0,
            )
            .expect("prepared");
        let plan = strategy.plan.as_ref().expect("a plan");
        assert_eq!(
            plan.sampled, 5,
            "the next spawn takes conversation 5 % 5 = 0"
        );
        // No warmup: from the first conversation.
        assert_eq!(strategy.after_draws(0), 0);
        assert_eq!(strategy.first, 0);
    }

    #[test]
    fn aiperf_example_fifteen_users_twenty_turns() {
        // The table in AIPerf's user_centric_rate.py: user (id) -> (turns, start second).
        let users = UserCentricStrategy::initial_users(15, &[20; 15], 0);
        let expected: [(u32, u32, u64); 15] = [
            (2, 2, 4),
            (3, 3, 8),
            (4, 4, 12),
            (5, 6, 1),
            (6, 7, 5),
            (7, 8, 9),
            (8, 9, 13),
            (9, 11, 2),
            (10, 12, 6),
            (11, 13, 10),
            (12, 14, 14),
            (13, 16, 3),
            (14, 17, 7),
            (15, 18, 11),
            (16, 20, 0),
        ];
        assert_eq!(users.len(), 15, "user 1 is virtually done");
        for (user, &(id, turns, second)) in users.iter().zip(&expected) {
            assert_eq!((user.turns, user.order), (turns, second), "user {id}");
            assert_eq!(user.user, u64::from(id), "AIPerf's user_id");
            // Users sample conversations in id order, from user 2.
            assert_eq!(user.conversation, (id as usize - 2) % 15);
        }
    }

    #[test]
    fn small_schedule_with_alternate_spacing_and_spawns() {
        // N = 4, Q = 2/s: stagger 0.5 s, turn gap 2 s; 3-turn conversations give L = 2,
        // which shares a factor with 4, so slots step by 3.
        let data = dataset(6, 3);
        let got = credits("2", "4", &data, 0, 1, 10);
        let expected = vec![
            (0, 3, 3),    // the fresh user (conversation 3), all 3 turns
            (500, 0, 1),  // 1 turn left
            (1000, 1, 1), // 1 turn left
            (1500, 2, 2), // 2 turns left
            (2500, 4, 3), // replaces conversation 0's user: 0.5 + 1 x 2 s
            (3000, 5, 3), // replaces conversation 1's user
            (5500, 0, 3), // replaces conversation 2's user: 1.5 + 2 x 2 s; wraps
            (6000, 1, 3), // replaces the fresh user: 0 + 3 x 2 s
            (8500, 2, 3), // replaces conversation 4's user: 2.5 + 3 x 2 s
            (9000, 3, 3),
        ];
        assert_eq!(got, expected);
    }

    #[test]
    fn users_are_numbered_as_aiperf_numbers_them() {
        // N = 3, Q = 10/s, 3-turn conversations (L = 2): user 1 is virtually done, users 2
        // (1 turn left) and 3 (2 left) open with the fresh user 4; new users take 5, 6,
        // ... in the order they start.
        let data = dataset(3, 3);
        let got = sessions("10", "3", &data, 0, 1, 6);
        let expected = vec![
            (0, 2, 3, 4),
            (100, 1, 2, 3),
            (200, 0, 1, 2),
            (500, 0, 3, 5),
            (700, 1, 3, 6),
            (900, 2, 3, 7),
        ];
        assert_eq!(got, expected);
        // Over two workers each user keeps its number.
        let mut union: Vec<_> = (0..2)
            .flat_map(|id| sessions("10", "3", &data, id, 2, 6))
            .filter(|s| s.0 < 1000)
            .collect();
        union.sort_unstable();
        assert_eq!(union, expected);
    }

    /// Users draw the dataset in order: the opening users take the first draws, but start
    /// in another order (AIPerf's table above: the fresh user, with the last draw, first;
    /// then user 5, 9, 13, 2, ...), and the new users after them take one draw each in
    /// the order they start. A dataset composed on demand, seen only by its turn counts,
    /// gives the same sessions as held.
    #[test]
    fn users_take_the_draws_in_order_held_or_not() {
        let data = dataset(50, 20);
        let held = drawn("1", "15", DatasetView::Held(&data), 0, 1, 40);
        let turns = Arc::from([20; 50]);
        let composed = drawn("1", "15", DatasetView::Composed { turns: &turns }, 0, 1, 40);
        assert_eq!(held, composed);
        let draws: Vec<u64> = held.iter().map(|s| s.4).collect();
        assert_eq!(
            draws[..15],
            [14, 3, 7, 11, 0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10]
        );
        assert_eq!(draws[15..], (15..40).collect::<Vec<u64>>()[..]);
        // Split over two workers, each session keeps its draw.
        let horizon = held[39].0;
        let mut union: Vec<_> = (0..2)
            .flat_map(|id| drawn("1", "15", DatasetView::Held(&data), id, 2, 40))
            .filter(|s| s.0 <= horizon)
            .collect();
        union.sort_unstable();
        let mut single = held.clone();
        single.sort_unstable();
        assert_eq!(union, single);
    }

    #[test]
    fn later_turns_keep_the_gap_or_wait_for_the_response() {
        // N = 4, Q = 2/s: a user's turns are 2 s apart unless a response is later.
        let cfg = config(&["-m", "m", "--user-centric-rate", "2", "--num-users", "4"]);
        let mut s = UserCentricStrategy::create(&context(&cfg, &EMPTY_ENTRY)).unwrap();
        let data = dataset(2, 3);
        s.prepare(DatasetView::Held(&data), WorkerShare { id: 0, count: 1 }, 0)
            .unwrap();
        let due = 500 * MS;
        assert_eq!(s.next_turn_at(&data[0], 1, due, 800 * MS), 2500 * MS);
        assert_eq!(s.next_turn_at(&data[0], 1, due, 3100 * MS), 3100 * MS);
    }

    #[test]
    fn single_turn_users_make_a_constant_rate() {
        let got = credits("10", "3", &dataset(5, 1), 0, 1, 12);
        let times: Vec<u64> = got.iter().map(|c| c.0).collect();
        assert_eq!(times, (0..12).map(|k| k * 100).collect::<Vec<_>>());
        let conversations: Vec<usize> = got.iter().map(|c| c.1).collect();
        assert_eq!(conversations, vec![2, 0, 1, 3, 4, 0, 1, 2, 3, 4, 0, 1]);
    }

    #[test]
    fn workers_split_chains_and_the_union_is_the_schedule() {
        let data = dataset(7, 3);
        let single = credits("20", "9", &data, 0, 1, 400);
        let horizon = single.last().unwrap().0;
        let mut union = Vec::new();
        for id in 0..3 {
            let mine = credits("20", "9", &data, id, 3, 400);
            union.extend(mine.into_iter().filter(|c| c.0 < horizon));
        }
        union.sort_unstable();
        let mut sorted: Vec<_> = single.into_iter().filter(|c| c.0 < horizon).collect();
        sorted.sort_unstable();
        assert_eq!(union, sorted);
    }

    #[test]
    fn more_workers_than_users() {
        let data = dataset(2, 1);
        assert_eq!(credits("1", "1", &data, 0, 4, 3).len(), 3);
        // One user is one chain (the virtually-done user is skipped and the fresh one
        // replaces it), so the other workers are done at once.
        assert!(credits("1", "1", &data, 3, 4, 3).is_empty());
    }

    #[test]
    fn bad_settings_are_config_errors() {
        let cfg = config(&["-m", "m", "--user-centric-rate", "5"]);
        let err = UserCentricStrategy::create(&context(&cfg, &EMPTY_ENTRY)).unwrap_err();
        assert!(err.to_string().contains("--num-users"), "{err}");
        for (rate, users) in [(0.0, 1), (f64::NAN, 1), (1e9, 1), (1e-12, 4), (1.0, 0)] {
            assert!(UserCentricStrategy::new(rate, users).is_err());
        }
        let Err(err) = UserCentricStrategy::new(1e-300, 2) else {
            panic!("a rate of 1e-300 was taken");
        };
        assert_eq!(
            err.to_string(),
            "--user-centric-rate must be a number of requests per second from 3.125e-10 \
             (one per 3.2e9 s) to 1e7, got 1e-300"
        );
        // The bounds themselves plan a run.
        for rate in [MIN_RATE, MAX_RATE] {
            let mut s = UserCentricStrategy::new(rate, 4).unwrap();
            let share = WorkerShare { id: 0, count: 2 };
            let data = [Conversation {
                session_id: "s".into(),
                turns: vec![Default::default(); 2],
            }];
            s.prepare(DatasetView::Held(&data), share, 0).unwrap();
            // Below the bound, this is where a worker spun: chains that never advanced.
            let plan = s.plan.as_mut().unwrap();
            let turns = (0..6).filter(|_| !matches!(plan.next(), NextCredit::Done));
            assert_eq!(turns.count(), 6, "rate {rate}");
        }
        let mut s = UserCentricStrategy::new(1.0, 2).unwrap();
        fn refused(s: &mut UserCentricStrategy, data: DatasetView<'_>) -> String {
            match s.prepare(data, WorkerShare { id: 0, count: 1 }, 0) {
                Err(e) => e.to_string(),
                Ok(()) => panic!("prepared"),
            }
        }
        assert_eq!(
            refused(&mut s, DatasetView::Held(&[])),
            "user_centric_rate needs at least one conversation"
        );
        assert_eq!(
            refused(&mut s, DatasetView::Held(&dataset(1, 0))),
            "conversation `c0` has no turns"
        );
        assert_eq!(
            refused(
                &mut s,
                DatasetView::Composed {
                    turns: &Arc::from([2, 0])
                }
            ),
            "conversation 1 has no turns"
        );
        assert_eq!(
            s.next_credit(&mut ConcurrencyBurstArrival, 0),
            NextCredit::Done,
            "not prepared"
        );
    }

    #[test]
    fn coprime_steps() {
        assert_eq!(coprime_step(4), 3);
        assert_eq!(coprime_step(6), 5);
        assert_eq!(coprime_step(9), 2);
        assert_eq!(coprime_step(2), 1);
        assert_eq!(gcd(12, 18), 6);
    }
}

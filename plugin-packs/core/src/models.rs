//! Which model each composed turn names, by `--model-selection-strategy`.
//!
//! AIPerf picks a model for every turn as its composers finish them, in the order the
//! turns are composed: round robin cycles through the `--model` names, random draws one
//! uniformly from a stream of its own. A turn that already names a model keeps it.

use aiperf_runtime::config::{ModelSelectionStrategy, ProfileConfig};
use aiperf_runtime::dataset::{Conversation, Turn};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::rng::{stream_rng, StreamRng};

/// Hands out the model of each composed turn.
#[derive(Debug, Clone)]
pub struct ModelSelector {
    /// Every `--model` name; empty when there is only one, which turns leave implied.
    names: Vec<String>,
    strategy: ModelSelectionStrategy,
    /// Turns given a model so far (round robin).
    assigned: usize,
    rng: StdRng,
}

impl ModelSelector {
    /// AIPerf's name for the stream of random choices.
    pub const RNG_LABEL: &'static str = "composer.turn.model_selection";

    /// The selector of a composer owned by `worker` (0 for the run's own).
    pub fn new(config: &ProfileConfig, worker: u32) -> Self {
        let names = if config.model.len() > 1 {
            config.model.clone()
        } else {
            Vec::new()
        };
        ModelSelector {
            names,
            strategy: config.model_selection_strategy,
            assigned: 0,
            rng: stream_rng(config.random_seed, Self::RNG_LABEL, worker),
        }
    }

    /// A selector that leaves every turn to the primary model, as for a single `--model`.
    pub fn single() -> Self {
        ModelSelector {
            names: Vec::new(),
            strategy: ModelSelectionStrategy::RoundRobin,
            assigned: 0,
            // Never drawn from: there is nothing to choose between.
            rng: StdRng::seed_from_u64(0),
        }
    }

    /// The next turn's model; `None` with a single `--model` (the endpoints send the
    /// primary one), so such a run neither stores nor renders a name per turn.
    pub fn next_model(&mut self) -> Option<&str> {
        if self.names.is_empty() {
            return None;
        }
        let index = match self.strategy {
            ModelSelectionStrategy::RoundRobin => self.assigned % self.names.len(),
            ModelSelectionStrategy::Random => self.rng.random_range(0..self.names.len()),
        };
        self.assigned = self.assigned.wrapping_add(1);
        Some(self.names[index].as_str())
    }

    /// Gives `turn` the next model unless it names one already.
    /// The model of the run's `turn`-th turn (counting from 0 over every conversation in
    /// order) for a composer that makes conversations one at a time: the round robin's
    /// place is the turn's number, and a random pick draws from `rng` (the conversation's
    /// own stream).
    pub fn model_at(&self, turn: u64, rng: &mut impl StreamRng) -> Option<&str> {
        if self.names.is_empty() {
            return None;
        }
        let len = self.names.len();
        let index = match self.strategy {
            // The remainder is below `len`, a usize.
            ModelSelectionStrategy::RoundRobin => (turn % len as u64) as usize,
            ModelSelectionStrategy::Random => rng.stream().random_range(0..len),
        };
        Some(self.names[index].as_str())
    }

    /// Whether turns take several models in turn, so a turn's model depends on its number.
    pub fn cycles(&self) -> bool {
        self.names.len() > 1 && self.strategy == ModelSelectionStrategy::RoundRobin
    }

    pub fn assign(&mut self, turn: &mut Turn) {
        if turn.model.is_none() {
            turn.model = self.next_model().map(str::to_owned);
        }
    }

    /// [`assign`](Self::assign) over every turn, conversation by conversation, in order.
    pub fn assign_all(&mut self, conversations: &mut [Conversation]) {
        for turn in conversations.iter_mut().flat_map(|c| c.turns.iter_mut()) {
            self.assign(turn);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_config::config;

    fn picks(args: &[&str], count: usize) -> Vec<Option<String>> {
        let mut selector = ModelSelector::new(&config(args), 0);
        (0..count)
            .map(|_| selector.next_model().map(str::to_owned))
            .collect()
    }

    fn names(picks: &[Option<String>]) -> Vec<&str> {
        picks.iter().map(|m| m.as_deref().unwrap_or("-")).collect()
    }

    #[test]
    fn round_robin_cycles_in_order() {
        let got = picks(&["-m", "a", "--model", "b,c"], 7);
        assert_eq!(names(&got), ["a", "b", "c", "a", "b", "c", "a"]);
        let explicit = picks(
            &["-m", "a,b,c", "--model-selection-strategy", "round_robin"],
            7,
        );
        assert_eq!(explicit, got);
    }

    #[test]
    fn one_model_is_left_implied() {
        assert_eq!(picks(&["-m", "a"], 3), [None, None, None]);
        let random = ["-m", "a", "--model-selection-strategy", "random"];
        assert_eq!(picks(&random, 3), [None, None, None]);
    }

    #[test]
    fn random_repeats_with_a_seed_and_uses_every_model() {
        let args = [
            "-m",
            "a,b,c",
            "--model-selection-strategy",
            "random",
            "--random-seed",
            "1",
        ];
        let first = picks(&args, 300);
        assert_eq!(first, picks(&args, 300));
        for model in ["a", "b", "c"] {
            let n = names(&first).iter().filter(|m| **m == model).count();
            // Uniform: 100 expected of each; 60 is more than 4 standard deviations off.
            assert!(n > 60, "{model}: {n} of 300");
        }
        assert_ne!(names(&first[..30]), names(&picks(&["-m", "a,b,c"], 30)));
        let mut other_seed = args;
        other_seed[5] = "2";
        assert_ne!(first, picks(&other_seed, 300));
    }

    #[test]
    fn a_turn_that_names_its_model_keeps_it() {
        let mut selector = ModelSelector::new(&config(&["-m", "a,b"]), 0);
        let mut conversations = vec![
            Conversation {
                session_id: "s0".into(),
                turns: vec![Turn::default(), Turn::default()],
            },
            Conversation {
                session_id: "s1".into(),
                turns: vec![
                    Turn {
                        model: Some("own".into()),
                        ..Turn::default()
                    },
                    Turn::default(),
                ],
            },
        ];
        selector.assign_all(&mut conversations);
        let models: Vec<Option<&str>> = conversations
            .iter()
            .flat_map(|c| &c.turns)
            .map(|t| t.model.as_deref())
            .collect();
        // The named turn takes no place in the cycle.
        assert_eq!(models, [Some("a"), Some("b"), Some("own"), Some("a")]);
    }
}

//! `--dataset-sampling-strategy`: which conversation each new session sends, as AIPerf's
//! samplers choose it: in order, at random with replacement, or shuffled without
//! replacement and reshuffled each pass.
//!
//! Sessions are numbered across workers, and each worker holds its own sampler, so every
//! sampler answers from the session's number alone. The random ones draw from streams of
//! the run's seed (`--random-seed`, else one entropy seed per process): every worker sees
//! the same sequence, and a seeded run repeats it.

use aiperf_runtime::plugin::{Plugin, PluginContext, PluginError};
use aiperf_runtime::protocols::DatasetSamplerProtocol;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use crate::rng::{keyed_seed, run_root};

/// Stream labels, as AIPerf names the samplers' generators.
const RANDOM_LABEL: &str = "dataset.sampler.random";
const SHUFFLE_LABEL: &str = "dataset.sampler.shuffle";

/// A uniform index below `count` from 64 random bits (widening multiply: with fewer than
/// 2^32 conversations the bias is below 2^-32).
fn below(bits: u64, count: usize) -> usize {
    ((u128::from(bits) * count as u128) >> 64) as usize
}

/// The dataset in order, starting over after the last conversation.
#[derive(Debug, Clone, Default)]
pub struct SequentialSampler;

impl Plugin for SequentialSampler {
    fn create(_: &PluginContext<'_>) -> Result<Self, PluginError> {
        Ok(SequentialSampler)
    }
}

impl DatasetSamplerProtocol for SequentialSampler {
    fn index(&mut self, draw: u64, count: usize) -> usize {
        (draw % count.max(1) as u64) as usize
    }
}

/// A uniform draw per session, with replacement: a conversation may repeat before every
/// one has been sent.
#[derive(Debug, Clone)]
pub struct RandomSampler {
    root: u64,
}

impl Plugin for RandomSampler {
    fn create(ctx: &PluginContext<'_>) -> Result<Self, PluginError> {
        Ok(RandomSampler {
            root: run_root(ctx.config.random_seed),
        })
    }
}

impl DatasetSamplerProtocol for RandomSampler {
    fn index(&mut self, draw: u64, count: usize) -> usize {
        below(keyed_seed(self.root, RANDOM_LABEL, draw), count.max(1))
    }
}

/// Every conversation once per pass, in an order shuffled anew for each pass.
#[derive(Debug, Clone)]
pub struct ShuffleSampler {
    root: u64,
    /// The pass whose order `order` holds.
    pass: Option<u64>,
    order: Vec<usize>,
}

impl Plugin for ShuffleSampler {
    fn create(ctx: &PluginContext<'_>) -> Result<Self, PluginError> {
        Ok(ShuffleSampler {
            root: run_root(ctx.config.random_seed),
            pass: None,
            order: Vec::new(),
        })
    }
}

impl DatasetSamplerProtocol for ShuffleSampler {
    fn index(&mut self, draw: u64, count: usize) -> usize {
        let count = count.max(1);
        let pass = draw / count as u64;
        if self.pass != Some(pass) || self.order.len() != count {
            self.order.clear();
            self.order.extend(0..count);
            let mut rng = StdRng::seed_from_u64(keyed_seed(self.root, SHUFFLE_LABEL, pass));
            self.order.shuffle(&mut rng);
            self.pass = Some(pass);
        }
        self.order[(draw % count as u64) as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draws<S: DatasetSamplerProtocol>(
        sampler: &mut S,
        range: std::ops::Range<u64>,
    ) -> Vec<usize> {
        range.map(|d| sampler.index(d, 10)).collect()
    }

    #[test]
    fn sequential_wraps_around() {
        assert_eq!(draws(&mut SequentialSampler, 8..13), [8, 9, 0, 1, 2]);
        assert_eq!(SequentialSampler.index(5, 0), 0);
    }

    #[test]
    fn shuffle_sends_each_conversation_once_per_pass_in_a_new_order() {
        let mut sampler = ShuffleSampler {
            root: 7,
            pass: None,
            order: Vec::new(),
        };
        let first = draws(&mut sampler, 0..10);
        let second = draws(&mut sampler, 10..20);
        for pass in [&first, &second] {
            let mut sorted = pass.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, (0..10).collect::<Vec<_>>());
        }
        assert_ne!(first, second, "each pass is reshuffled");
        assert_ne!(first, (0..10).collect::<Vec<_>>());
        // Answers depend on the draw only: another worker's instance, asked out of
        // order, agrees.
        let mut other = ShuffleSampler {
            root: 7,
            pass: None,
            order: Vec::new(),
        };
        assert_eq!(other.index(13, 10), second[3]);
        assert_eq!(other.index(2, 10), first[2]);
    }

    #[test]
    fn random_draws_with_replacement_reproducibly() {
        let mut sampler = RandomSampler { root: 7 };
        let picks = draws(&mut sampler, 0..1000);
        let mut counts = [0u32; 10];
        for &p in &picks {
            counts[p] += 1;
        }
        // 100 expected each; 5 standard deviations is 47.
        assert!(
            counts.iter().all(|&c| (53..=147).contains(&c)),
            "{counts:?}"
        );
        // With replacement, ten draws of ten almost surely repeat one (all distinct has
        // probability 10!/10^10, about 0.04 %).
        let mut first = picks[..10].to_vec();
        first.sort_unstable();
        first.dedup();
        assert!(first.len() < 10, "{:?}", &picks[..10]);
        assert_eq!(draws(&mut RandomSampler { root: 7 }, 0..1000), picks);
        assert_ne!(draws(&mut RandomSampler { root: 8 }, 0..1000), picks);
    }
}

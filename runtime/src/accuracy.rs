//! Types of accuracy runs: problems to pose and grades of answers.

use serde::{Deserialize, Serialize};

/// One question of an accuracy benchmark.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    pub prompt: String,
    pub ground_truth: String,
    pub task: String,
}

/// A grader's verdict on one response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Grade {
    pub correct: bool,
    /// The answer extracted from the response, if one could be.
    pub extracted_answer: Option<String>,
}

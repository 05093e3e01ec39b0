//! One shard of a distributed run (`load --shard K/N`): its part of the profile. Users, the target
//! rate, the assertion pool and the introspection tokens are split so that the N shards together
//! are the profile: shard K gets ⌊total/N⌋, plus one for each of the first `total mod N` shards.
//! Iterations are per user, so they are not split. Unique values need no coordination: every
//! `jti` (and every other nonce) is 128 random bits, unique across shards as within one.

use serde::{Deserialize, Serialize};

/// Shard `index` (1-based) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

/// At most this many shards: far more generator machines than any run needs.
pub const MAX_SHARDS: usize = 1000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    #[error("`{0}` is not a shard: write K/N, e.g. 2/4 (shard 2 of 4)")]
    Syntax(String),
    #[error("shard {index} of {count} does not exist: K runs from 1 to N")]
    Range { index: usize, count: usize },
    #[error("at most {MAX_SHARDS} shards")]
    TooMany,
    #[error("--shards needs JOB_COMPLETION_INDEX (the 0-based index a Kubernetes Indexed Job sets): {0}")]
    Index(String),
}

impl Shard {
    pub fn new(index: usize, count: usize) -> Result<Self, ShardError> {
        if count > MAX_SHARDS {
            return Err(ShardError::TooMany);
        }
        if index == 0 || count == 0 || index > count {
            return Err(ShardError::Range { index, count });
        }
        Ok(Self { index, count })
    }

    /// `K/N`, as `--shard` takes it.
    pub fn parse(text: &str) -> Result<Self, ShardError> {
        let syntax = || ShardError::Syntax(text.to_string());
        let (k, n) = text.split_once('/').ok_or_else(syntax)?;
        let k: usize = k.trim().parse().map_err(|_| syntax())?;
        let n: usize = n.trim().parse().map_err(|_| syntax())?;
        Self::new(k, n)
    }

    /// `--shards N`: the index from a Kubernetes Indexed Job's `JOB_COMPLETION_INDEX` (0-based).
    pub fn from_job_index(count: usize, index: Option<&str>) -> Result<Self, ShardError> {
        let index = index.ok_or_else(|| ShardError::Index("it is not set".into()))?;
        let zero_based: usize =
            index.trim().parse().map_err(|_| ShardError::Index(format!("`{index}` is not a number")))?;
        Self::new(zero_based + 1, count)
    }

    /// This shard's part of `total`.
    pub fn split(self, total: usize) -> usize {
        total / self.count + usize::from(self.index <= total % self.count)
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_parts_add_up_to_the_whole_and_differ_by_one_at_most() {
        for count in 1..=7 {
            for total in [0, 1, 5, 16, 17, 100, 1001] {
                let parts: Vec<usize> = (1..=count).map(|k| Shard::new(k, count).unwrap().split(total)).collect();
                assert_eq!(parts.iter().sum::<usize>(), total, "{total} over {count}: {parts:?}");
                assert!(parts.iter().max().unwrap() - parts.iter().min().unwrap() <= 1);
                assert!(parts.windows(2).all(|w| w[0] >= w[1]), "the first shards take the remainder");
            }
        }
    }

    #[test]
    fn shards_are_parsed_and_bounded() {
        assert_eq!(Shard::parse("2/4"), Ok(Shard { index: 2, count: 4 }));
        assert!(matches!(Shard::parse("0/4"), Err(ShardError::Range { .. })));
        assert!(matches!(Shard::parse("5/4"), Err(ShardError::Range { .. })));
        assert!(matches!(Shard::parse("2"), Err(ShardError::Syntax(_))));
        assert!(matches!(Shard::parse("1/100000"), Err(ShardError::TooMany)));
        assert_eq!(Shard::from_job_index(3, Some("0")), Ok(Shard { index: 1, count: 3 }));
        assert!(matches!(Shard::from_job_index(3, Some("3")), Err(ShardError::Range { .. })));
        assert!(matches!(Shard::from_job_index(3, None), Err(ShardError::Index(_))));
    }
}

//! Joining through the seeds of `--join`: every attempt resolves their names again and
//! announces to each; the pause between attempts doubles up to a ceiling, and attempts go
//! on until some member answers. They start again whenever no other member is left alive
//! (the seeds may be back by then), so a node cut off from the cluster finds it again.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

const FIRST_PAUSE: Duration = Duration::from_secs(1);
const LONGEST_PAUSE: Duration = Duration::from_secs(10);

pub struct Joiner {
    seeds: Vec<String>,
    next_attempt: Option<Instant>,
    pause: Duration,
}

impl Joiner {
    /// Starts with an attempt due at once (none without seeds).
    pub fn new(seeds: Vec<String>, now: Instant) -> Joiner {
        let next_attempt = (!seeds.is_empty()).then_some(now);
        Joiner {
            seeds,
            next_attempt,
            pause: FIRST_PAUSE,
        }
    }

    pub fn has_seeds(&self) -> bool {
        !self.seeds.is_empty()
    }

    pub fn next_attempt(&self) -> Option<Instant> {
        self.next_attempt
    }

    /// The seeds' addresses if an attempt is due; the next one is then scheduled.
    pub fn attempt(&mut self, now: Instant) -> Option<Vec<SocketAddr>> {
        if self.next_attempt? > now {
            return None;
        }
        self.next_attempt = Some(now + self.pause);
        self.pause = (self.pause * 2).min(LONGEST_PAUSE);
        Some(self.seeds.iter().flat_map(|seed| resolve(seed)).collect())
    }

    /// Some member answered: no more attempts.
    pub fn joined(&mut self) {
        self.next_attempt = None;
        self.pause = FIRST_PAUSE;
    }

    /// Every other member is gone: try the seeds again, from the shortest pause.
    pub fn start_again(&mut self, now: Instant) {
        if self.has_seeds() && self.next_attempt.is_none() {
            self.next_attempt = Some(now);
        }
    }
}

fn resolve(seed: &str) -> Vec<SocketAddr> {
    match seed.to_socket_addrs() {
        Ok(addresses) => addresses.collect(),
        Err(error) => {
            tracing::info!("join: cannot resolve {seed} yet: {error}");
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_back_off_until_joined_and_start_again_when_alone() {
        let start = Instant::now();
        let mut joiner = Joiner::new(vec!["127.0.0.1:7946".into()], start);
        assert_eq!(
            joiner.attempt(start),
            Some(vec!["127.0.0.1:7946".parse().unwrap()])
        );
        assert_eq!(joiner.attempt(start), None);
        let mut at = start;
        let mut pauses = Vec::new();
        for _ in 0..6 {
            let next = joiner.next_attempt().unwrap();
            pauses.push((next - at).as_secs());
            at = next;
            assert!(joiner.attempt(at).is_some());
        }
        assert_eq!(pauses, [1, 2, 4, 8, 10, 10]);
        joiner.joined();
        assert_eq!(joiner.next_attempt(), None);
        joiner.start_again(at);
        assert_eq!(joiner.next_attempt(), Some(at));
    }

    #[test]
    fn without_seeds_nothing_is_attempted() {
        let now = Instant::now();
        let mut joiner = Joiner::new(Vec::new(), now);
        joiner.start_again(now);
        assert_eq!(joiner.next_attempt(), None);
    }
}

//! foca's timers: each is due at an instant; the agent's loop sleeps until the earliest.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

/// Timers by due time, in the order they were scheduled when due at the same instant.
pub struct TimerQueue<T> {
    heap: BinaryHeap<Reverse<Scheduled<T>>>,
    next_sequence: u64,
}

struct Scheduled<T> {
    due: Instant,
    sequence: u64,
    timer: T,
}

impl<T> PartialEq for Scheduled<T> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl<T> Eq for Scheduled<T> {}

impl<T> PartialOrd for Scheduled<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<T> Ord for Scheduled<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.due, self.sequence).cmp(&(other.due, other.sequence))
    }
}

impl<T> TimerQueue<T> {
    pub fn new() -> TimerQueue<T> {
        TimerQueue {
            heap: BinaryHeap::new(),
            next_sequence: 0,
        }
    }

    pub fn schedule(&mut self, now: Instant, after: Duration, timer: T) {
        self.heap.push(Reverse(Scheduled {
            due: now + after,
            sequence: self.next_sequence,
            timer,
        }));
        self.next_sequence += 1;
    }

    pub fn next_due(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse(scheduled)| scheduled.due)
    }

    /// The earliest timer if it is due at `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<T> {
        if self.next_due()? > now {
            return None;
        }
        self.heap.pop().map(|Reverse(scheduled)| scheduled.timer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timers_come_due_in_order() {
        let now = Instant::now();
        let mut queue = TimerQueue::new();
        queue.schedule(now, Duration::from_secs(2), "late");
        queue.schedule(now, Duration::from_secs(1), "first");
        queue.schedule(now, Duration::from_secs(1), "second");
        assert_eq!(queue.next_due(), Some(now + Duration::from_secs(1)));
        assert_eq!(queue.pop_due(now), None);
        let later = now + Duration::from_secs(1);
        assert_eq!(queue.pop_due(later), Some("first"));
        assert_eq!(queue.pop_due(later), Some("second"));
        assert_eq!(queue.pop_due(later), None);
        assert_eq!(queue.pop_due(now + Duration::from_secs(5)), Some("late"));
    }
}

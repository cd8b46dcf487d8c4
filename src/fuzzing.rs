//! Test builds only: what the fuzz tests of the parsers share (the `fuzz` modules of
//! `services/config` and `control/protocol`).
//!
//! - A counting global allocator, so that a test can assert that parsing one input never
//!   holds more than a bound of memory (measured on the calling thread).
//! - A bounded session: a fixed number of cases (`PROPTEST_CASES`, or the test's own
//!   default), run on a thread that must finish within a deadline, so that a hang fails
//!   the test instead of hanging `cargo test`.
//! - The seed corpus kept in `tests/fuzz-corpus/`, and a mutation engine (byte flips,
//!   insertions of dictionary words, deletions, duplications) for inputs close to real ones.
//!
//! The long form is a documented command: `PROPTEST_CASES=200000 cargo test fuzz_`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::Path;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use proptest::prelude::*;

/// Counts the bytes each thread holds; allocation itself is the system's.
struct Meter;

#[global_allocator]
static METER: Meter = Meter;

thread_local! {
    /// Bytes allocated and not yet freed by this thread (frees of memory allocated by
    /// another thread saturate at 0).
    static LIVE: Cell<usize> = const { Cell::new(0) };
    /// The highest `LIVE` since the last [`peak_bytes`] began.
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

fn grew(bytes: usize) {
    let _ = LIVE.try_with(|live| {
        let now = live.get().saturating_add(bytes);
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

fn shrank(bytes: usize) {
    let _ = LIVE.try_with(|live| live.set(live.get().saturating_sub(bytes)));
}

// SAFETY: every call goes to the system allocator with the caller's arguments unchanged;
// the counters only look at sizes, and const-initialised thread-locals without a
// destructor never allocate, so the meter cannot recurse into itself.
unsafe impl GlobalAlloc for Meter {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `alloc`'s contract, which we pass on.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            grew(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            grew(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator, i.e. from `System`, with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        shrank(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from `System` with `layout`; the caller checked `new_size`.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            shrank(layout.size());
            grew(new_size);
        }
        new
    }
}

/// Runs `work` and returns its result with the most memory it held at once, in bytes
/// (what this thread allocated during `work`, over what it held before).
pub fn peak_bytes<T>(work: impl FnOnce() -> T) -> (T, usize) {
    let base = LIVE.with(Cell::get);
    PEAK.with(|peak| peak.set(base));
    let result = work();
    (result, PEAK.with(Cell::get).saturating_sub(base))
}

/// The number of cases: `PROPTEST_CASES` if set (the long form), else `default`.
pub fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

/// Runs a fuzz session of `cases` cases on its own thread; fails if it panics or takes
/// longer than a minute plus 20 ms a case (a hang in a parser: a case takes about 1 ms),
/// and says how many cases ran in how long.
pub fn bounded_session(name: &str, cases: u32, session: impl FnOnce(u32) + Send + 'static) {
    let deadline = Duration::from_secs(60) + Duration::from_millis(20) * cases;
    let (done, finished) = mpsc::channel();
    let started = Instant::now();
    let worker = thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            session(cases);
            let _ = done.send(());
        })
        .expect("spawn the fuzz thread");
    match finished.recv_timeout(deadline) {
        Ok(()) => eprintln!("{name}: {cases} cases in {:.1?}", started.elapsed()),
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("{name}: no result after {deadline:?}: a parser hangs")
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            let failure = worker.join().err();
            let message = failure
                .as_ref()
                .and_then(|p| p.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            panic!("{name} failed: {message}");
        }
    }
}

/// Every file of `tests/fuzz-corpus/<folder>`, split into inputs by `split`.
pub fn corpus(folder: &str, split: impl Fn(Vec<u8>) -> Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz-corpus")
        .join(folder);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("corpus entry").path())
        .collect();
    files.sort();
    let inputs: Vec<_> = files
        .iter()
        .flat_map(|file| split(std::fs::read(file).expect("corpus file")))
        .collect();
    assert!(!inputs.is_empty(), "{} holds no input", dir.display());
    inputs
}

/// One edit of an input.
#[derive(Debug, Clone)]
pub enum Mutation {
    /// Put this word of the dictionary (by index) at this position (modulo the length).
    Insert(usize, usize),
    /// Replace the byte there by this one.
    Flip(usize, u8),
    /// Remove up to this many bytes from there.
    Delete(usize, usize),
    /// Repeat the bytes from there, up to this many, in place (grows nesting and lists).
    Duplicate(usize, usize),
}

/// Up to `max` mutations, for a dictionary of `words` entries.
pub fn mutations(words: usize, max: usize) -> impl Strategy<Value = Vec<Mutation>> {
    let one = prop_oneof![
        (any::<usize>(), 0..words).prop_map(|(at, word)| Mutation::Insert(at, word)),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Flip(at, byte)),
        (any::<usize>(), 1..64usize).prop_map(|(at, n)| Mutation::Delete(at, n)),
        (any::<usize>(), 1..256usize).prop_map(|(at, n)| Mutation::Duplicate(at, n)),
    ];
    proptest::collection::vec(one, 0..max)
}

/// `seed` with `edits` applied, each at its position modulo the current length.
pub fn mutate(seed: &[u8], edits: &[Mutation], dictionary: &[&str]) -> Vec<u8> {
    let mut bytes = seed.to_vec();
    for edit in edits {
        let len = bytes.len();
        let at = |n: usize| if len == 0 { 0 } else { n % (len + 1) };
        match *edit {
            Mutation::Insert(pos, word) => {
                let pos = at(pos);
                bytes.splice(pos..pos, dictionary[word].bytes());
            }
            Mutation::Flip(pos, byte) if len > 0 => bytes[pos % len] = byte,
            Mutation::Flip(..) => bytes.push(0),
            Mutation::Delete(pos, n) => {
                let pos = at(pos);
                bytes.drain(pos..(pos + n).min(len));
            }
            Mutation::Duplicate(pos, n) => {
                let pos = at(pos);
                let copy = bytes[pos..(pos + n).min(len)].to_vec();
                bytes.splice(pos..pos, copy);
            }
        }
    }
    bytes
}

#[test]
fn the_meter_sees_what_a_thread_holds() {
    let (held, peak) = peak_bytes(|| vec![1u8; 1 << 20]);
    assert!(peak >= 1 << 20, "{peak}");
    let ((), peak) = peak_bytes(|| drop(held));
    assert_eq!(peak, 0);
}

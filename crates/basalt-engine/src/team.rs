//! A small team of threads for basalt's own encoder: the embedding worker
//! thread plus `threads - 1` helpers that run each parallel step of a pass
//! with it.
//!
//! The encoder used to run on libgomp's team (llama.cpp's OpenMP threads).
//! libgomp's idle workers spin for about 300,000 `pause`s after every parallel
//! region before they sleep — 10–20 ms on this kind of CPU — so after each
//! Retrieve's query embedding one helper spun on a core for longer than the
//! whole request took, beside the server's other threads and the client on
//! a 2-core machine (`perf`: 38% of the server's samples under never-seen
//! queries). Here a helper spins only for [`SPIN`] after a step (longer than
//! any gap between two steps of one pass), then parks; the thread that posts
//! a step unparks it. Work is shared out by the caller's closure, which
//! normally takes items from a shared counter, so a helper that starts late
//! (woken from sleep, or its vCPU descheduled) just takes fewer items.

// The one lifetime erasure: a step's closure is borrowed by the helpers only
// while `run` waits for them (see the SAFETY line there).
#![expect(unsafe_code)]

use std::cell::Cell;
use std::marker::PhantomData;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a helper spins for the next step before it parks.
const SPIN: Duration = Duration::from_micros(200);

/// A step's closure with its lifetime erased; only dereferenced by a helper
/// that joined the step, while `Team::run` waits for it.
#[derive(Clone, Copy)]
struct Step(*const (dyn Fn(usize) + Sync));

// SAFETY: the pointee is `Sync` (called from several threads at once) and is
// only used while `Team::run` keeps it alive.
unsafe impl Send for Step {}

/// The current step's number and how many helpers may still join it, in one
/// word so that joining and closing a step are one atomic operation each.
fn state(epoch: u64, open: u64) -> u64 {
    epoch << 16 | open
}
const OPEN: u64 = 0xffff;

struct Shared {
    /// [`state`]: bumped for every step (and once more to stop).
    state: AtomicU64,
    step: Mutex<Option<Step>>,
    /// Helpers inside a step (joined or about to try).
    inside: AtomicUsize,
    /// A helper's closure panicked during the current step.
    panicked: AtomicBool,
    stop: AtomicBool,
    /// Per helper: it is parked (or about to park) waiting for a step.
    sleeping: Vec<AtomicBool>,
}

/// Owned by one thread at a time: not `Sync`, so two threads cannot post
/// steps at once, and a step's closure (which must be `Sync`) cannot hold
/// the team to post a step from inside another.
pub(crate) struct Team {
    shared: Arc<Shared>,
    helpers: Vec<JoinHandle<()>>,
    not_sync: PhantomData<Cell<()>>,
}

impl Team {
    /// The calling thread plus up to `threads - 1` helpers (fewer if the OS
    /// refuses a thread; the team still runs every step).
    pub(crate) fn new(threads: usize) -> Self {
        let wanted = (threads.max(1) - 1).min(OPEN as usize);
        let shared = Arc::new(Shared {
            state: AtomicU64::new(0),
            step: Mutex::new(None),
            inside: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            sleeping: (0..wanted).map(|_| AtomicBool::new(false)).collect(),
        });
        let mut helpers = Vec::with_capacity(wanted);
        for h in 0..wanted {
            let s = Arc::clone(&shared);
            match std::thread::Builder::new()
                .name("basalt-encoder".into())
                .spawn(move || helper(&s, h))
            {
                Ok(handle) => helpers.push(handle),
                Err(e) => {
                    tracing::warn!(error = %e, "encoder helper thread not started");
                    break;
                }
            }
        }
        Self {
            shared,
            helpers,
            not_sync: PhantomData,
        }
    }

    /// Members, the calling thread included.
    pub(crate) fn size(&self) -> usize {
        self.helpers.len() + 1
    }

    /// Wakes parked helpers ahead of the next step (they spin for [`SPIN`]
    /// once awake), so waking overlaps the caller's own work.
    pub(crate) fn wake(&self) {
        for (h, handle) in self.helpers.iter().enumerate() {
            if self.shared.sleeping[h].swap(false, Ordering::SeqCst) {
                handle.thread().unpark();
            }
        }
    }

    /// Runs `f(member)` on the calling thread (member 0) and on every helper
    /// that joins the step before the caller has finished its own call, and
    /// returns when all of those have finished; `Err` if any of them
    /// panicked. A helper still waking up when the caller is done is not
    /// waited for: `f` must share its work dynamically (see [`Items`]), so
    /// that whoever runs takes all of it.
    pub(crate) fn run(&self, f: &(dyn Fn(usize) + Sync)) -> Result<(), String> {
        let s = &*self.shared;
        let epoch = (s.state.load(Ordering::SeqCst) >> 16) + 1;
        if !self.helpers.is_empty() {
            // SAFETY: only the lifetime is erased. A helper calls the
            // closure only after joining this step (a successful
            // compare-exchange on `state` while it is open, with `inside`
            // raised first) and lowers `inside` after its call; this
            // function closes the step and then waits for `inside` to be
            // zero before it returns (the caller's own call is caught, so
            // it does not unwind past the wait), so `f` outlives every call.
            let step = Step(unsafe {
                std::mem::transmute::<
                    *const (dyn Fn(usize) + Sync + '_),
                    *const (dyn Fn(usize) + Sync),
                >(f)
            });
            *s.step.lock().unwrap_or_else(PoisonError::into_inner) = Some(step);
            s.state
                .store(state(epoch, self.helpers.len() as u64), Ordering::SeqCst);
            self.wake();
        }
        let own = catch_unwind(AssertUnwindSafe(|| f(0)));
        // Closed: a helper that has not joined by now does not.
        s.state.store(state(epoch, 0), Ordering::SeqCst);
        let started = Instant::now();
        while s.inside.load(Ordering::SeqCst) != 0 {
            if started.elapsed() < SPIN {
                std::hint::spin_loop();
            } else {
                // The helper's vCPU was taken away mid-step.
                std::thread::yield_now();
            }
        }
        let helper_panicked = s.panicked.swap(false, Ordering::AcqRel);
        if own.is_err() || helper_panicked {
            return Err("an encoder step panicked".into());
        }
        Ok(())
    }
}

impl Drop for Team {
    fn drop(&mut self) {
        let s = &self.shared;
        s.stop.store(true, Ordering::SeqCst);
        let epoch = (s.state.load(Ordering::SeqCst) >> 16) + 1;
        s.state.store(state(epoch, 0), Ordering::SeqCst);
        for handle in &self.helpers {
            handle.thread().unpark();
        }
        for handle in self.helpers.drain(..) {
            let _ = handle.join();
        }
    }
}

/// Helper `h` (member `h + 1`): waits for each step and joins it while it
/// is open.
fn helper(s: &Shared, h: usize) {
    let mut seen = 0;
    loop {
        let mut current = wait(s, h, seen);
        seen = current >> 16;
        if s.stop.load(Ordering::SeqCst) {
            return;
        }
        if current & OPEN == 0 {
            // Woken late: the step is closed already, and the caller is not
            // to wait for this helper.
            continue;
        }
        s.inside.fetch_add(1, Ordering::SeqCst);
        current = s.state.load(Ordering::SeqCst);
        let joined = loop {
            if current >> 16 != seen || current & OPEN == 0 {
                break false;
            }
            match s
                .state
                .compare_exchange(current, current - 1, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => break true,
                Err(now) => current = now,
            }
        };
        if joined {
            let step = *s.step.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(Step(f)) = step {
                // SAFETY: this helper joined the step `run` posted this
                // closure for, and `run` waits for `inside` (lowered below)
                // before the closure can go.
                let f = unsafe { &*f };
                if catch_unwind(AssertUnwindSafe(|| f(h + 1))).is_err() {
                    s.panicked.store(true, Ordering::Release);
                }
            }
        }
        s.inside.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Waits for a step other than `seen` and returns the state: spins for
/// [`SPIN`], then parks, and spins again when unparked (a [`Team::wake`]
/// ahead of a step). `sleeping[h]` is set before the state is checked again,
/// and the poster changes the state before it reads `sleeping[h]` (both
/// sequentially consistent), so either this thread sees the new step or the
/// poster sees it sleeping and unparks it.
fn wait(s: &Shared, h: usize, seen: u64) -> u64 {
    loop {
        let started = Instant::now();
        let mut spins = 0u32;
        loop {
            let now = s.state.load(Ordering::Acquire);
            if now >> 16 != seen {
                return now;
            }
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(64) && started.elapsed() >= SPIN {
                break;
            }
            std::hint::spin_loop();
        }
        s.sleeping[h].store(true, Ordering::SeqCst);
        let now = s.state.load(Ordering::SeqCst);
        if now >> 16 != seen {
            s.sleeping[h].store(false, Ordering::SeqCst);
            return now;
        }
        std::thread::park();
        s.sleeping[h].store(false, Ordering::SeqCst);
    }
}

/// Shares `items` out among the members running a step: each call hands the
/// next few (a quarter of an even share at a time), so members that start
/// late or run slower take fewer.
pub(crate) struct Items {
    next: AtomicUsize,
    len: usize,
    chunk: usize,
}

impl Items {
    pub(crate) fn new(len: usize, members: usize) -> Self {
        Self {
            next: AtomicUsize::new(0),
            len,
            chunk: len.div_ceil(members.max(1) * 4).max(1),
        }
    }

    /// The next range of items, or `None` when all are taken.
    pub(crate) fn take(&self) -> Option<std::ops::Range<usize>> {
        let from = self.next.fetch_add(self.chunk, Ordering::Relaxed);
        (from < self.len).then(|| from..(from + self.chunk).min(self.len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_item_runs_exactly_once_across_many_steps() {
        for threads in [1, 2, 3] {
            let team = Team::new(threads);
            assert_eq!(team.size(), threads);
            for step in 0..500 {
                let n = step % 37 + 1;
                let counts: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
                let items = Items::new(n, team.size());
                team.run(&|_| {
                    while let Some(r) = items.take() {
                        for i in r {
                            counts[i].fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
                .unwrap();
                assert!(counts.iter().all(|c| c.load(Ordering::Relaxed) == 1));
                if step % 100 == 0 {
                    // Long enough for the helpers to park: the next step
                    // must wake them.
                    std::thread::sleep(SPIN * 3);
                }
            }
        }
    }

    /// Runs a step in which the caller waits (up to 10 s) until `members`
    /// members are inside it.
    fn all_inside(team: &Team, members: usize, f: impl Fn(usize) + Sync) {
        let inside = AtomicUsize::new(0);
        team.run(&|m| {
            inside.fetch_add(1, Ordering::SeqCst);
            if m == 0 {
                let t = Instant::now();
                while inside.load(Ordering::SeqCst) < members && t.elapsed().as_secs() < 10 {
                    std::hint::spin_loop();
                }
            }
            f(m);
        })
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(inside.load(Ordering::SeqCst), members);
    }

    #[test]
    fn helpers_wake_and_join_steps_after_parking() {
        let team = Team::new(3);
        let ran: Vec<AtomicUsize> = (0..3).map(|_| AtomicUsize::new(0)).collect();
        for step in 0..60 {
            if step % 20 == 0 {
                std::thread::sleep(SPIN * 5);
            }
            all_inside(&team, 3, |m| {
                ran[m].fetch_add(1, Ordering::Relaxed);
            });
        }
        assert!(ran.iter().all(|c| c.load(Ordering::Relaxed) == 60));
    }

    #[test]
    fn a_panicking_step_is_an_error_and_the_team_goes_on() {
        let team = Team::new(2);
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let inside = AtomicUsize::new(0);
        let failed = team.run(&|m| {
            inside.fetch_add(1, Ordering::SeqCst);
            let t = Instant::now();
            while inside.load(Ordering::SeqCst) < 2 && t.elapsed().as_secs() < 10 {
                std::hint::spin_loop();
            }
            assert!(m != 1, "helper fails");
        });
        std::panic::set_hook(hook);
        assert!(failed.is_err());
        all_inside(&team, 2, |_| {});
    }
}

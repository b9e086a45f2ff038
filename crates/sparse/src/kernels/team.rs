//! A spinning thread team for the many small products of a decode step.
//!
//! Decoding one token runs about two hundred GEMVs of 0.4–7 MB each, with a little serial work
//! (norms, rotary embedding, attention) between them. Through rayon's fork/join every product
//! has to reach the other workers, and a worker that found nothing to do for a few dozen rounds
//! sleeps on a futex: a 70%-sparse decode of the default model on two threads made 5010 context
//! switches in 200 tokens, and `sched_yield`, futex waits and wake-ups took ~16% of its CPU
//! samples. [`run`] keeps the pool's other workers spinning for the length of a closure
//! instead: they take blocks of the products the closure posts ([`Team::split`]) and, between
//! products, run whatever rayon work is pending (the attention heads) through
//! [`rayon::yield_now`], so they neither sleep nor wait to be woken.
//!
//! Inside [`run`] the row-splitting entry points of [`super`] post to the team instead of
//! forking through rayon. The blocks are the same either way and every block writes only its own
//! rows, so each output keeps its digits.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

/// The closure of a posted product, its lifetime erased (see [`Team::split`]).
type BlockFn = *const (dyn Fn(usize) + Sync);

/// One posted product: `blocks` calls `f(i)`, `i < blocks`, claimed one at a time.
struct Job {
    f: BlockFn,
    blocks: usize,
    /// The next unclaimed block.
    next: usize,
}

// SAFETY: `f` points to a `Sync` closure, so calling it from another thread is sound; the
// pointer is dereferenced only while the posting thread waits inside `Team::split` (see there).
unsafe impl Send for Job {}

/// What the leader and its helpers share.
pub(crate) struct Team {
    job: Mutex<Option<Job>>,
    /// Whether `job` may have unclaimed blocks (read without the lock by idle helpers).
    posted: AtomicBool,
    /// Blocks of the current job that have finished (or unwound).
    finished: AtomicUsize,
    /// Set when the leader's closure has returned or unwound: the helpers leave.
    stop: AtomicBool,
}

thread_local! {
    /// The team this thread leads, while inside [`run`]'s closure.
    static LEADING: Cell<*const Team> = const { Cell::new(std::ptr::null()) };
    /// Whether this thread is a helper of a team (rayon work it picks up while helping must not
    /// start a team of its own: that broadcast would wait for the busy leader).
    static HELPING: Cell<bool> = const { Cell::new(false) };
}

/// Sets a flag when dropped, also while unwinding.
struct SetOnDrop<'a>(&'a AtomicBool);

impl Drop for SetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// Counts a block as finished when dropped, also while unwinding (so a panicking block cannot
/// leave its poster waiting forever; the panic then surfaces from [`run`]).
struct FinishOnDrop<'a>(&'a AtomicUsize);

impl Drop for FinishOnDrop<'_> {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::AcqRel);
    }
}

/// Clears this thread's [`HELPING`] when dropped.
struct ResetHelping;

impl Drop for ResetHelping {
    fn drop(&mut self) {
        HELPING.with(|h| h.set(false));
    }
}

/// Puts back this thread's previous [`LEADING`] when dropped.
struct RestoreLeading(*const Team);

impl Drop for RestoreLeading {
    fn drop(&mut self) {
        LEADING.with(|l| l.set(self.0));
    }
}

/// Runs `f` on a worker of the current rayon pool while every other worker spins as a helper
/// of the products `f` posts, and returns its result. With a single worker, or from inside
/// another `run` (on its leader or its helpers), it just calls `f`.
///
/// # Panics
/// Re-raises a panic of `f` or of a product's block, after every helper has left.
pub fn run<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if rayon::current_num_threads() <= 1
        || !LEADING.with(Cell::get).is_null()
        || HELPING.with(Cell::get)
    {
        return f();
    }
    let team = Team {
        job: Mutex::new(None),
        posted: AtomicBool::new(false),
        finished: AtomicUsize::new(0),
        stop: AtomicBool::new(false),
    };
    let f = Mutex::new(Some(f));
    let out = Mutex::new(None);
    let claimed = AtomicBool::new(false);
    // Every worker runs this once: the first to arrive leads, the others help until it is done.
    rayon::broadcast(|_| {
        if claimed.swap(true, Ordering::AcqRel) {
            HELPING.with(|h| h.set(true));
            let _reset = ResetHelping;
            team.help();
            return;
        }
        let _stop = SetOnDrop(&team.stop);
        let f = f.lock().ok().and_then(|mut g| g.take());
        if let Some(f) = f {
            let _restore = RestoreLeading(LEADING.with(|l| l.replace(&team)));
            let r = f();
            if let Ok(mut o) = out.lock() {
                *o = Some(r);
            }
        }
    });
    match out.into_inner() {
        Ok(Some(r)) => r,
        // The leader stores a result unless `f` panicked, and then `broadcast` re-raised it.
        _ => unreachable!("the team's leader returned no result"),
    }
}

/// Runs `f(i, &mut parts[i])` for every part: spread over the team this thread leads (inside
/// [`run`]'s closure), else one part after the other on this thread. For small work of a decode
/// step other than products (the attention heads): the team's helpers are spinning anyway.
///
/// # Panics
/// Re-raises a panic of `f`, after every part has finished.
pub fn for_each_part<T: Send>(parts: Vec<T>, f: impl Fn(usize, &mut T) + Sync) {
    let untaken = with_current(|t| match t {
        Some(t) => {
            t.for_each_part(parts, &f);
            Vec::new()
        }
        None => parts,
    });
    for (i, mut p) in untaken.into_iter().enumerate() {
        f(i, &mut p);
    }
}

/// Calls `g` with the team this thread leads (inside [`run`]'s closure), or with `None`.
pub(crate) fn with_current<T>(g: impl FnOnce(Option<&Team>) -> T) -> T {
    let t = LEADING.with(Cell::get);
    // SAFETY: `LEADING` is non-null only while `run`'s closure is on this thread's stack, and
    // the team it points to lives in that `run`'s frame, below the closure; the reference
    // handed to `g` cannot escape `g`, which returns before that closure does.
    g(unsafe { t.as_ref() })
}

impl Team {
    /// Runs `f(i)` for every `i < blocks`, on this thread and on the helpers that are free,
    /// and returns when all have finished.
    pub(crate) fn split(&self, blocks: usize, f: &(dyn Fn(usize) + Sync)) {
        // SAFETY (lifetime erasure only; the types are the same fat pointer): a helper calls
        // `f` only for a block `i < blocks` it claimed under the lock while this job was in
        // the slot, and that block counts as finished only once the call has returned or
        // unwound. This function waits for all `blocks` blocks to finish and takes the job out
        // of the slot before it returns, so no thread touches `f` after the borrow ends.
        let f: BlockFn = unsafe { std::mem::transmute::<&(dyn Fn(usize) + Sync), BlockFn>(f) };
        self.finished.store(0, Ordering::Relaxed);
        if let Ok(mut j) = self.job.lock() {
            *j = Some(Job { f, blocks, next: 0 });
        }
        self.posted.store(true, Ordering::Release);
        // Waits for the helpers' blocks and empties the slot also if a block of ours unwinds.
        let _clear = ClearOnDrop { team: self, blocks };
        while let Some((f, i)) = self.claim() {
            let _done = FinishOnDrop(&self.finished);
            // SAFETY: `f` is the closure borrowed by this call.
            unsafe { (*f)(i) };
        }
    }

    /// Runs `f(i, &mut parts[i])` for every part, as [`split`](Self::split) runs its blocks:
    /// the parts are disjoint outputs (blocks of rows) that each claimed block works on.
    pub(crate) fn for_each_part<T: Send>(&self, parts: Vec<T>, f: impl Fn(usize, &mut T) + Sync) {
        // A lock per part only hands it to the thread that claimed its block; each block is
        // claimed once, so no lock is ever contended.
        let parts: Vec<Mutex<T>> = parts.into_iter().map(Mutex::new).collect();
        self.split(parts.len(), &|i| {
            if let Ok(mut p) = parts[i].lock() {
                f(i, &mut p);
            }
        });
    }

    /// Claims the next block of the posted job, if it has one left.
    fn claim(&self) -> Option<(BlockFn, usize)> {
        let mut g = self.job.lock().ok()?;
        let job = g.as_mut()?;
        if job.next >= job.blocks {
            self.posted.store(false, Ordering::Relaxed);
            return None;
        }
        let i = job.next;
        job.next += 1;
        Some((job.f, i))
    }

    /// A helper's loop until the leader is done: run posted blocks, else pending rayon work,
    /// else spin.
    fn help(&self) {
        while !self.stop.load(Ordering::Acquire) {
            if self.posted.load(Ordering::Acquire) {
                if let Some((f, i)) = self.claim() {
                    let _done = FinishOnDrop(&self.finished);
                    // SAFETY: the block was claimed under the lock while its job was in the
                    // slot, so the poster is inside `split` until this call has returned.
                    unsafe { (*f)(i) };
                }
                continue;
            }
            match rayon::yield_now() {
                Some(rayon::Yield::Executed) => {}
                _ => std::hint::spin_loop(),
            }
        }
    }
}

/// The end of [`Team::split`]: waits until all `blocks` blocks have finished, then empties the
/// job slot.
struct ClearOnDrop<'a> {
    team: &'a Team,
    blocks: usize,
}

impl Drop for ClearOnDrop<'_> {
    fn drop(&mut self) {
        while self.team.finished.load(Ordering::Acquire) < self.blocks {
            std::hint::spin_loop();
        }
        if let Ok(mut j) = self.team.job.lock() {
            *j = None;
        }
        self.team.posted.store(false, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rayon::prelude::*;

    fn pool(n: usize) -> rayon::ThreadPool {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .expect("thread pool")
    }

    #[test]
    fn split_runs_every_block_once_on_both_threads() {
        let p = pool(2);
        let (counts, threads) = p.install(|| {
            run(|| {
                let counts: Vec<AtomicUsize> = (0..64).map(|_| AtomicUsize::new(0)).collect();
                let seen: Mutex<std::collections::HashSet<usize>> = Mutex::default();
                for _ in 0..200 {
                    with_current(|t| {
                        let t = t.expect("inside run");
                        t.split(counts.len(), &|i| {
                            counts[i].fetch_add(1, Ordering::Relaxed);
                            // Slow blocks, so that the helper takes some of them.
                            std::thread::sleep(std::time::Duration::from_micros(20));
                            if let Some(w) = rayon::current_thread_index() {
                                seen.lock().expect("lock").insert(w);
                            }
                        })
                    });
                }
                let threads = seen.lock().expect("lock").len();
                (counts, threads)
            })
        });
        assert!(counts.iter().all(|c| c.load(Ordering::Relaxed) == 200));
        assert_eq!(threads, 2, "the helper took no block");
    }

    #[test]
    fn outside_run_there_is_no_team_and_nested_runs_call_through() {
        let p = pool(2);
        assert!(with_current(|t| t.is_none()));
        let v = p.install(|| run(|| run(|| with_current(|t| t.is_some()))));
        assert!(v);
        // Rayon work a helper picks up may call `run` too: it runs there without a team.
        let nested = p.install(|| {
            run(|| {
                (0..64)
                    .into_par_iter()
                    .map(|_| {
                        std::thread::sleep(std::time::Duration::from_micros(50));
                        run(|| 1usize)
                    })
                    .sum::<usize>()
            })
        });
        assert_eq!(nested, 64);
        // One worker: no team.
        assert!(!pool(1).install(|| run(|| with_current(|t| t.is_some()))));
    }

    #[test]
    fn for_each_part_runs_every_part_once_with_or_without_a_team() {
        let p = pool(2);
        for teamed in [false, true] {
            let mut out = vec![0usize; 9];
            let parts: Vec<&mut usize> = out.iter_mut().collect();
            let body = |parts| for_each_part(parts, |i, o: &mut &mut usize| **o += i + 1);
            if teamed {
                p.install(|| run(|| body(parts)));
            } else {
                body(parts);
            }
            assert_eq!(out, (1..=9).collect::<Vec<_>>(), "team: {teamed}");
        }
    }

    #[test]
    fn a_panicking_block_surfaces_from_run_without_hanging() {
        let p = pool(2);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            p.install(|| {
                run(|| {
                    with_current(|t| {
                        t.expect("inside run").split(8, &|i| {
                            if i == 5 {
                                panic!("block 5");
                            }
                        })
                    })
                })
            })
        }));
        assert!(r.is_err());
        // The pool still works afterwards.
        assert_eq!(p.install(|| run(|| 7)), 7);
    }

    #[test]
    fn products_inside_a_team_have_the_digits_of_rayon_products() {
        use crate::{Format, PackedMatrix, ValueDtype};
        let (rows, cols) = (3000, 576);
        let mut s = 1u64;
        let mut rnd = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        };
        let w: Vec<f32> = (0..rows * cols)
            .map(|_| if rnd() < 0.2 { 0.0 } else { rnd() })
            .collect();
        let x: Vec<f32> = (0..cols).map(|_| rnd()).collect();
        let p = pool(2);
        for fmt in [Format::Dense, Format::Bitmask] {
            let m =
                PackedMatrix::encode(&w, rows, cols, Some(fmt), ValueDtype::F32).expect("encode");
            let mut plain = vec![0.0; rows];
            p.install(|| m.gemv(&x, &mut plain));
            let mut teamed = vec![0.0; rows];
            p.install(|| run(|| m.gemv(&x, &mut teamed)));
            assert_eq!(plain, teamed, "{fmt:?}");
        }
    }
}

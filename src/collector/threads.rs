//! A small pool of reusable threads for blocking work: collections and `statvfs` calls.
//!
//! Why not tokio's blocking pool: it wakes its idle threads in turn (a condvar wakes the
//! longest waiter), so every thread it ever started stays busy enough never to reach its idle
//! timeout, and its size stays at the largest burst it has ever seen (measured: ~25 threads at
//! 1 s collection, one per collector). Here the most recently idle thread takes the next job,
//! so threads beyond what the work needs go idle and exit, and the pool shrinks back after a
//! burst. A thread stuck in a job (a hung collector, a dead NFS mount) is simply not idle, so
//! it costs one thread and delays nobody: a job that finds no idle thread starts a new one.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// One unit of work.
pub type Job = Box<dyn FnOnce() + Send>;

/// Idle threads, each reachable through its job channel, with an id so that one whose idle
/// time ran out can find and remove itself.
type IdleList = Vec<(u64, mpsc::Sender<Job>)>;

/// A pool of reusable threads; see the module documentation.
pub struct ThreadPool {
    name: &'static str,
    stack_size: usize,
    idle_timeout: Duration,
    max_idle: usize,
    idle: Mutex<IdleList>,
    /// Threads started so far (also the next id).
    started: AtomicU64,
}

impl ThreadPool {
    /// A pool whose threads are called `name`, have `stack_size` bytes of stack, exit after
    /// `idle_timeout` without work, and of which at most `max_idle` wait for work at once.
    pub fn new(
        name: &'static str,
        stack_size: usize,
        idle_timeout: Duration,
        max_idle: usize,
    ) -> Arc<Self> {
        Arc::new(ThreadPool {
            name,
            stack_size,
            idle_timeout,
            max_idle,
            idle: Mutex::new(Vec::new()),
            started: AtomicU64::new(0),
        })
    }

    /// Threads started since the pool was made.
    pub fn started(&self) -> u64 {
        self.started.load(Ordering::Relaxed)
    }

    /// Threads waiting for work right now.
    pub fn idle(&self) -> usize {
        self.lock_idle().len()
    }

    /// Locks the idle list; poisoning is harmless (pushes and pops leave it consistent).
    fn lock_idle(&self) -> MutexGuard<'_, IdleList> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `job` on the most recently idle thread, or on a new one when none is idle. Fails
    /// only if a thread is needed and cannot be started. A panicking job ends its thread.
    pub fn run(self: &Arc<Self>, job: Job) -> std::io::Result<()> {
        let mut job = job;
        loop {
            let idle = self.lock_idle().pop();
            let Some((_, tx)) = idle else { break };
            match tx.send(job) {
                Ok(()) => return Ok(()),
                // That thread ended meanwhile (its last job panicked): try the next one.
                Err(mpsc::SendError(j)) => job = j,
            }
        }
        let id = self.started.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel::<Job>();
        // Cannot fail: the receiver is alive right here.
        let _ = tx.send(job);
        let pool = Arc::clone(self);
        std::thread::Builder::new()
            .name(self.name.into())
            .stack_size(self.stack_size)
            .spawn(move || pool.work(id, tx, rx))
            .map(|_| ())
    }

    /// A pool thread: runs jobs, waits in the idle list between them, and exits after the
    /// idle timeout without work (or at once when the idle list is full).
    fn work(&self, id: u64, me: mpsc::Sender<Job>, rx: Receiver<Job>) {
        loop {
            match rx.recv_timeout(self.idle_timeout) {
                Ok(job) => {
                    job();
                    let mut idle = self.lock_idle();
                    if idle.len() >= self.max_idle {
                        return;
                    }
                    idle.push((id, me.clone()));
                }
                Err(RecvTimeoutError::Timeout) => {
                    let mut idle = self.lock_idle();
                    if let Some(i) = idle.iter().position(|(other, _)| *other == id) {
                        idle.swap_remove(i);
                        return;
                    }
                    // Someone took this thread just now; its job is on the way.
                }
                // Cannot happen while `me` is held; end rather than spin.
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool() -> Arc<ThreadPool> {
        ThreadPool::new("test-pool", 64 * 1024, Duration::from_secs(30), 4)
    }

    /// Waits (by yielding, not by a timed sleep) until `pool` has `n` idle threads.
    fn until_idle(pool: &ThreadPool, n: usize) {
        while pool.idle() < n {
            std::thread::yield_now();
        }
    }

    #[test]
    fn threads_are_reused_and_a_busy_one_is_not_shared() {
        let pool = pool();
        let (tx, rx) = mpsc::channel();
        let run = |job: Job| pool.run(job).unwrap();
        let t = tx.clone();
        run(Box::new(move || {
            t.send(std::thread::current().id()).unwrap()
        }));
        let first = rx.recv().unwrap();
        until_idle(&pool, 1);
        let t = tx.clone();
        run(Box::new(move || {
            t.send(std::thread::current().id()).unwrap()
        }));
        assert_eq!(rx.recv().unwrap(), first);
        assert_eq!(pool.started(), 1);

        // A thread blocked in its job (a hung collector) is not handed a second one.
        until_idle(&pool, 1);
        let (release, blocked) = mpsc::channel::<()>();
        run(Box::new(move || {
            let _ = blocked.recv();
        }));
        let t = tx.clone();
        run(Box::new(move || {
            t.send(std::thread::current().id()).unwrap()
        }));
        assert_ne!(rx.recv().unwrap(), first);
        assert_eq!(pool.started(), 2);
        release.send(()).unwrap();
        until_idle(&pool, 2);
    }

    #[test]
    fn the_most_recently_idle_thread_takes_the_next_job() {
        let pool = pool();
        let (tx, rx) = mpsc::channel();
        // Two threads busy at once, then both idle; the one that finished last is reused.
        let (go_a, wait_a) = mpsc::channel::<()>();
        let (go_b, wait_b) = mpsc::channel::<()>();
        let t = tx.clone();
        pool.run(Box::new(move || {
            let _ = wait_a.recv();
            t.send(("a", std::thread::current().id())).unwrap();
        }))
        .unwrap();
        let t = tx.clone();
        pool.run(Box::new(move || {
            let _ = wait_b.recv();
            t.send(("b", std::thread::current().id())).unwrap();
        }))
        .unwrap();
        go_a.send(()).unwrap();
        let (_, a) = rx.recv().unwrap();
        until_idle(&pool, 1);
        go_b.send(()).unwrap();
        let (_, b) = rx.recv().unwrap();
        until_idle(&pool, 2);
        let t = tx.clone();
        pool.run(Box::new(move || {
            t.send(("c", std::thread::current().id())).unwrap()
        }))
        .unwrap();
        let (_, c) = rx.recv().unwrap();
        assert_ne!(a, b);
        assert_eq!(c, b);
        assert_eq!(pool.started(), 2);
    }

    #[test]
    fn a_panicking_job_does_not_break_the_pool() {
        let pool = pool();
        pool.run(Box::new(|| panic!("job panics on purpose")))
            .unwrap();
        let (tx, rx) = mpsc::channel();
        pool.run(Box::new(move || tx.send(7).unwrap())).unwrap();
        assert_eq!(rx.recv().unwrap(), 7);
    }
}

#ifndef TLORA_TEAM_H
#define TLORA_TEAM_H

// The one pool of threads in tlora: a team of persistent workers that the C kernels (GEMM, the
// Jacobi SVD) and the Swift parallel loops (`Parallel` in TLoRANumerics) share. Workers are started
// once, on first need, and sleep between jobs, so a parallel call costs a wake-up, not a thread
// creation. One caller holds the team at a time; a second caller, or any code already running on a
// team thread, gets one thread (itself) and runs serially: two cores never serve nested or
// competing parallel work twice over.

/// A job: `thread` in 0..<`threads`; thread 0 is the caller's.
typedef void (*tlora_team_fn)(void *context, int thread, int threads);

/// The most threads a job can have (the caller and 15 workers).
#define TLORA_TEAM_MAX 16

/// Reserves the team for up to `threads` threads and returns how many the job gets (at least 1,
/// which reserves nothing). A result above 1 must be handed to `tlora_team_run` and then
/// `tlora_team_release`.
int tlora_team_acquire(int threads);
/// Runs `fn(context, t, threads)` for every t in 0..<`threads` (a value `tlora_team_acquire`
/// returned), t = 0 on this thread, and returns when all have returned. Every call runs as a worker
/// (`tlora_worker_depth() > 0`), so kernels inside stay on their thread.
void tlora_team_run(int threads, tlora_team_fn fn, void *context);
/// Gives the team back (nothing when `threads` is 1).
void tlora_team_release(int threads);
#endif

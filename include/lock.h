/*
 * lock.h - the spool locks that delivery agents honour: fcntl, dotlock
 * (spool_dir/USER.lock) and flock, in any configured combination.
 *
 * All locks of a set are taken without blocking; if any one is busy, all
 * held ones are released and the whole set is retried with back-off until
 * the deadline (lock_timeout).  Holding one lock while waiting for another
 * is what deadlocks two programs that take them in different orders;
 * retrying the whole set cannot.
 *
 * Dotlocks are made the NFS-safe way: a unique file is created and
 * link()ed to USER.lock, and success is judged by the unique file's link
 * count being 2 (link() may report failure over NFS after succeeding).  A
 * dotlock whose mtime is older than dotlock_stale seconds is removed as
 * stale; ours is refreshed (utime) while held, so it never looks stale.
 *
 * Who creates the dotlock is a callback: when the daemon runs as root the
 * session (which has dropped to the account and never has group mail)
 * asks the keeper process; otherwise it creates it itself.
 */
#ifndef MBOXPOP3D_LOCK_H
#define MBOXPOP3D_LOCK_H

#include <stdint.h>

enum dotlock_op { DOTLOCK_CREATE = 'C', DOTLOCK_REFRESH = 'R', DOTLOCK_REMOVE = 'D' };

/* Returns 0 on success, -1 with errno set (EEXIST/EWOULDBLOCK: busy). */
typedef int (*dotlock_fn)(void *ctx, enum dotlock_op op);

struct locker {
    unsigned kinds;           /* LOCK_KIND_* from config.h */
    unsigned timeout_secs;
    unsigned stale_secs;
    dotlock_fn dotlock;       /* NULL: dotlock_direct() on lock_path */
    void *dotlock_ctx;
    char *lock_path;          /* spool path + ".lock" */
    /* state */
    int held_fcntl, held_flock, held_dotlock;
    int64_t dotlock_refreshed_ms;
};

/* Sets up a locker for spool_path with the configured kinds. */
int locker_init(struct locker *lk, const char *spool_path, unsigned kinds,
                unsigned timeout_secs, unsigned stale_secs);
void locker_free(struct locker *lk);

/*
 * Takes every configured lock on fd (write: exclusive, else shared for
 * fcntl/flock; the dotlock is always exclusive).  Returns 0, or -1 with
 * errno EWOULDBLOCK after the timeout (mailbox in use), or another errno
 * for real failures; nothing is held after a failure.
 */
int locker_acquire(struct locker *lk, int fd, int write);

/* Refreshes our dotlock if it is older than a third of stale_secs. */
void locker_keepalive(struct locker *lk);

/* Releases everything held (safe if nothing is). */
void locker_release(struct locker *lk, int fd);

/*
 * The dotlock primitive itself, in the calling process.
 * Create: 0, or -1 with EEXIST if a live lock is held by someone else.
 */
int dotlock_direct(const char *lock_path, enum dotlock_op op,
                   unsigned stale_secs);

#endif

/*
 * update.h - UPDATE's rewrite of a spool, made crash-safe with a journal.
 *
 * The rewrite compacts the spool in place (never a new file renamed over
 * it: a deliverer that opened the old inode would lose its mail): the kept
 * byte ranges ("runs", in file order, the last one being the mail that
 * arrived during the session) are copied down to `dest`, then the file is
 * truncated.  Copying in place destroys data as it goes, so:
 *
 *  - Before anything is written, the plan (dest, runs, file size) goes
 *    into the journal and is fsynced.  Given the plan, every later state
 *    of the spool can be finished.
 *  - The copy runs in steps of at most `window` bytes of destination, in
 *    increasing order.  Before step k writes, a step record naming its
 *    destination range is written to the journal and fsynced; if the
 *    window overlaps the bytes it is copied from (the gap to the source is
 *    smaller than the window), the record carries the window's new
 *    contents (redo data).  After the window is written the spool is
 *    fsynced, so at most one window is ever in doubt.
 *  - A step never writes where a later step will read (sources lie at or
 *    after their destination, and windows advance), so after a crash the
 *    sources of the step in doubt and of every later step are intact,
 *    except those the window itself overwrote - which are in its redo data.
 *  - At the end a DONE record (new size, and a hash of the first bytes
 *    past it) is fsynced - the commit point: the client may be told now -
 *    then the spool is truncated and fsynced, and the journal is emptied
 *    and fsynced (then the caller removes it).  Truncating a big cached
 *    file takes the kernel long (0.7 s for 1 GB here), so a DELE of every
 *    message still goes through the journal, with one empty run.
 *
 * Recovery (under the spool's write locks, at the next open) redoes the
 * step in doubt and the rest of the plan, then truncates.  Mail delivered
 * after the crash was appended past the plan's end: the last run is
 * extended to the current end of file, so it is kept too.  A DONE record
 * whose truncation may or may not have happened is decided by the size
 * of the file and the hash of the bytes past the new end.
 *
 * Step records alternate between two slots, so a torn record write leaves
 * the previous one intact (it is redone: harmless, it is idempotent).
 * The journal is preallocated at its full size before the first write, so
 * a full disk stops UPDATE before the spool is touched, never half-way.
 *
 * Every read, write, fsync and truncate goes through struct upd_io, so a
 * test can record them, cut the sequence at any point, drop or keep any
 * unsynced write, and run recovery on the result.
 */
#ifndef MBOXPOP3D_UPDATE_H
#define MBOXPOP3D_UPDATE_H

#include <stddef.h>
#include <stdint.h>

enum upd_file { UPD_SPOOL = 0, UPD_JOURNAL = 1 };

struct upd_io {
    /* Exact reads (a short read is an error); -1 with errno on failure. */
    int (*pread)(void *ctx, enum upd_file f, void *buf, size_t len, uint64_t off);
    int (*pwrite)(void *ctx, enum upd_file f, const void *buf, size_t len, uint64_t off);
    int (*sync)(void *ctx, enum upd_file f);
    int (*truncate)(void *ctx, enum upd_file f, uint64_t len);
    int (*size)(void *ctx, enum upd_file f, uint64_t *len);
    /* Makes sure the journal can grow to len bytes (posix_fallocate). */
    int (*reserve)(void *ctx, enum upd_file f, uint64_t len);
    /* Called between steps (dotlock refresh); may be NULL. */
    void (*progress)(void *ctx);
    void *ctx;
    /* Called once, when the DONE record is on disk: from then on the
     * UPDATE completes whatever happens (now, or by recovery at the next
     * open), so the client can be told while the spool is truncated.
     * May be NULL. */
    void (*committed)(void *arg);
    void *committed_arg;
};

struct upd_run {
    uint64_t src, len;
};

struct upd_plan {
    uint64_t dest;          /* where the first run's first byte goes */
    uint64_t src_end;       /* size of the spool when planned */
    uint32_t window;        /* destination bytes per step */
    size_t nruns;
    struct upd_run *runs;   /* in file order; the last one is the tail */
};

#define UPD_DEFAULT_WINDOW (16u * 1024 * 1024)
#define UPD_MAX_RUNS (64u * 1024 * 1024)   /* bounds the journal header */

/* Journal bytes a plan needs (for the free-space check). */
uint64_t upd_journal_size(const struct upd_plan *plan);

/*
 * Runs the plan to completion: journal, steps, DONE, truncate, and the
 * journal emptied.  Returns 0 and the new spool size, or -1 with errno
 * and a reason in why.  *spool_touched says whether the spool was
 * written: if not, it is as it was; if so, the journal lets
 * upd_recover() finish the job.
 */
int upd_execute(const struct upd_io *io, const struct upd_plan *plan, uint64_t *new_size,
                int *spool_touched, char *why, size_t whylen);

/*
 * Finishes an interrupted UPDATE described by the journal, if any.
 * Returns 1 if it repaired the spool, 0 if there was nothing to do (empty
 * or unusable journal - an unusable one is only ever one whose header
 * never became durable, so the spool was not touched), -1 on error.
 */
int upd_recover(const struct upd_io *io, char *why, size_t whylen);

/* upd_io over two file descriptors (the daemon's real I/O). */
struct upd_fds {
    int fd[2];              /* [UPD_SPOOL], [UPD_JOURNAL] */
    void (*progress)(void *arg);
    void *progress_arg;
    void (*committed)(void *arg);   /* upd_io's */
    void *committed_arg;
};
void upd_io_fds(struct upd_io *io, struct upd_fds *fds);

#endif

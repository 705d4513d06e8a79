/* mailbox.c - the spool file: open and scan under locks, verify, send a
 * message, and UPDATE in place (see mailbox.h). */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <libgen.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "mailbox.h"
#include "util.h"

#define SEND_CHUNK (128 * 1024)
#define EARLY_REPLY_MIN_CUT (16u << 20)   /* see update_locked */

static enum mb_status fail(struct mailbox *mb, enum mb_status st, const char *fmt, ...)
    PRINTF_LIKE(3, 4);

static enum mb_status fail(struct mailbox *mb, enum mb_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(mb->why, sizeof mb->why, fmt, ap);
    va_end(ap);
    return st;
}

/*
 * Reading a mapping of a file that someone truncates raises SIGBUS.  The
 * spool is mapped only while we hold its locks, but a program that
 * ignores locks must not crash the session: the guard turns SIGBUS into
 * an error return.
 */
struct mapped_call {
    int (*fn)(const char *, size_t, void *);
    const char *data;
    size_t len;
    void *arg;
    int rc;
};

static void run_mapped(void *arg)
{
    struct mapped_call *c = arg;
    c->rc = c->fn(c->data, c->len, c->arg);
}

/* Maps [0, len) of fd and runs fn over it with the SIGBUS guard. */
static int with_mapping(int fd, size_t len, int (*fn)(const char *, size_t, void *), void *arg)
{
    if (len == 0)
        return fn("", 0, arg);
    void *map = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED)
        return -1;
    (void)madvise(map, len, MADV_SEQUENTIAL);
    struct sigaction sa = { .sa_handler = mbox_guard_sigbus }, old;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGBUS, &sa, &old);
    struct mapped_call call = { .fn = fn, .data = map, .len = len, .arg = arg };
    int rc;
    if (mbox_guard_call(run_mapped, &call) == 0) {
        rc = call.rc;
    } else {
        errno = EIO;
        rc = -2;           /* the file shrank under us */
    }
    sigaction(SIGBUS, &old, NULL);
    munmap(map, len);
    return rc;
}

struct scan_job {
    struct mbox_index *idx;
    unsigned flags;
    char err[160];
};

static int scan_fn(const char *data, size_t len, void *arg)
{
    struct scan_job *job = arg;
    return mbox_scan_opts(data, len, job->flags, job->idx, job->err, sizeof job->err);
}

static int hash_fn(const char *data, size_t len, void *arg)
{
    *(uint64_t *)arg = mbox_prefix_hash(data, len);
    return 0;
}

static void remember_identity(struct mailbox *mb, const struct stat *st)
{
    mb->dev = st->st_dev;
    mb->ino = st->st_ino;
    mb->size = st->st_size;
    mb->mtime = st->st_mtim;
    mb->ctime = st->st_ctim;
}

static int same_time(struct timespec a, struct timespec b)
{
    return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

static int same_identity(const struct mailbox *mb, const struct stat *st)
{
    return st->st_nlink > 0 && st->st_dev == mb->dev && st->st_ino == mb->ino &&
           st->st_size == mb->size && same_time(st->st_mtim, mb->mtime) &&
           same_time(st->st_ctim, mb->ctime);
}

/*
 * Can an unchanged identity stand in for hashing the file again before
 * UPDATE?  Every write, truncate, chmod or utime() sets a file's ctime to
 * the kernel's clock, which no program can set back (mutt and others do
 * set the mtime back).  So if the ctime we saw is older than the moment
 * our scan began, under the lock, any later change must show a later
 * ctime: git's "racily clean" rule.  Not trusted, and hashed instead:
 * timestamps of a whole second (nsec 0), a ctime within 10 ms of the scan
 * (the kernel stamps with its coarse clock, one tick behind), and network
 * or FUSE filesystems, whose ctimes come from another machine's clock.
 */
#define CTIME_MARGIN_NS 10000000LL
#define NFS_MAGIC 0x6969
#define SMB_MAGIC 0x517b
#define CIFS_MAGIC 0xff534d42u
#define SMB2_MAGIC 0xfe534d42u
#define FUSE_MAGIC 0x65735546
#define CEPH_MAGIC 0x00c36400

static int ctime_proves_identity(int fd, const struct stat *st, struct timespec scan_start)
{
    struct statfs fs;
    if (fstatfs(fd, &fs) != 0)
        return 0;
    switch ((unsigned long)fs.f_type) {
    case NFS_MAGIC: case SMB_MAGIC: case CIFS_MAGIC: case SMB2_MAGIC: case FUSE_MAGIC:
    case CEPH_MAGIC:
        return 0;
    default:
        break;
    }
    if (st->st_ctim.tv_nsec == 0)
        return 0;
    long long ctime_ns = (long long)st->st_ctim.tv_sec * 1000000000LL + st->st_ctim.tv_nsec;
    long long start_ns = (long long)scan_start.tv_sec * 1000000000LL + scan_start.tv_nsec;
    return start_ns - ctime_ns > CTIME_MARGIN_NS;
}

/* The spool path must still name the file we have open. */
static int still_same_file(struct mailbox *mb)
{
    struct stat st;
    return lstat(mb->path, &st) == 0 && st.st_dev == mb->dev && st.st_ino == mb->ino;
}

static enum mb_status scan_locked(struct mailbox *mb)
{
    struct stat st;
    struct timespec scan_start;
    if (clock_gettime(CLOCK_REALTIME_COARSE, &scan_start) != 0)
        scan_start = (struct timespec){ 0, 0 };
    if (fstat(mb->fd, &st) != 0)
        return fail(mb, MB_TEMP, "fstat %s: %s", mb->path, strerror(errno));
    struct scan_job job = { .idx = &mb->idx };
    job.flags = mb->scan_flags;
    int rc = with_mapping(mb->fd, (size_t)st.st_size, scan_fn, &job);
    if (rc == -1 && job.err[0])
        return fail(mb, MB_PERM, "%s: %s", mb->path, job.err);
    if (rc != 0)
        return fail(mb, MB_TEMP, "scanning %s: %s", mb->path, strerror(errno));
    remember_identity(mb, &st);
    mb->identity_exact = ctime_proves_identity(mb->fd, &st, scan_start);
    return MB_OK;
}

/* ---- the UPDATE journal's file ---- */

char *journal_path_for(const char *spool_path)
{
    char *dir_copy = strdup(spool_path), *base_copy = strdup(spool_path), *path = NULL;
    if (dir_copy && base_copy &&
        asprintf(&path, "%s/.%s.mboxpop3d-journal", dirname(dir_copy), basename(base_copy)) < 0)
        path = NULL;
    free(dir_copy);
    free(base_copy);
    return path;
}

/* A new directory entry is durable only once the directory is synced. */
static int sync_parent_dir(const char *path)
{
    char *copy = strdup(path);
    if (copy == NULL)
        return -1;
    int dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(copy);
    if (dfd < 0)
        return -1;
    int rc = fsync(dfd);
    close(dfd);
    return rc;
}

int journal_direct(const char *journal_path, enum journal_op op, uid_t owner)
{
    if (op == JOURNAL_REMOVE)
        return unlink(journal_path) == 0 || errno == ENOENT ? 0 : -1;
    const int flags = O_RDWR | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK | O_CLOEXEC;
    int created = 0;
    int fd = open(journal_path, flags);
    if (fd < 0 && errno == ENOENT && op == JOURNAL_CREATE) {
        fd = open(journal_path, flags | O_CREAT | O_EXCL, 0600);
        created = fd >= 0;
    }
    if (fd < 0)
        return -1;
    struct stat st;
    int bad = fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1;
    if (!bad && st.st_uid != owner) {
        errno = EPERM;      /* someone else's file: never trust it */
        bad = 1;
    }
    if (!bad && created && sync_parent_dir(journal_path) != 0)
        bad = 1;
    if (bad) {
        int saved = errno ? errno : EPERM;
        close(fd);
        if (created)
            unlink(journal_path);
        errno = saved;
        return -1;
    }
    return fd;
}

static int journal_call(struct mailbox *mb, enum journal_op op)
{
    if (mb->journal)
        return mb->journal(mb->journal_ctx, op);
    return journal_direct(mb->journal_path, op, geteuid());
}

int mbox_update_plan(const struct mbox_index *idx, uint64_t file_size, struct upd_plan *plan)
{
    memset(plan, 0, sizeof *plan);
    plan->window = UPD_DEFAULT_WINDOW;
    plan->src_end = file_size;
    size_t first = 0;
    while (first < idx->count && !idx->msgs[first].deleted)
        first++;
    plan->dest = first < idx->count ? msg_from_off(&idx->msgs[first]) : idx->scanned_size;
    plan->runs = malloc((idx->count - first + 1) * sizeof *plan->runs);
    if (plan->runs == NULL)
        return -1;
    for (size_t i = first; i <= idx->count; i++) {
        uint64_t start, end;
        if (i == idx->count) {            /* mail appended since the scan */
            start = idx->scanned_size;
            end = file_size;
        } else if (idx->msgs[i].deleted) {
            continue;
        } else {
            start = msg_from_off(&idx->msgs[i]);
            end = i + 1 < idx->count ? msg_from_off(&idx->msgs[i + 1]) : idx->scanned_size;
        }
        if (end == start && !(i == idx->count && plan->nruns == 0))
            continue;   /* an empty tail run only when nothing else moves */
        struct upd_run *last = plan->nruns ? &plan->runs[plan->nruns - 1] : NULL;
        if (last && last->src + last->len == start)
            last->len += end - start;
        else
            plan->runs[plan->nruns++] = (struct upd_run){ start, end - start };
    }
    /* The journal holds two windows: no bigger than what moves. */
    uint64_t total = 0;
    for (size_t i = 0; i < plan->nruns; i++)
        total += plan->runs[i].len;
    if (total < plan->window)
        plan->window = (uint32_t)((total + 4095) / 4096 * 4096);
    if (plan->window == 0)
        plan->window = 4096;
    return 0;
}

static enum mb_status open_spool(struct mailbox *mb, const struct mailbox_opts *o)
{
    mb->fd = open(mb->path, (o->read_only ? O_RDONLY : O_RDWR) | O_NOFOLLOW | O_NONBLOCK |
                                O_NOCTTY | O_CLOEXEC);
    if (mb->fd < 0) {
        if (errno == ENOENT)
            return MB_OK;       /* no mail yet: an empty mailbox */
        if (errno == ELOOP)
            return fail(mb, MB_PERM, "%s is a symbolic link: refused", mb->path);
        if (errno == EACCES || errno == EISDIR || errno == ENXIO)
            return fail(mb, MB_PERM, "cannot open %s: %s", mb->path, strerror(errno));
        return fail(mb, MB_TEMP, "cannot open %s: %s", mb->path, strerror(errno));
    }
    struct stat st;
    if (fstat(mb->fd, &st) != 0)
        return fail(mb, MB_TEMP, "fstat %s: %s", mb->path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return fail(mb, MB_PERM, "%s is not a regular file: refused", mb->path);
    if (o->check_owner && st.st_uid != o->owner)
        return fail(mb, MB_PERM, "%s is owned by uid %u, not by the account (uid %u): refused",
                    mb->path, (unsigned)st.st_uid, (unsigned)o->owner);
    int flags = fcntl(mb->fd, F_GETFL);
    if (flags < 0 || fcntl(mb->fd, F_SETFL, flags & ~O_NONBLOCK) < 0)
        return fail(mb, MB_TEMP, "fcntl %s: %s", mb->path, strerror(errno));
    return MB_OK;
}

static void keepalive(void *arg)
{
    locker_keepalive(arg);
}

/* Runs upd_recover() on an open journal, with the write locks held. */
static int run_recovery(struct mailbox *mb, int jfd)
{
    struct upd_fds fds = { .fd = { mb->fd, jfd }, .progress = keepalive,
                           .progress_arg = &mb->lock };
    struct upd_io io;
    upd_io_fds(&io, &fds);
    char why[256] = "";
    int rc = upd_recover(&io, why, sizeof why);
    if (rc > 0)
        log_warn("%s: finished an UPDATE that was interrupted (journal %s)", mb->path,
                 mb->journal_path);
    else if (why[0])
        log_warn("%s: %s", mb->path, why);
    return rc;
}

/* An UPDATE that was interrupted (crash, power loss) left its journal:
 * finish it before anything reads the spool. */
static enum mb_status recover_interrupted_update(struct mailbox *mb)
{
    int jfd = journal_call(mb, JOURNAL_OPEN);
    if (jfd < 0) {
        if (errno == ENOENT)
            return MB_OK;
        return fail(mb, MB_TEMP, "cannot open the update journal %s: %s", mb->journal_path,
                    strerror(errno));
    }
    if (locker_acquire(&mb->lock, mb->fd, 1) != 0) {
        close(jfd);
        if (errno == EWOULDBLOCK)
            return fail(mb, MB_IN_USE, "%s is locked by another program", mb->path);
        return fail(mb, MB_TEMP, "locking %s: %s", mb->path, strerror(errno));
    }
    int rc = run_recovery(mb, jfd);
    close(jfd);
    if (rc >= 0 && journal_call(mb, JOURNAL_REMOVE) != 0)
        log_errno("removing %s", mb->journal_path);
    locker_release(&mb->lock, mb->fd);
    if (rc < 0)
        return fail(mb, MB_TEMP, "could not finish the interrupted update of %s", mb->path);
    return MB_OK;
}

static enum mb_status refuse_if_journal(struct mailbox *mb)
{
    struct stat st;
    if (lstat(mb->journal_path, &st) == 0 && st.st_size > 0)
        return fail(mb, MB_TEMP, "%s has an interrupted UPDATE (%s) that the next login "
                                 "completes", mb->path, mb->journal_path);
    return MB_OK;
}

enum mb_status mailbox_open(struct mailbox *mb, const char *path, const struct mailbox_opts *o)
{
    memset(mb, 0, sizeof *mb);
    mb->fd = -1;
    mb->check_owner = o->check_owner;
    mb->scan_flags = o->scan_flags;
    mb->owner = o->owner;
    mb->path = strdup(path);
    if (mb->path == NULL ||
        locker_init(&mb->lock, path, o->lock_kinds, o->lock_timeout, o->dotlock_stale) != 0)
        return fail(mb, MB_TEMP, "out of memory");
    mb->lock.dotlock = o->dotlock;
    mb->lock.dotlock_ctx = o->dotlock_ctx;
    mb->journal = o->journal;
    mb->journal_ctx = o->dotlock_ctx;
    mb->journal_path = journal_path_for(path);
    if (mb->journal_path == NULL)
        return fail(mb, MB_TEMP, "out of memory");

    enum mb_status st = open_spool(mb, o);
    if (st != MB_OK || mb->fd < 0)
        return st;
    st = o->no_recovery ? refuse_if_journal(mb) : recover_interrupted_update(mb);
    if (st != MB_OK)
        return st;
    if (locker_acquire(&mb->lock, mb->fd, 0) != 0) {
        if (errno == EWOULDBLOCK)
            return fail(mb, MB_IN_USE, "%s is locked by another program", mb->path);
        return fail(mb, MB_TEMP, "locking %s: %s", mb->path, strerror(errno));
    }
    st = scan_locked(mb);
    locker_release(&mb->lock, mb->fd);
    return st;
}

/* Is the indexed part of the file still what we scanned?  MB_OK or MB_CHANGED. */
static enum mb_status check_prefix(struct mailbox *mb, const struct stat *st)
{
    if (st->st_nlink == 0 || !still_same_file(mb))
        return fail(mb, MB_CHANGED, "%s was replaced by another program", mb->path);
    if ((uint64_t)st->st_size < mb->idx.scanned_size)
        return fail(mb, MB_CHANGED, "%s shrank from %llu to %llu bytes: another program rewrote it",
                    mb->path, (unsigned long long)mb->idx.scanned_size,
                    (unsigned long long)st->st_size);
    uint64_t hash = 0;
    int rc = with_mapping(mb->fd, (size_t)mb->idx.scanned_size, hash_fn, &hash);
    if (rc == -2)
        return fail(mb, MB_CHANGED, "%s shrank while being checked", mb->path);
    if (rc != 0)
        return fail(mb, MB_TEMP, "reading %s: %s", mb->path, strerror(errno));
    if (hash != mb->idx.prefix_hash)
        return fail(mb, MB_CHANGED, "the first %llu bytes of %s changed: another program rewrote it",
                    (unsigned long long)mb->idx.scanned_size, mb->path);
    return MB_OK;
}

enum mb_status mailbox_verify(struct mailbox *mb)
{
    if (mb->fd < 0)
        return MB_OK;
    struct stat st;
    if (fstat(mb->fd, &st) != 0)
        return fail(mb, MB_TEMP, "fstat %s: %s", mb->path, strerror(errno));
    if (same_identity(mb, &st))
        return MB_OK;
    enum mb_status r = check_prefix(mb, &st);
    if (r == MB_OK) {
        remember_identity(mb, &st);   /* mail was appended: fine */
        mb->identity_exact = 0;       /* that ctime is no older than now */
    }
    return r;
}

/* Streams file bytes [off, off+len) through the writer; stops early when
 * *lines_left (if given) reaches 0. */
static enum mb_status send_range(struct mailbox *mb, struct mlwriter *w, char *buf,
                                 uint64_t off, uint64_t len, uint64_t *lines_left)
{
    while (len > 0 && !(lines_left && *lines_left == 0)) {
        size_t n = len < SEND_CHUNK ? (size_t)len : SEND_CHUNK;
        if (pread_exact(mb->fd, buf, n, (off_t)off) != 0)
            return fail(mb, MB_TEMP, "reading %s: %s", mb->path, strerror(errno));
        mlw_data(w, buf, n, lines_left);
        off += n;
        len -= n;
    }
    return MB_OK;
}

enum mb_status mailbox_send(struct mailbox *mb, size_t i, int64_t body_lines, struct netio *io)
{
    const struct msg *m = &mb->idx.msgs[i];
    /* One buffer for the session: a RETR of a small message must not pay
     * for an allocation (128 KB would be an mmap and munmap each time). */
    if (mb->send_buf == NULL && (mb->send_buf = malloc(SEND_CHUNK)) == NULL)
        return fail(mb, MB_TEMP, "out of memory");
    char *buf = mb->send_buf;
    struct mlwriter w;
    mlw_begin(&w, io);
    enum mb_status st;
    if (body_lines < 0) {
        st = send_range(mb, &w, buf, m->content_off, msg_content_len(&mb->idx, i), NULL);
    } else {
        st = send_range(mb, &w, buf, m->content_off, m->header_len, NULL);
        if (!m->has_blank) {
            /* RFC 1939 TOP: headers, the blank line, then body lines. */
            if (!w.at_line_start)
                mlw_data(&w, "\n", 1, NULL);
            mlw_data(&w, "\n", 1, NULL);
        }
        uint64_t lines = (uint64_t)body_lines;
        if (st == MB_OK)
            st = send_range(mb, &w, buf, m->content_off + m->header_len,
                            msg_content_len(&mb->idx, i) - m->header_len, &lines);
    }
    if (st == MB_OK)
        mlw_end(&w);
    return st;
}

/* Bytes a plan moves, and bytes its final truncation cuts off. */
static uint64_t plan_moves(const struct upd_plan *plan)
{
    uint64_t n = 0;
    for (size_t i = 0; i < plan->nruns; i++)
        n += plan->runs[i].len;
    return n;
}

static uint64_t plan_cut(const struct upd_plan *plan)
{
    return plan->src_end - (plan->dest + plan_moves(plan));
}

/* Deletes by truncation alone: nothing to move, so nothing to journal. */
static enum mb_status truncate_only(struct mailbox *mb, uint64_t size)
{
    if (ftruncate(mb->fd, (off_t)size) != 0 || fdatasync(mb->fd) != 0)
        return fail(mb, MB_TEMP, "truncating %s: %s", mb->path, strerror(errno));
    return MB_OK;
}

/* early: tell the caller at the commit point (mb->on_commit). */
static enum mb_status run_plan(struct mailbox *mb, const struct upd_plan *plan, int jfd,
                               int early)
{
    struct upd_fds fds = { .fd = { mb->fd, jfd }, .progress = keepalive,
                           .progress_arg = &mb->lock };
    if (early) {
        fds.committed = mb->on_commit;
        fds.committed_arg = mb->on_commit_arg;
    }
    struct upd_io io;
    upd_io_fds(&io, &fds);
    uint64_t new_size;
    int touched = 0;
    char why[256];
    if (upd_execute(&io, plan, &new_size, &touched, why, sizeof why) == 0)
        return MB_OK;
    log_err("%s: UPDATE failed: %s", mb->path, why);
    if (!touched) {
        if (ftruncate(jfd, 0) != 0)
            log_errno("emptying %s", mb->journal_path);
        return fail(mb, MB_TEMP, "%s", why);
    }
    /* Half done: the journal can finish it now, or at the next open. */
    if (run_recovery(mb, jfd) > 0)
        return MB_OK;
    return fail(mb, MB_DEFERRED, "%s", why);
}

static enum mb_status update_locked(struct mailbox *mb)
{
    struct stat st;
    if (fstat(mb->fd, &st) != 0)
        return fail(mb, MB_TEMP, "fstat %s: %s", mb->path, strerror(errno));
    /* Under the write lock: the indexed part must be what we scanned. */
    if (!(mb->identity_exact && same_identity(mb, &st) && still_same_file(mb))) {
        enum mb_status r = check_prefix(mb, &st);
        if (r != MB_OK)
            return r;
    }
    enum mb_status r;
    struct upd_plan plan;
    if (mbox_update_plan(&mb->idx, (uint64_t)st.st_size, &plan) != 0)
        return fail(mb, MB_TEMP, "out of memory planning the update");
    /* Truncating drops the file's cached pages, which takes the kernel
     * long for a big cut (0.7 s a GB): then the client hears +OK at the
     * journal's commit point.  A small cut with nothing to move is one
     * ftruncate, without a journal, so that deleting works on a full disk;
     * so is a big one whose journal cannot be made. */
    int early = mb->on_commit != NULL && plan_cut(&plan) >= EARLY_REPLY_MIN_CUT;
    int moves = plan_moves(&plan) > 0;
    if (!moves && !early) {
        free(plan.runs);
        return truncate_only(mb, plan.dest);
    }
    int jfd = journal_call(mb, JOURNAL_CREATE);
    if (jfd < 0) {
        r = fail(mb, MB_TEMP, "cannot create the update journal %s: %s", mb->journal_path,
                 strerror(errno));
        if (!moves)
            r = truncate_only(mb, plan.dest);
        free(plan.runs);
        return r;
    }
    struct stat jst;
    if (fstat(jfd, &jst) != 0 || jst.st_size != 0) {
        /* Another session's interrupted update: finish it, delete nothing now. */
        run_recovery(mb, jfd);
        r = fail(mb, MB_CHANGED, "%s had an unfinished update by another session", mb->path);
    } else {
        r = run_plan(mb, &plan, jfd, early);
        if (r == MB_TEMP && !moves)         /* no room for the journal: untouched */
            r = truncate_only(mb, plan.dest);
    }
    close(jfd);
    free(plan.runs);
    if (r != MB_DEFERRED && journal_call(mb, JOURNAL_REMOVE) != 0)
        log_errno("removing %s", mb->journal_path);
    return r;
}

enum mb_status mailbox_update(struct mailbox *mb)
{
    size_t deleted = 0;
    for (size_t i = 0; i < mb->idx.count; i++)
        deleted += mb->idx.msgs[i].deleted;
    if (deleted == 0 || mb->fd < 0)
        return MB_OK;    /* nothing to do: the file is not touched */
    if (locker_acquire(&mb->lock, mb->fd, 1) != 0)
        return fail(mb, MB_TEMP, "cannot lock %s for update: %s", mb->path,
                    errno == EWOULDBLOCK ? "locked by another program" : strerror(errno));
    enum mb_status r = update_locked(mb);
    locker_release(&mb->lock, mb->fd);
    return r;
}

void mailbox_close(struct mailbox *mb)
{
    if (mb->fd >= 0)
        close(mb->fd);
    mb->fd = -1;
    mbox_index_free(&mb->idx);
    locker_free(&mb->lock);
    free(mb->send_buf);
    mb->send_buf = NULL;
    free(mb->path);
    free(mb->journal_path);
    mb->path = mb->journal_path = NULL;
}

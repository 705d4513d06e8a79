/* update.c - the journaled in-place compaction of a spool (see update.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "mailbox.h"
#include "update.h"
#include "util.h"

#define HEADER_MAGIC "MBXPJNL1"
#define STEP_MAGIC "MBXPSTEP"
#define DONE_MAGIC "MBXPDONE"
#define RECORD_LEN 64                  /* a record's fixed part */
#define JOURNAL_ALIGN 4096
#define SAMPLE_MAX (64 * 1024)         /* bytes hashed past the new end */
#define MAX_WINDOW (256u * 1024 * 1024)

struct record {
    char magic[8];
    uint64_t seq;
    uint64_t pos;         /* STEP: window start;  DONE: new size */
    uint64_t len;         /* STEP: window length; DONE: end of the sources */
    uint64_t data_len;    /* STEP: 0 or len;      DONE: sample length */
    uint64_t data_hash;   /* of the data / of the sample */
    uint64_t rec_hash;    /* of the fields above */
    uint64_t pad;
};

_Static_assert(sizeof(struct record) == RECORD_LEN, "record layout");

/* The plan with what is derived from it. */
struct job {
    const struct upd_io *io;
    struct upd_plan plan;        /* runs owned by the job */
    uint64_t *cum;               /* cum[i]: bytes of runs before run i */
    uint64_t total, new_size;
    uint64_t slot_base, slot_size;
    uint64_t seq;
    int touched;                 /* the spool has been written to */
    char *buf;                   /* one window */
    char *why;
    size_t whylen;
};

static int failed(struct job *j, const char *fmt, ...) PRINTF_LIKE(2, 3);

static int failed(struct job *j, const char *fmt, ...)
{
    int saved = errno;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(j->why, j->whylen, fmt, ap);
    va_end(ap);
    errno = saved ? saved : EIO;
    return -1;
}

static uint64_t align_up(uint64_t n)
{
    return (n + JOURNAL_ALIGN - 1) / JOURNAL_ALIGN * JOURNAL_ALIGN;
}

static uint64_t header_len(size_t nruns)
{
    return 8 + 4 * 8 + (uint64_t)nruns * 16 + 8;
}

uint64_t upd_journal_size(const struct upd_plan *plan)
{
    return align_up(header_len(plan->nruns)) + 2 * align_up(RECORD_LEN + (uint64_t)plan->window);
}

/* Derives totals and lookup tables; checks the plan is one we can run. */
static int job_init(struct job *j, const struct upd_io *io, const struct upd_plan *plan,
                    char *why, size_t whylen)
{
    memset(j, 0, sizeof *j);
    j->io = io;
    j->why = why;
    j->whylen = whylen;
    j->plan = *plan;
    if (plan->window == 0 || plan->window > MAX_WINDOW || plan->nruns == 0 ||
        plan->nruns > UPD_MAX_RUNS)
        return failed(j, "invalid update plan (window %u, %zu runs)", plan->window, plan->nruns);
    /* One spare run: mail delivered after a crash (extend_tail). */
    j->plan.runs = malloc((plan->nruns + 1) * sizeof *plan->runs);
    j->cum = malloc((plan->nruns + 1) * sizeof *j->cum);
    j->buf = malloc(plan->window);
    if (!j->plan.runs || !j->cum || !j->buf)
        return failed(j, "out of memory for the update plan");
    memcpy(j->plan.runs, plan->runs, plan->nruns * sizeof *plan->runs);
    uint64_t prev_end = plan->dest;
    for (size_t i = 0; i < plan->nruns; i++) {
        const struct upd_run *r = &plan->runs[i];
        if (r->src < prev_end || r->len > plan->src_end || r->src > plan->src_end - r->len) {
            errno = EINVAL;
            return failed(j, "invalid update plan: run %zu", i);
        }
        j->cum[i] = j->total;
        j->total += r->len;
        prev_end = r->src + r->len;
    }
    j->new_size = plan->dest + j->total;
    j->slot_base = align_up(header_len(plan->nruns));
    j->slot_size = align_up(RECORD_LEN + (uint64_t)plan->window);
    return 0;
}

static void job_free(struct job *j)
{
    free(j->plan.runs);
    free(j->cum);
    free(j->buf);
}

/* Mail delivered since the plan was made sits past its end: it is kept,
 * as the last run, grown or (when the plan ended with deleted bytes, so
 * its last run stops short of src_end) added. */
static void extend_tail(struct job *j, uint64_t file_end)
{
    if (file_end <= j->plan.src_end)
        return;
    uint64_t more = file_end - j->plan.src_end;
    struct upd_run *last = &j->plan.runs[j->plan.nruns - 1];
    if (last->src + last->len != j->plan.src_end) {
        j->cum[j->plan.nruns] = j->total;
        j->plan.runs[j->plan.nruns++] = (struct upd_run){ j->plan.src_end, 0 };
        last = &j->plan.runs[j->plan.nruns - 1];
    }
    last->len += more;
    j->total += more;
    j->new_size += more;
    j->plan.src_end = file_end;
}

/* Run holding logical byte `at` (binary search over cum). */
static size_t run_at(const struct job *j, uint64_t at)
{
    size_t lo = 0, hi = j->plan.nruns - 1;
    while (lo < hi) {
        size_t mid = (lo + hi + 1) / 2;
        if (j->cum[mid] <= at)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

/* Reads the sources of destination [pos, pos+len) into buf; *first_src is
 * where they begin (overlap test). */
static int gather(struct job *j, uint64_t pos, uint64_t len, uint64_t *first_src)
{
    uint64_t logical = pos - j->plan.dest, done = 0;
    size_t i = run_at(j, logical);
    *first_src = UINT64_MAX;
    while (done < len) {
        while (i < j->plan.nruns && j->cum[i] + j->plan.runs[i].len <= logical + done)
            i++;
        if (i == j->plan.nruns)
            return failed(j, "update plan shorter than its window");
        const struct upd_run *r = &j->plan.runs[i];
        uint64_t within = logical + done - j->cum[i];
        uint64_t n = r->len - within;
        if (n > len - done)
            n = len - done;
        if (*first_src == UINT64_MAX)
            *first_src = r->src + within;
        if (j->io->pread(j->io->ctx, UPD_SPOOL, j->buf + done, n, r->src + within) != 0)
            return failed(j, "reading the spool at %llu: %s", (unsigned long long)(r->src + within),
                          strerror(errno));
        done += n;
    }
    return 0;
}

static uint64_t record_hash(const struct record *r)
{
    return mbox_hash((const char *)r, offsetof(struct record, rec_hash));
}

static int write_record(struct job *j, const char *magic, uint64_t pos, uint64_t len,
                        const char *data, uint64_t data_len)
{
    struct record r;
    memset(&r, 0, sizeof r);
    memcpy(r.magic, magic, 8);
    r.seq = j->seq;
    r.pos = pos;
    r.len = len;
    r.data_len = data_len;
    r.data_hash = mbox_hash(data ? data : "", (size_t)data_len);
    r.rec_hash = record_hash(&r);
    uint64_t at = j->slot_base + (j->seq % 2) * j->slot_size;
    /* Data first, record last: a record is only valid with its data. */
    if ((data_len && j->io->pwrite(j->io->ctx, UPD_JOURNAL, data, data_len, at + RECORD_LEN) != 0) ||
        j->io->pwrite(j->io->ctx, UPD_JOURNAL, &r, sizeof r, at) != 0 ||
        j->io->sync(j->io->ctx, UPD_JOURNAL) != 0)
        return failed(j, "writing the update journal: %s", strerror(errno));
    j->seq++;
    return 0;
}

/* Copies the window at pos (reading its sources), journaled as update.h says. */
static int copy_window(struct job *j, uint64_t pos, uint64_t len)
{
    uint64_t first_src;
    if (gather(j, pos, len, &first_src) != 0)
        return -1;
    int overlaps = first_src < pos + len;
    if (write_record(j, STEP_MAGIC, pos, len, overlaps ? j->buf : NULL, overlaps ? len : 0) != 0)
        return -1;
    j->touched = 1;
    if (j->io->pwrite(j->io->ctx, UPD_SPOOL, j->buf, len, pos) != 0 ||
        j->io->sync(j->io->ctx, UPD_SPOOL) != 0)
        return failed(j, "writing the spool at %llu: %s", (unsigned long long)pos, strerror(errno));
    if (j->io->progress)
        j->io->progress(j->io->ctx);
    return 0;
}

static int copy_from(struct job *j, uint64_t pos)
{
    while (pos < j->new_size) {
        uint64_t len = j->new_size - pos;
        if (len > j->plan.window)
            len = j->plan.window;
        if (copy_window(j, pos, len) != 0)
            return -1;
        pos += len;
    }
    return 0;
}

/* Hash of the bytes just past the new end (see the DONE record). */
static int junk_sample(struct job *j, uint64_t *len, uint64_t *hash)
{
    uint64_t junk = j->plan.src_end - j->new_size;
    *len = junk < SAMPLE_MAX ? junk : SAMPLE_MAX;
    if (*len > j->plan.window)
        *len = j->plan.window;
    if (*len && j->io->pread(j->io->ctx, UPD_SPOOL, j->buf, *len, j->new_size) != 0)
        return failed(j, "reading the spool: %s", strerror(errno));
    *hash = mbox_hash(j->buf, (size_t)*len);
    return 0;
}

static int empty_journal(struct job *j)
{
    if (j->io->truncate(j->io->ctx, UPD_JOURNAL, 0) != 0 || j->io->sync(j->io->ctx, UPD_JOURNAL) != 0)
        return failed(j, "emptying the update journal: %s", strerror(errno));
    return 0;
}

static int finish(struct job *j)
{
    uint64_t sample_len = 0, sample_hash = 0;
    if (junk_sample(j, &sample_len, &sample_hash) != 0)
        return -1;
    struct record r;   /* the DONE record carries the sample's hash, not the bytes */
    memset(&r, 0, sizeof r);
    memcpy(r.magic, DONE_MAGIC, 8);
    r.seq = j->seq++;
    r.pos = j->new_size;
    r.len = j->plan.src_end;
    r.data_len = sample_len;
    r.data_hash = sample_hash;
    r.rec_hash = record_hash(&r);
    uint64_t at = j->slot_base + (r.seq % 2) * j->slot_size;
    if (j->io->pwrite(j->io->ctx, UPD_JOURNAL, &r, sizeof r, at) != 0 ||
        j->io->sync(j->io->ctx, UPD_JOURNAL) != 0)
        return failed(j, "writing the update journal: %s", strerror(errno));
    if (j->io->committed)
        j->io->committed(j->io->committed_arg);
    j->touched = 1;     /* committed: from here a failure leaves the journal */
    if (j->io->truncate(j->io->ctx, UPD_SPOOL, j->new_size) != 0 ||
        j->io->sync(j->io->ctx, UPD_SPOOL) != 0)
        return failed(j, "truncating the spool: %s", strerror(errno));
    return empty_journal(j);
}

static void put64(char **p, uint64_t v)
{
    memcpy(*p, &v, 8);
    *p += 8;
}

static int write_header(struct job *j)
{
    uint64_t hlen = header_len(j->plan.nruns);
    char *h = malloc(hlen), *p = h;
    if (h == NULL)
        return failed(j, "out of memory for the journal header");
    memcpy(p, HEADER_MAGIC, 8);
    p += 8;
    put64(&p, j->plan.dest);
    put64(&p, j->plan.src_end);
    put64(&p, j->plan.window);
    put64(&p, j->plan.nruns);
    for (size_t i = 0; i < j->plan.nruns; i++) {
        put64(&p, j->plan.runs[i].src);
        put64(&p, j->plan.runs[i].len);
    }
    put64(&p, mbox_hash(h, (size_t)(hlen - 8)));
    /* Both slots start zeroed: no stale record from an earlier UPDATE. */
    char zero[RECORD_LEN] = { 0 };
    int rc = j->io->pwrite(j->io->ctx, UPD_JOURNAL, h, hlen, 0) != 0 ||
             j->io->pwrite(j->io->ctx, UPD_JOURNAL, zero, sizeof zero, j->slot_base) != 0 ||
             j->io->pwrite(j->io->ctx, UPD_JOURNAL, zero, sizeof zero, j->slot_base + j->slot_size) != 0 ||
             j->io->sync(j->io->ctx, UPD_JOURNAL) != 0;
    free(h);
    return rc ? failed(j, "writing the update journal: %s", strerror(errno)) : 0;
}

int upd_execute(const struct upd_io *io, const struct upd_plan *plan, uint64_t *new_size,
                int *spool_touched, char *why, size_t whylen)
{
    struct job j;
    int rc = job_init(&j, io, plan, why, whylen);
    if (rc == 0 && io->reserve(io->ctx, UPD_JOURNAL, upd_journal_size(plan)) != 0)
        rc = failed(&j, "no room for the update journal (%llu bytes): %s",
                    (unsigned long long)upd_journal_size(plan), strerror(errno));
    j.seq = 1;
    if (rc == 0)
        rc = write_header(&j);
    if (rc == 0)
        rc = copy_from(&j, plan->dest);
    if (rc == 0)
        rc = finish(&j);
    if (rc == 0)
        *new_size = j.new_size;
    *spool_touched = j.touched;
    job_free(&j);
    return rc;
}

/* ---- recovery ---- */

static uint64_t get64(const char **p)
{
    uint64_t v;
    memcpy(&v, *p, 8);
    *p += 8;
    return v;
}

/* Reads the plan back.  1: plan read; 0: no usable header; -1: I/O error. */
static int read_header(const struct upd_io *io, uint64_t jsize, struct upd_plan *plan,
                       char *why, size_t whylen)
{
    char fixed[8 + 32];
    if (jsize < sizeof fixed + 8)
        return 0;
    if (io->pread(io->ctx, UPD_JOURNAL, fixed, sizeof fixed, 0) != 0) {
        snprintf(why, whylen, "reading the update journal: %s", strerror(errno));
        return -1;
    }
    const char *p = fixed + 8;
    plan->dest = get64(&p);
    plan->src_end = get64(&p);
    uint64_t window = get64(&p), nruns = get64(&p);
    if (memcmp(fixed, HEADER_MAGIC, 8) != 0 || window == 0 || window > MAX_WINDOW ||
        nruns == 0 || nruns > UPD_MAX_RUNS || header_len((size_t)nruns) > jsize)
        return 0;
    plan->window = (uint32_t)window;
    plan->nruns = (size_t)nruns;
    uint64_t hlen = header_len(plan->nruns);
    char *h = malloc(hlen);
    plan->runs = malloc(plan->nruns * sizeof *plan->runs);
    int rc = 0;
    if (!h || !plan->runs) {
        snprintf(why, whylen, "out of memory reading the update journal");
        rc = -1;
    } else if (io->pread(io->ctx, UPD_JOURNAL, h, hlen, 0) != 0) {
        snprintf(why, whylen, "reading the update journal: %s", strerror(errno));
        rc = -1;
    } else {
        p = h + hlen - 8;
        if (get64(&p) == mbox_hash(h, (size_t)(hlen - 8))) {
            p = h + sizeof fixed;
            for (size_t i = 0; i < plan->nruns; i++) {
                plan->runs[i].src = get64(&p);
                plan->runs[i].len = get64(&p);
            }
            rc = 1;
        }
    }
    free(h);
    if (rc != 1) {
        free(plan->runs);
        plan->runs = NULL;
    }
    return rc;
}

/* Reads slot s; returns 1 if it holds a valid record (and its data). */
static int read_slot(struct job *j, int s, struct record *r, char *data)
{
    uint64_t at = j->slot_base + (uint64_t)s * j->slot_size;
    uint64_t jsize;
    if (j->io->size(j->io->ctx, UPD_JOURNAL, &jsize) != 0 || jsize < at + RECORD_LEN ||
        j->io->pread(j->io->ctx, UPD_JOURNAL, r, sizeof *r, at) != 0)
        return 0;
    int step = memcmp(r->magic, STEP_MAGIC, 8) == 0, done = memcmp(r->magic, DONE_MAGIC, 8) == 0;
    if ((!step && !done) || r->rec_hash != record_hash(r))
        return 0;
    if (step) {
        if (r->len == 0 || r->len > j->plan.window || (r->data_len != 0 && r->data_len != r->len) ||
            r->pos < j->plan.dest)
            return 0;
        if (r->data_len &&
            (jsize < at + RECORD_LEN + r->data_len ||
             j->io->pread(j->io->ctx, UPD_JOURNAL, data, r->data_len, at + RECORD_LEN) != 0 ||
             mbox_hash(data, r->data_len) != r->data_hash))
            return 0;
    }
    return 1;
}

/* Redoes the step in doubt, then the rest of the plan. */
static int resume_step(struct job *j, const struct record *r, uint64_t file_end)
{
    if (file_end < j->plan.src_end)
        return failed(j, "spool is shorter (%llu) than the interrupted update left it (%llu): "
                         "not touching it", (unsigned long long)file_end,
                      (unsigned long long)j->plan.src_end);
    extend_tail(j, file_end);
    if (r->pos + r->len > j->new_size)
        return failed(j, "update journal does not fit the spool: not touching it");
    j->seq = r->seq + 1;
    if (r->data_len) {
        /* The window overwrote its own sources: its contents are in the record. */
        if (j->io->pwrite(j->io->ctx, UPD_SPOOL, j->buf, r->len, r->pos) != 0 ||
            j->io->sync(j->io->ctx, UPD_SPOOL) != 0)
            return failed(j, "writing the spool: %s", strerror(errno));
    } else if (copy_window(j, r->pos, r->len) != 0) {
        return -1;
    }
    if (copy_from(j, r->pos + r->len) != 0)
        return -1;
    return finish(j);
}

/* After DONE: was the truncation done?  Decided by size and sample. */
static int resume_done(struct job *j, const struct record *r, uint64_t file_end)
{
    j->seq = r->seq + 1;
    uint64_t sources_end = r->len;
    if (sources_end < j->plan.src_end)
        return failed(j, "update journal is inconsistent: not touching the spool");
    extend_tail(j, sources_end);          /* as an earlier recovery extended it */
    if (j->new_size != r->pos)
        return failed(j, "update journal does not fit the spool: not touching it");
    if (file_end >= sources_end && sources_end - r->pos >= r->data_len) {
        if (j->io->pread(j->io->ctx, UPD_SPOOL, j->buf, r->data_len, r->pos) != 0)
            return failed(j, "reading the spool: %s", strerror(errno));
        if (mbox_hash(j->buf, r->data_len) == r->data_hash) {
            /* Not truncated yet.  Mail delivered since sits past the old end. */
            extend_tail(j, file_end);
            if (copy_from(j, r->pos) != 0)
                return -1;
            return finish(j);
        }
    }
    /* Truncated (and maybe appended to since): the update is complete. */
    if (j->io->sync(j->io->ctx, UPD_SPOOL) != 0)
        return failed(j, "fsync of the spool: %s", strerror(errno));
    return empty_journal(j);
}

int upd_recover(const struct upd_io *io, char *why, size_t whylen)
{
    uint64_t jsize, file_end;
    if (io->size(io->ctx, UPD_JOURNAL, &jsize) != 0) {
        snprintf(why, whylen, "update journal: %s", strerror(errno));
        return -1;
    }
    if (jsize == 0)
        return 0;
    struct upd_plan plan;
    int hr = read_header(io, jsize, &plan, why, whylen);
    if (hr <= 0) {
        if (hr == 0)
            snprintf(why, whylen, "update journal without a complete header: the spool was "
                                  "not touched; journal discarded");
        return hr;
    }
    struct job j;
    int rc = job_init(&j, io, &plan, why, whylen);
    free(plan.runs);
    struct record rec[2];
    char *data2 = rc == 0 ? malloc(j.plan.window) : NULL;
    int best = -1;
    if (rc == 0 && data2 == NULL)
        rc = failed(&j, "out of memory");
    if (rc == 0) {
        int ok0 = read_slot(&j, 0, &rec[0], j.buf);
        int ok1 = read_slot(&j, 1, &rec[1], data2);
        if (ok0 && (!ok1 || rec[0].seq > rec[1].seq))
            best = 0;
        else if (ok1)
            best = 1;
        if (best == 1)
            memcpy(j.buf, data2, rec[1].data_len);
    }
    free(data2);
    if (rc == 0 && best < 0) {
        /* No step record became durable, so no spool write happened. */
        snprintf(why, whylen, "update journal without a step record: the spool was not "
                              "touched; journal discarded");
        rc = empty_journal(&j);
        job_free(&j);
        return rc == 0 ? 0 : -1;
    }
    if (rc == 0 && io->size(io->ctx, UPD_SPOOL, &file_end) != 0)
        rc = failed(&j, "spool size: %s", strerror(errno));
    if (rc == 0)
        rc = memcmp(rec[best].magic, DONE_MAGIC, 8) == 0 ? resume_done(&j, &rec[best], file_end)
                                                         : resume_step(&j, &rec[best], file_end);
    job_free(&j);
    return rc == 0 ? 1 : -1;
}

/* ---- real file descriptors ---- */

#ifdef MBOXPOP3D_TEST_HOOKS
/*
 * Test builds only (build/mboxpop3d-test): MBOXPOP3D_TEST_KILL_AT=N makes
 * the process kill itself with SIGKILL just before its N-th write, fsync
 * or truncate through this layer, so end-to-end tests can crash UPDATE
 * (and recovery) at every step.  Not compiled into the daemon.
 */
#include <signal.h>
static void test_kill_point(void)
{
    static long left = -2;
    if (left == -2) {
        const char *v = getenv("MBOXPOP3D_TEST_KILL_AT");
        left = v ? atol(v) : -1;
    }
    if (left > 0 && --left == 0)
        raise(SIGKILL);
}
#else
static void test_kill_point(void)
{
}
#endif

static int fds_pread(void *ctx, enum upd_file f, void *buf, size_t len, uint64_t off)
{
    return pread_exact(((struct upd_fds *)ctx)->fd[f], buf, len, (off_t)off);
}

static int fds_pwrite(void *ctx, enum upd_file f, const void *buf, size_t len, uint64_t off)
{
    test_kill_point();
    return pwrite_all(((struct upd_fds *)ctx)->fd[f], buf, len, (off_t)off);
}

static int fds_sync(void *ctx, enum upd_file f)
{
    test_kill_point();
    return fdatasync(((struct upd_fds *)ctx)->fd[f]);
}

static int fds_truncate(void *ctx, enum upd_file f, uint64_t len)
{
    test_kill_point();
    return ftruncate(((struct upd_fds *)ctx)->fd[f], (off_t)len);
}

static int fds_size(void *ctx, enum upd_file f, uint64_t *len)
{
    off_t end = lseek(((struct upd_fds *)ctx)->fd[f], 0, SEEK_END);
    if (end < 0)
        return -1;
    *len = (uint64_t)end;
    return 0;
}

static int fds_reserve(void *ctx, enum upd_file f, uint64_t len)
{
    int e = posix_fallocate(((struct upd_fds *)ctx)->fd[f], 0, (off_t)len);
    if (e == EOPNOTSUPP || e == ENOSYS || e == EINVAL)
        return 0;      /* filesystem cannot preallocate: go on without */
    if (e != 0) {
        errno = e;
        return -1;
    }
    return 0;
}

static void fds_progress(void *ctx)
{
    struct upd_fds *fds = ctx;
    if (fds->progress)
        fds->progress(fds->progress_arg);
}

void upd_io_fds(struct upd_io *io, struct upd_fds *fds)
{
    *io = (struct upd_io){ .pread = fds_pread, .pwrite = fds_pwrite, .sync = fds_sync,
                           .truncate = fds_truncate, .size = fds_size, .reserve = fds_reserve,
                           .progress = fds_progress, .ctx = fds,
                           .committed = fds->committed, .committed_arg = fds->committed_arg };
}

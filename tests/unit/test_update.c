/*
 * Crash-consistency test of UPDATE (update.c), in the style of ALICE and
 * CrashMonkey: the rewrite runs against an in-memory "disk" that records
 * every write, truncate and fsync.  For every prefix of that record (every
 * instant a crash could happen) the test builds the disk a power cut
 * could leave: everything synced, plus samples of the unsynced writes -
 * none, all, and random subsets of their 512-byte sectors.  A delivery
 * agent may then append a message, recovery runs, and the spool must hold
 * exactly the kept messages, byte for byte, followed by everything
 * delivered - or, if no spool write survived, be exactly as before.  A
 * sample of the recoveries is itself crashed and recovered again.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mailbox.h"
#include "testlib.h"
#include "update.h"

#define SECTOR 512

/* ---- a recording in-memory disk ---- */

struct buf {
    char *p;
    size_t len;
};

enum op_kind { OP_WRITE, OP_TRUNC, OP_SYNC };

struct op {
    int file;
    enum op_kind kind;
    uint64_t off, len;
    char *data;
};

struct disk {
    struct buf f[2];          /* what reads see now */
    struct op *ops;
    size_t nops, cap;
    int record;
    long fail_spool_write;    /* >0: that spool write fails with EIO */
    int fail_reserve;
};

static void buf_set_len(struct buf *b, size_t len)
{
    b->p = realloc(b->p, len ? len : 1);
    if (len > b->len)
        memset(b->p + b->len, 0, len - b->len);
    b->len = len;
}

static void buf_write(struct buf *b, const void *data, uint64_t len, uint64_t off)
{
    if (len == 0)
        return;
    if (off + len > b->len)
        buf_set_len(b, (size_t)(off + len));
    memcpy(b->p + off, data, (size_t)len);
}

static void record_op(struct disk *d, int file, enum op_kind kind, uint64_t off, uint64_t len,
                      const void *data)
{
    if (!d->record)
        return;
    if (d->nops == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 256;
        d->ops = realloc(d->ops, d->cap * sizeof *d->ops);
    }
    struct op *o = &d->ops[d->nops++];
    *o = (struct op){ file, kind, off, len, NULL };
    if (data) {
        o->data = malloc(len ? (size_t)len : 1);
        memcpy(o->data, data, (size_t)len);
    }
}

static int d_pread(void *ctx, enum upd_file f, void *out, size_t len, uint64_t off)
{
    struct disk *d = ctx;
    if (off + len > d->f[f].len) {
        errno = EIO;
        return -1;
    }
    memcpy(out, d->f[f].p + off, len);
    return 0;
}

static int d_pwrite(void *ctx, enum upd_file f, const void *data, size_t len, uint64_t off)
{
    struct disk *d = ctx;
    if (f == UPD_SPOOL && d->fail_spool_write > 0 && --d->fail_spool_write == 0) {
        errno = EIO;
        return -1;
    }
    buf_write(&d->f[f], data, len, off);
    record_op(d, f, OP_WRITE, off, len, data);
    return 0;
}

static int d_sync(void *ctx, enum upd_file f)
{
    record_op(ctx, f, OP_SYNC, 0, 0, NULL);
    return 0;
}

static int d_truncate(void *ctx, enum upd_file f, uint64_t len)
{
    struct disk *d = ctx;
    buf_set_len(&d->f[f], (size_t)len);
    record_op(d, f, OP_TRUNC, len, 0, NULL);
    return 0;
}

static int d_size(void *ctx, enum upd_file f, uint64_t *len)
{
    *len = ((struct disk *)ctx)->f[f].len;
    return 0;
}

static int d_reserve(void *ctx, enum upd_file f, uint64_t len)
{
    (void)f;
    (void)len;
    if (((struct disk *)ctx)->fail_reserve) {
        errno = ENOSPC;
        return -1;
    }
    return 0;
}

static struct upd_io disk_io(struct disk *d)
{
    return (struct upd_io){ .pread = d_pread, .pwrite = d_pwrite, .sync = d_sync,
                            .truncate = d_truncate, .size = d_size, .reserve = d_reserve,
                            .ctx = d };
}

static void disk_init(struct disk *d, const struct buf *spool, const struct buf *journal)
{
    memset(d, 0, sizeof *d);
    buf_write(&d->f[0], spool->p, spool->len, 0);
    buf_set_len(&d->f[0], spool->len);
    buf_set_len(&d->f[1], journal ? journal->len : 0);
    if (journal && journal->len)
        memcpy(d->f[1].p, journal->p, journal->len);
}

static void disk_free(struct disk *d)
{
    for (size_t i = 0; i < d->nops; i++)
        free(d->ops[i].data);
    free(d->ops);
    free(d->f[0].p);
    free(d->f[1].p);
    memset(d, 0, sizeof *d);
}

/* ---- building a crash state ---- */

enum keep_mode { KEEP_NONE, KEEP_ALL, KEEP_RANDOM };

/*
 * The disk after a crash just before ops[cut]: starting from `base`
 * (the files before the recorded run), every op before the last sync of
 * its file is applied; the unsynced ones are applied per `mode`.
 */
static void crash_state(const struct disk *run, const struct buf base[2], size_t cut,
                        enum keep_mode mode, struct buf out[2])
{
    for (int f = 0; f < 2; f++) {
        out[f].p = NULL;
        out[f].len = 0;
        buf_set_len(&out[f], base[f].len);
        if (base[f].len)
            memcpy(out[f].p, base[f].p, base[f].len);
        size_t last_sync = 0;
        int synced = 0;
        for (size_t i = 0; i < cut; i++)
            if (run->ops[i].file == f && run->ops[i].kind == OP_SYNC) {
                last_sync = i;
                synced = 1;
            }
        for (size_t i = 0; i < cut; i++) {
            const struct op *o = &run->ops[i];
            if (o->file != f || o->kind == OP_SYNC)
                continue;
            int durable = synced && i < last_sync;
            if (o->kind == OP_TRUNC) {
                if (durable || mode == KEEP_ALL || (mode == KEEP_RANDOM && tl_rand() % 2))
                    buf_set_len(&out[f], (size_t)o->off);
                continue;
            }
            for (uint64_t s = 0; s < o->len; s += SECTOR) {
                uint64_t n = o->len - s < SECTOR ? o->len - s : SECTOR;
                if (durable || mode == KEEP_ALL || (mode == KEEP_RANDOM && tl_rand() % 2))
                    buf_write(&out[f], o->data + s, n, o->off + s);
            }
        }
    }
}

/* ---- fixtures ---- */

static void append(struct buf *b, const char *s, size_t n)
{
    buf_write(b, s, n, b->len);
}

static void append_message(struct buf *b, unsigned id, size_t body)
{
    char head[200];
    int n = snprintf(head, sizeof head,
                     "From sender%u@example.org Mon Jan  1 00:00:%02u 2024\n"
                     "Received: by test; id %u\nMessage-ID: <%u@example.org>\n"
                     "Subject: message %u\n\n", id, id % 60, id, id, id);
    append(b, head, (size_t)n);
    for (size_t i = 0; i < body; i++) {
        char c = (char)('a' + (id * 7 + i) % 26);
        if (i % 61 == 60)
            c = '\n';
        append(b, &c, 1);
    }
    append(b, "\n\n", 2);
}

struct scenario {
    const char *name;
    const char *deleted;      /* '1' per deleted message */
    int tail_messages;        /* delivered during the session */
};

/* The spool as the session found it, the file at QUIT, and the expected
 * result of the update. */
struct fixture {
    struct buf scanned, at_quit, expected;
    struct mbox_index idx;
    struct upd_plan plan;
};

static const size_t body_sizes[] = { 100, 9000, 30, 4000, 17000, 500, 5000, 60, 12000, 800 };
#define N_MESSAGES (sizeof body_sizes / sizeof body_sizes[0])

static int make_fixture(const struct scenario *sc, struct fixture *fx)
{
    memset(fx, 0, sizeof *fx);
    for (unsigned i = 0; i < N_MESSAGES; i++)
        append_message(&fx->scanned, i + 1, body_sizes[i]);
    char err[160];
    if (mbox_scan(fx->scanned.p, fx->scanned.len, &fx->idx, err, sizeof err) != 0 ||
        fx->idx.count != N_MESSAGES)
        return -1;
    append(&fx->at_quit, fx->scanned.p, fx->scanned.len);
    for (int t = 0; t < sc->tail_messages; t++)
        append_message(&fx->at_quit, 100 + (unsigned)t, 3000);
    for (size_t i = 0; i < N_MESSAGES; i++) {
        fx->idx.msgs[i].deleted = sc->deleted[i] == '1';
        uint64_t start = msg_from_off(&fx->idx.msgs[i]);
        uint64_t end = i + 1 < N_MESSAGES ? msg_from_off(&fx->idx.msgs[i + 1]) : fx->scanned.len;
        if (!fx->idx.msgs[i].deleted)
            append(&fx->expected, fx->scanned.p + start, end - start);
    }
    append(&fx->expected, fx->at_quit.p + fx->scanned.len, fx->at_quit.len - fx->scanned.len);
    if (mbox_update_plan(&fx->idx, fx->at_quit.len, &fx->plan) != 0)
        return -1;
    fx->plan.window = 4096;     /* many steps over a small spool */
    return 0;
}

static void free_fixture(struct fixture *fx)
{
    free(fx->scanned.p);
    free(fx->at_quit.p);
    free(fx->expected.p);
    free(fx->plan.runs);
    mbox_index_free(&fx->idx);
}

static const struct scenario scenarios[] = {
    { "first deleted, small gap", "1000000000", 0 },
    { "second deleted, with tail", "0100000000", 2 },
    { "several deleted", "0110010010", 1 },
    { "all but the last deleted", "1111111110", 0 },
    { "all deleted, tail kept", "1111111111", 2 },
    { "big message deleted", "0000100000", 1 },
    { "last deleted, nothing appended", "0100000001", 0 },
    { "trailing deleted: a truncation only", "0000000011", 0 },
    { "all deleted, nothing appended", "1111111111", 0 },
};

/* ---- checks ---- */

static int equal(const struct buf *b, const struct buf *want)
{
    return b->len == want->len && (b->len == 0 || memcmp(b->p, want->p, b->len) == 0);
}

static const char delivered[] = "From late@example.org Tue Jan  2 00:00:00 2024\n"
                                 "Subject: delivered after the crash\n\nstill here\n\n";

/*
 * Recovers a crash state (optionally after a delivery) and checks the
 * spool.  Returns 0 if fine; on failure prints the scenario and point.
 */
static int recover_and_check(const struct fixture *fx, struct buf state[2], int deliver,
                             struct disk *rec_out)
{
    struct buf want_done = { 0 }, want_untouched = { 0 };
    append(&want_done, fx->expected.p, fx->expected.len);
    append(&want_untouched, fx->at_quit.p, fx->at_quit.len);
    if (deliver) {
        append(&state[0], delivered, sizeof delivered - 1);
        append(&want_done, delivered, sizeof delivered - 1);
        append(&want_untouched, delivered, sizeof delivered - 1);
    }
    struct disk d;
    disk_init(&d, &state[0], &state[1]);
    d.record = rec_out != NULL;
    struct upd_io io = disk_io(&d);
    char why[256] = "";
    int rc = upd_recover(&io, why, sizeof why);
    /* rc 0 with a finished spool: the crash came after the update was
     * complete (or an earlier recovery completed it). */
    int ok = rc >= 0 && (rc == 0 || d.f[1].len == 0) &&
             (equal(&d.f[0], &want_done) || equal(&d.f[0], &want_untouched));
    if (!ok)
        printf("    recovery rc=%d (%s): spool %zu bytes, want %zu (done) or %zu (untouched), "
               "journal %zu\n", rc, why, d.f[0].len, want_done.len, want_untouched.len,
               d.f[1].len);
    free(want_done.p);
    free(want_untouched.p);
    if (rec_out)
        *rec_out = d;
    else
        disk_free(&d);
    return ok ? 0 : -1;
}

/* ---- tests ---- */

TEST(update_without_crash_gives_expected_spool)
{
    for (size_t s = 0; s < sizeof scenarios / sizeof scenarios[0]; s++) {
        struct fixture fx;
        CHECK(make_fixture(&scenarios[s], &fx) == 0);
        struct disk d;
        disk_init(&d, &fx.at_quit, NULL);
        struct upd_io io = disk_io(&d);
        uint64_t new_size;
        int touched;
        char why[256];
        CHECK(upd_execute(&io, &fx.plan, &new_size, &touched, why, sizeof why) == 0);
        CHECK_EQ(new_size, fx.expected.len);
        CHECK_MEM(d.f[0].p, d.f[0].len, fx.expected.p, fx.expected.len);
        CHECK_EQ(d.f[1].len, 0);          /* journal emptied */
        /* Recovering a finished update changes nothing. */
        CHECK(upd_recover(&io, why, sizeof why) == 0);
        CHECK_MEM(d.f[0].p, d.f[0].len, fx.expected.p, fx.expected.len);
        disk_free(&d);
        free_fixture(&fx);
    }
}

/* Every crash point, each with several subsets of the unsynced writes. */
TEST(every_crash_point_recovers_every_kept_message)
{
    unsigned states = 0, failures = 0;
    for (size_t s = 0; s < sizeof scenarios / sizeof scenarios[0]; s++) {
        struct fixture fx;
        CHECK(make_fixture(&scenarios[s], &fx) == 0);
        struct disk run;
        disk_init(&run, &fx.at_quit, NULL);
        run.record = 1;
        struct upd_io io = disk_io(&run);
        uint64_t new_size;
        int touched;
        char why[256];
        CHECK(upd_execute(&io, &fx.plan, &new_size, &touched, why, sizeof why) == 0);
        struct buf base[2] = { fx.at_quit, { NULL, 0 } };
        for (size_t cut = 0; cut <= run.nops; cut++) {
            for (int sample = 0; sample < 6; sample++) {
                enum keep_mode mode = sample == 0 ? KEEP_NONE : sample == 1 ? KEEP_ALL : KEEP_RANDOM;
                struct buf state[2];
                crash_state(&run, base, cut, mode, state);
                int deliver = sample % 2 == 1;
                states++;
                if (recover_and_check(&fx, state, deliver, NULL) != 0) {
                    failures++;
                    printf("    ^ scenario '%s', crash before op %zu of %zu, sample %d\n",
                           scenarios[s].name, cut, run.nops, sample);
                }
                free(state[0].p);
                free(state[1].p);
            }
        }
        disk_free(&run);
        free_fixture(&fx);
    }
    printf("  %u crash states recovered, %u failures\n", states, failures);
    CHECK_EQ(failures, 0);
    CHECK(states > 1000);
}

/* A crash during recovery is recovered by the next attempt. */
TEST(crash_during_recovery_is_recovered_again)
{
    unsigned states = 0, failures = 0;
    for (size_t s = 0; s < sizeof scenarios / sizeof scenarios[0]; s++) {
        struct fixture fx;
        CHECK(make_fixture(&scenarios[s], &fx) == 0);
        struct disk run;
        disk_init(&run, &fx.at_quit, NULL);
        run.record = 1;
        struct upd_io io = disk_io(&run);
        uint64_t new_size;
        int touched;
        char why[256];
        CHECK(upd_execute(&io, &fx.plan, &new_size, &touched, why, sizeof why) == 0);
        struct buf base[2] = { fx.at_quit, { NULL, 0 } };
        for (int trial = 0; trial < 40; trial++) {
            size_t cut = (size_t)(tl_rand() % (run.nops + 1));
            struct buf first[2];
            crash_state(&run, base, cut, KEEP_RANDOM, first);
            int deliver = trial % 2;
            if (deliver)
                append(&first[0], delivered, sizeof delivered - 1);
            /* Recover with recording, then crash that recovery too. */
            struct disk rec;
            disk_init(&rec, &first[0], &first[1]);
            rec.record = 1;
            struct upd_io rio = disk_io(&rec);
            upd_recover(&rio, why, sizeof why);
            size_t cut2 = (size_t)(tl_rand() % (rec.nops + 1));
            struct buf second[2];
            crash_state(&rec, first, cut2, KEEP_RANDOM, second);
            states++;
            /* The delivery is already in `first`: expect it, add nothing. */
            struct fixture fx2 = fx;
            struct buf exp = { 0 }, atq = { 0 };
            append(&exp, fx.expected.p, fx.expected.len);
            append(&atq, fx.at_quit.p, fx.at_quit.len);
            if (deliver) {
                append(&exp, delivered, sizeof delivered - 1);
                append(&atq, delivered, sizeof delivered - 1);
            }
            fx2.expected = exp;
            fx2.at_quit = atq;
            if (recover_and_check(&fx2, second, 0, NULL) != 0) {
                failures++;
                printf("    ^ scenario '%s', crash at %zu then in recovery at %zu of %zu\n",
                       scenarios[s].name, cut, cut2, rec.nops);
            }
            free(exp.p);
            free(atq.p);
            free(first[0].p);
            free(first[1].p);
            free(second[0].p);
            free(second[1].p);
            disk_free(&rec);
        }
        disk_free(&run);
        free_fixture(&fx);
    }
    printf("  %u double-crash states recovered, %u failures\n", states, failures);
    CHECK_EQ(failures, 0);
}

TEST(no_room_for_journal_leaves_spool_untouched)
{
    struct fixture fx;
    CHECK(make_fixture(&scenarios[2], &fx) == 0);
    struct disk d;
    disk_init(&d, &fx.at_quit, NULL);
    d.fail_reserve = 1;
    struct upd_io io = disk_io(&d);
    uint64_t new_size;
    int touched = 1;
    char why[256] = "";
    CHECK(upd_execute(&io, &fx.plan, &new_size, &touched, why, sizeof why) != 0);
    CHECK_EQ(errno, ENOSPC);
    CHECK_EQ(touched, 0);
    CHECK(strstr(why, "no room") != NULL);
    CHECK_MEM(d.f[0].p, d.f[0].len, fx.at_quit.p, fx.at_quit.len);
    disk_free(&d);
    free_fixture(&fx);
}

TEST(write_error_half_way_is_finished_by_recovery)
{
    struct fixture fx;
    CHECK(make_fixture(&scenarios[1], &fx) == 0);
    struct disk d;
    disk_init(&d, &fx.at_quit, NULL);
    d.fail_spool_write = 3;
    struct upd_io io = disk_io(&d);
    uint64_t new_size;
    int touched = 0;
    char why[256] = "";
    CHECK(upd_execute(&io, &fx.plan, &new_size, &touched, why, sizeof why) != 0);
    CHECK_EQ(touched, 1);
    CHECK(d.f[1].len > 0);               /* the journal remains */
    CHECK(upd_recover(&io, why, sizeof why) == 1);
    CHECK_MEM(d.f[0].p, d.f[0].len, fx.expected.p, fx.expected.len);
    CHECK_EQ(d.f[1].len, 0);
    disk_free(&d);
    free_fixture(&fx);
}

TEST(garbage_journal_is_not_applied)
{
    struct fixture fx;
    CHECK(make_fixture(&scenarios[0], &fx) == 0);
    struct buf junk = { 0 };
    for (int i = 0; i < 5000; i++) {
        char c = (char)tl_rand();
        append(&junk, &c, 1);
    }
    struct disk d;
    disk_init(&d, &fx.at_quit, &junk);
    struct upd_io io = disk_io(&d);
    char why[256] = "";
    CHECK(upd_recover(&io, why, sizeof why) == 0);
    CHECK_MEM(d.f[0].p, d.f[0].len, fx.at_quit.p, fx.at_quit.len);
    free(junk.p);
    disk_free(&d);
    free_fixture(&fx);
}

TEST(plan_merges_adjacent_kept_messages)
{
    struct fixture fx;
    CHECK(make_fixture(&scenarios[2], &fx) == 0);   /* "0110010010" + tail */
    /* kept after the first deletion: 3,4 | 6,7 | 9,10+tail */
    CHECK_EQ(fx.plan.nruns, 3);
    CHECK_EQ(fx.plan.dest, msg_from_off(&fx.idx.msgs[1]));
    CHECK_EQ(fx.plan.runs[0].src, msg_from_off(&fx.idx.msgs[3]));
    CHECK_EQ(fx.plan.runs[2].src + fx.plan.runs[2].len, fx.at_quit.len);
    free_fixture(&fx);
    /* Only trailing messages deleted and nothing appended: one empty run
     * at the end of the file, so that even a bare truncation has its
     * journal (and its commit point) and mail appended later is kept. */
    static const struct scenario trailing = { "trailing", "0000000011", 0 };
    CHECK(make_fixture(&trailing, &fx) == 0);
    CHECK_EQ(fx.plan.nruns, 1);
    CHECK_EQ(fx.plan.runs[0].len, 0);
    CHECK_EQ(fx.plan.runs[0].src, fx.at_quit.len);
    CHECK_EQ(fx.plan.dest, msg_from_off(&fx.idx.msgs[8]));
    free_fixture(&fx);
}

int main(void)
{
    RUN(update_without_crash_gives_expected_spool);
    RUN(every_crash_point_recovers_every_kept_message);
    RUN(crash_during_recovery_is_recovered_again);
    RUN(no_room_for_journal_leaves_spool_untouched);
    RUN(write_error_half_way_is_finished_by_recovery);
    RUN(garbage_journal_is_not_applied);
    RUN(plan_merges_adjacent_kept_messages);
    return test_report();
}

/* Unit tests: the spool file as the session sees it (mailbox.h): open
 * and its refusals, verify, RETR/TOP bytes through netio, and UPDATE on
 * temp files, as the current user, with fcntl + dotlock locks. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testlib.h"
#include "config.h"
#include "mailbox.h"
#include "netio.h"
#include "uidl.h"
#include "util.h"

static char tmpdir[64];
static char spool[128];
static int case_no;

#define FROM1 "From alice@example.org Mon Jan  1 00:00:00 2024\n"
#define FROM2 "From bob@example.org Tue Jan  2 00:00:00 2024\n"
#define FROM3 "From carol@example.org Wed Jan  3 00:00:00 2024\n"
#define FROM4 "From dave@example.org Thu Jan  4 00:00:00 2024\n"

/* Raw spans: From line through the separator blank line. */
static const char M1[] = FROM1 "Received: from a\nSubject: one\n\nbody 1\n.dotted\n\n";
static const char M2[] = FROM2 "Received: from b\nSubject: two\n\nbody 2\nline 2\nline 3\n\n";
static const char M3[] = FROM3 "Received: from c\nSubject: three\n\nbody 3\n\n";
static const char M3_LAST[] = FROM3 "Received: from c\nSubject: three\n\nbody 3\n";
static const char M4[] = FROM4 "Received: from d\nSubject: four (appended)\n\nbody 4\n\n";
static const char PSEUDO[] =
    "From MAILER-DAEMON Mon Jan  1 00:00:00 2024\n"
    "Date: Mon, 01 Jan 2024 00:00:00 +0000\n"
    "From: Mail System Internal Data <MAILER-DAEMON@example.org>\n"
    "Subject: DON'T DELETE THIS MESSAGE -- FOLDER INTERNAL DATA\n"
    "X-IMAP: 1704067200 0000000003\n"
    "Status: RO\n"
    "\n"
    "This text is part of the internal format of your mail folder, and is not\n"
    "a real message.\n"
    "\n";

#define S(x) (x), (sizeof(x) - 1)

/* ---- helpers ---- */

static void new_spool(void)
{
    snprintf(spool, sizeof spool, "%s/user%d", tmpdir, ++case_no);
}

static int write_file(const char *path, const char *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return -1;
    int rc = write_all(fd, data, len);
    close(fd);
    return rc;
}

static int append_file(const char *path, const char *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_APPEND);
    if (fd < 0)
        return -1;
    int rc = write_all(fd, data, len);
    close(fd);
    return rc;
}

/* The whole file (malloc'd, NUL-terminated), or NULL. */
static char *read_file(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return NULL;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return NULL;
    }
    char *buf = malloc((size_t)st.st_size + 1);
    if (buf && pread_exact(fd, buf, (size_t)st.st_size, 0) != 0) {
        free(buf);
        buf = NULL;
    }
    close(fd);
    if (buf) {
        buf[st.st_size] = '\0';
        *len = (size_t)st.st_size;
    }
    return buf;
}

/* Joins up to 6 parts into a malloc'd buffer. */
struct buf {
    char *p;
    size_t len;
};

static struct buf join(const char *a, size_t al, const char *b, size_t bl, const char *c,
                       size_t cl, const char *d, size_t dl)
{
    struct buf r = { malloc(al + bl + cl + dl + 1), al + bl + cl + dl };
    if (r.p == NULL) {
        r.len = 0;
        return r;
    }
    size_t o = 0;
    memcpy(r.p + o, a, al), o += al;
    memcpy(r.p + o, b, bl), o += bl;
    memcpy(r.p + o, c, cl), o += cl;
    memcpy(r.p + o, d, dl), o += dl;
    r.p[o] = '\0';
    return r;
}
#define NONE "", 0

static void check_file(const char *path, const char *want, size_t want_len, int line)
{
    size_t len = 0;
    char *got = read_file(path, &len);
    if (got == NULL) {
        tl_current_failed = 1;
        printf("  %s:%d: %s: cannot read %s\n", __FILE__, line, tl_current, path);
        return;
    }
    tl_check_mem(__FILE__, line, got, len, want, want_len);
    free(got);
}
#define CHECK_FILE(path, want, want_len) check_file((path), (want), (want_len), __LINE__)

static struct mailbox_opts opts(unsigned timeout)
{
    struct mailbox_opts o;
    memset(&o, 0, sizeof o);
    o.lock_kinds = LOCK_KIND_FCNTL | LOCK_KIND_DOTLOCK;
    o.lock_timeout = timeout;
    o.dotlock_stale = 120;
    o.check_owner = 1;
    o.owner = geteuid();
    return o;
}

static enum mb_status open_mb(struct mailbox *mb, const char *path)
{
    struct mailbox_opts o = opts(1);
    return mailbox_open(mb, path, &o);
}

static void report_status(struct mailbox *mb, enum mb_status got, enum mb_status want, int line)
{
    if (got != want) {
        tl_current_failed = 1;
        printf("  %s:%d: %s: status %d, expected %d (why: %s)\n", __FILE__, line, tl_current,
               (int)got, (int)want, mb->why);
    }
}
#define CHECK_STATUS(mb, expr, want) report_status((mb), (expr), (want), __LINE__)

static int exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* Nothing left behind by a finished operation: no dotlock, no journal,
 * and no fcntl lock (checked from another process). */
static void check_no_locks(const char *path, int line)
{
    char lock[200], journal[200];
    snprintf(lock, sizeof lock, "%s.lock", path);
    const char *b = strrchr(path, '/');
    snprintf(journal, sizeof journal, "%.*s/.%s.mboxpop3d-journal", (int)(b - path), path, b + 1);
    if (exists(lock) || exists(journal)) {
        tl_current_failed = 1;
        printf("  %s:%d: %s: left behind:%s%s\n", __FILE__, line, tl_current,
               exists(lock) ? " the dotlock" : "", exists(journal) ? " the journal" : "");
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        alarm(5);
        int fd = open(path, O_RDWR);
        struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
        _exit(fd < 0 || fcntl(fd, F_SETLK, &fl) == 0 ? 0 : 1);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0) {
        tl_current_failed = 1;
        printf("  %s:%d: %s: an fcntl lock is still held\n", __FILE__, line, tl_current);
    }
}
#define CHECK_NO_LOCKS(path) check_no_locks((path), __LINE__)

/* ---- open ---- */

TEST(missing_file_is_empty_mailbox)
{
    new_spool();
    struct mailbox mb;
    CHECK_STATUS(&mb, open_mb(&mb, spool), MB_OK);
    CHECK_EQ(mb.idx.count, 0);
    CHECK_EQ(mb.fd, -1);
    CHECK_STATUS(&mb, mailbox_verify(&mb), MB_OK);
    CHECK_STATUS(&mb, mailbox_update(&mb), MB_OK);
    CHECK(!exists(spool));          /* never created by reading */
    mailbox_close(&mb);
    CHECK(!exists(spool));
}

TEST(empty_file_is_empty_mailbox)
{
    new_spool();
    CHECK(write_file(spool, "", 0) == 0);
    struct mailbox mb;
    CHECK_STATUS(&mb, open_mb(&mb, spool), MB_OK);
    CHECK_EQ(mb.idx.count, 0);
    CHECK_STATUS(&mb, mailbox_verify(&mb), MB_OK);
    CHECK_STATUS(&mb, mailbox_update(&mb), MB_OK);
    mailbox_close(&mb);
    CHECK_NO_LOCKS(spool);
}

TEST(open_scans_and_releases_locks)
{
    new_spool();
    struct buf f = join(S(M1), S(M2), S(M3_LAST), NONE);
    CHECK(write_file(spool, f.p, f.len) == 0);
    struct mailbox mb;
    CHECK_STATUS(&mb, open_mb(&mb, spool), MB_OK);
    CHECK_EQ(mb.idx.count, 3);
    CHECK_EQ(mb.idx.scanned_size, f.len);
    CHECK(mb.fd >= 0);
    if (mb.idx.count == 3) {
        CHECK_EQ(msg_from_off(&mb.idx.msgs[1]), sizeof M1 - 1);
        CHECK_EQ(msg_from_off(&mb.idx.msgs[2]), sizeof M1 - 1 + sizeof M2 - 1);
        for (size_t i = 0; i < 3; i++)
            CHECK_EQ(mb.idx.msgs[i].size,
                     wire_size(f.p + mb.idx.msgs[i].content_off, msg_content_len(&mb.idx, i)));
    }
    /* locks are held only while scanning */
    CHECK_NO_LOCKS(spool);
    CHECK_STATUS(&mb, mailbox_verify(&mb), MB_OK);
    mailbox_close(&mb);
    CHECK_EQ(mb.fd, -1);
    free(f.p);
}

TEST(symlink_is_refused)
{
    new_spool();
    char target[160];
    snprintf(target, sizeof target, "%s.target", spool);
    CHECK(write_file(target, S(M1)) == 0);
    CHECK(symlink(target, spool) == 0);
    struct mailbox mb;
    CHECK_STATUS(&mb, open_mb(&mb, spool), MB_PERM);
    CHECK(mb.why[0] != '\0');
    mailbox_close(&mb);
    /* a dangling symlink is refused too, not taken for "no mail" */
    unlink(target);
    CHECK_STATUS(&mb, open_mb(&mb, spool), MB_PERM);
    mailbox_close(&mb);
    CHECK(!exists(target));
}

TEST(directory_is_refused)
{
    new_spool();
    CHECK(mkdir(spool, 0700) == 0);
    struct mailbox mb;
    CHECK_STATUS(&mb, open_mb(&mb, spool), MB_PERM);
    mailbox_close(&mb);
}

TEST(fifo_is_refused_without_blocking)
{
    new_spool();
    CHECK(mkfifo(spool, 0600) == 0);
    alarm(5);   /* a hang here kills the suite: counted as a failure */
    int64_t t0 = now_ms();
    struct mailbox mb;
    CHECK_STATUS(&mb, open_mb(&mb, spool), MB_PERM);
    CHECK(now_ms() - t0 < 1000);
    mailbox_close(&mb);
    alarm(0);
}

TEST(wrong_owner_is_refused)
{
    if (geteuid() != 0)
        SKIP("needs root to give a file to another uid");
    new_spool();
    CHECK(write_file(spool, S(M1)) == 0);
    CHECK(chown(spool, 65534, 65534) == 0);
    struct mailbox mb;
    CHECK_STATUS(&mb, open_mb(&mb, spool), MB_PERM);
    mailbox_close(&mb);
    struct mailbox_opts o = opts(1);
    o.check_owner = 0;
    CHECK_STATUS(&mb, mailbox_open(&mb, spool, &o), MB_OK);
    CHECK_EQ(mb.idx.count, 1);
    mailbox_close(&mb);
}

TEST(not_mbox_is_refused)
{
    new_spool();
    CHECK(write_file(spool, S("Subject: no From line\n\nbody\n")) == 0);
    struct mailbox mb;
    CHECK_STATUS(&mb, open_mb(&mb, spool), MB_PERM);
    mailbox_close(&mb);
    CHECK_NO_LOCKS(spool);
}

TEST(locked_by_other_program_is_in_use)
{
    new_spool();
    CHECK(write_file(spool, S(M1)) == 0);
    char lock[200];
    snprintf(lock, sizeof lock, "%s.lock", spool);
    CHECK(write_file(lock, "", 0) == 0);
    struct mailbox mb;
    struct mailbox_opts o = opts(0);
    int64_t t0 = now_ms();
    CHECK_STATUS(&mb, mailbox_open(&mb, spool, &o), MB_IN_USE);
    CHECK(now_ms() - t0 < 1500);
    mailbox_close(&mb);
    CHECK(exists(lock));            /* not ours: left alone */
    unlink(lock);
}

/* ---- UPDATE ---- */

TEST(update_without_deletions_touches_nothing)
{
    new_spool();
    struct buf f = join(S(M1), S(M2), S(M3_LAST), NONE);
    CHECK(write_file(spool, f.p, f.len) == 0);
    struct timespec old[2] = { { 1000000000, 123456789 }, { 1000000000, 123456789 } };
    CHECK(utimensat(AT_FDCWD, spool, old, 0) == 0);
    struct mailbox mb;
    CHECK_STATUS(&mb, open_mb(&mb, spool), MB_OK);
    CHECK_STATUS(&mb, mailbox_update(&mb), MB_OK);
    mailbox_close(&mb);
    struct stat st;
    CHECK(stat(spool, &st) == 0);
    CHECK_EQ(st.st_mtim.tv_sec, 1000000000);
    CHECK_EQ(st.st_mtim.tv_nsec, 123456789);
    CHECK_FILE(spool, f.p, f.len);
    CHECK_NO_LOCKS(spool);
    free(f.p);
}

static int bit(unsigned mask, size_t i)
{
    return i < 32 && (mask >> i & 1);
}

/* Writes parts, deletes the messages whose bit is set in mask, updates,
 * and compares with the parts not deleted. */
static void check_delete(const char *const *parts, const size_t *lens, size_t n, size_t first_msg,
                         unsigned mask, int line)
{
    new_spool();
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += lens[i];
    char *all = malloc(total + 1), *want = malloc(total + 1);
    size_t o = 0, w = 0;
    for (size_t i = 0; i < n; i++) {
        memcpy(all + o, parts[i], lens[i]);
        o += lens[i];
        if (i < first_msg || !bit(mask, i - first_msg)) {
            memcpy(want + w, parts[i], lens[i]);
            w += lens[i];
        }
    }
    CHECK(write_file(spool, all, total) == 0);
    CHECK(chmod(spool, 0640) == 0);
    struct stat before, after;
    CHECK(stat(spool, &before) == 0);
    struct mailbox mb;
    CHECK_STATUS(&mb, open_mb(&mb, spool), MB_OK);
    if (mb.idx.count != n - first_msg) {
        tl_current_failed = 1;
        printf("  %s:%d: %s: %zu messages, expected %zu\n", __FILE__, line, tl_current,
               mb.idx.count, n - first_msg);
        mailbox_close(&mb);
        free(all);
        free(want);
        return;
    }
    unsigned char kept_uid[64][UIDL_DIGEST_LEN];
    size_t kept = 0;
    for (size_t i = 0; i < mb.idx.count; i++) {
        if (bit(mask, i))
            mb.idx.msgs[i].deleted = 1;
        else if (kept < 64)
            memcpy(kept_uid[kept++], mb.idx.msgs[i].uid, UIDL_DIGEST_LEN);
    }
    report_status(&mb, mailbox_update(&mb), MB_OK, line);
    mailbox_close(&mb);
    check_file(spool, want, w, line);
    CHECK(stat(spool, &after) == 0);
    if (before.st_ino != after.st_ino || before.st_dev != after.st_dev ||
        before.st_mode != after.st_mode || before.st_uid != after.st_uid) {
        tl_current_failed = 1;
        printf("  %s:%d: %s: inode/mode/owner changed by UPDATE\n", __FILE__, line, tl_current);
    }
    check_no_locks(spool, line);
    /* the result is a valid mailbox with the kept messages and their UIDLs */
    CHECK_STATUS(&mb, open_mb(&mb, spool), MB_OK);
    CHECK_EQ(mb.idx.count, kept);
    for (size_t i = 0; i < mb.idx.count && i < kept; i++)
        CHECK_MEM(mb.idx.msgs[i].uid, UIDL_DIGEST_LEN, kept_uid[i], UIDL_DIGEST_LEN);
    mailbox_close(&mb);
    free(all);
    free(want);
}

TEST(delete_first_middle_last_all)
{
    const char *parts[] = { M1, M2, M3 };
    const size_t lens[] = { sizeof M1 - 1, sizeof M2 - 1, sizeof M3 - 1 };
    check_delete(parts, lens, 3, 0, 1u << 0, __LINE__);           /* first */
    check_delete(parts, lens, 3, 0, 1u << 1, __LINE__);           /* middle */
    check_delete(parts, lens, 3, 0, 1u << 2, __LINE__);           /* last */
    check_delete(parts, lens, 3, 0, 7, __LINE__);                 /* all */
    check_delete(parts, lens, 3, 0, 5, __LINE__);                 /* first and last */
    check_delete(parts, lens, 3, 0, 6, __LINE__);                 /* the two last */
    check_delete(parts, lens, 3, 0, 3, __LINE__);                 /* the two first */
}

TEST(delete_with_unterminated_last_message)
{
    const char *parts[] = { M1, M2, M3_LAST };
    const size_t lens[] = { sizeof M1 - 1, sizeof M2 - 1, sizeof M3_LAST - 1 };
    check_delete(parts, lens, 3, 0, 1u << 0, __LINE__);
    check_delete(parts, lens, 3, 0, 1u << 1, __LINE__);
    check_delete(parts, lens, 3, 0, 1u << 2, __LINE__);
    check_delete(parts, lens, 3, 0, 7, __LINE__);
    static const char nonl[] = FROM3 "Subject: no newline\n\nlast line";
    const char *p2[] = { M1, M2, nonl };
    const size_t l2[] = { sizeof M1 - 1, sizeof M2 - 1, sizeof nonl - 1 };
    check_delete(p2, l2, 3, 0, 1u << 0, __LINE__);
    check_delete(p2, l2, 3, 0, 1u << 2, __LINE__);
}

TEST(delete_keeps_pseudo_message)
{
    const char *parts[] = { PSEUDO, M1, M2, M3 };
    const size_t lens[] = { sizeof PSEUDO - 1, sizeof M1 - 1, sizeof M2 - 1, sizeof M3 - 1 };
    check_delete(parts, lens, 4, 1, 1u << 0, __LINE__);
    check_delete(parts, lens, 4, 1, 1u << 1, __LINE__);
    check_delete(parts, lens, 4, 1, 7, __LINE__);
}

TEST(delete_in_crlf_spool)
{
    static const char c1[] = "From a@b Mon Jan  1 00:00:00 2024\r\nSubject: 1\r\n\r\nb1\r\n\r\n";
    static const char c2[] = "From c@d Mon Jan  1 00:00:00 2024\r\nSubject: 2\r\n\r\nb2\r\n\r\n";
    static const char c3[] = "From e@f Mon Jan  1 00:00:00 2024\r\nSubject: 3\r\n\r\nb3\r\n";
    const char *parts[] = { c1, c2, c3 };
    const size_t lens[] = { sizeof c1 - 1, sizeof c2 - 1, sizeof c3 - 1 };
    check_delete(parts, lens, 3, 0, 1u << 1, __LINE__);
    check_delete(parts, lens, 3, 0, 1u << 0, __LINE__);
}

TEST(delete_many_messages)
{
    /* 40 messages, every third deleted; parts built in the test */
    enum { N = 40 };
    static char texts[N][128];
    const char *parts[N];
    size_t lens[N];
    for (int i = 0; i < N; i++) {
        snprintf(texts[i], sizeof texts[i],
                 "From m%d@example.org Mon Jan  1 00:00:00 2024\nMessage-ID: <%d@x>\n\n"
                 "body %d\n%s\n", i, i, i, i % 5 == 0 ? ">From quoted\n" : "");
        parts[i] = texts[i];
        lens[i] = strlen(texts[i]);
    }
    /* masks are 32 bits: check the first 32 with the pattern, rest kept */
    unsigned mask = 0;
    for (int i = 0; i < 32; i++)
        if (i % 3 == 1)
            mask |= 1u << i;
    check_delete(parts, lens, N, 0, mask, __LINE__);
}

TEST(mail_appended_after_open_is_kept)
{
    new_spool();
    struct buf f = join(S(M1), S(M2), S(M3), NONE);
    CHECK(write_file(spool, f.p, f.len) == 0);
    struct mailbox mb;
    CHECK_STATUS(&mb, open_mb(&mb, spool), MB_OK);
    CHECK_EQ(mb.idx.count, 3);
    CHECK(append_file(spool, S(M4)) == 0);
    CHECK_STATUS(&mb, mailbox_verify(&mb), MB_OK);    /* appended: fine */
    if (mb.idx.count == 3)
        mb.idx.msgs[1].deleted = 1;
    CHECK_STATUS(&mb, mailbox_update(&mb), MB_OK);
    mailbox_close(&mb);
    struct buf want = join(S(M1), S(M3), S(M4), NONE);
    CHECK_FILE(spool, want.p, want.len);
    CHECK_NO_LOCKS(spool);
    free(want.p);
    free(f.p);
}

TEST(mail_appended_after_open_is_kept_when_all_deleted)
{
    new_spool();
    struct buf f = join(S(M1), S(M2), NONE, NONE);
    CHECK(write_file(spool, f.p, f.len) == 0);
    struct mailbox mb;
    CHECK_STATUS(&mb, open_mb(&mb, spool), MB_OK);
    CHECK(append_file(spool, S(M4)) == 0);
    for (size_t i = 0; i < mb.idx.count; i++)
        mb.idx.msgs[i].deleted = 1;
    CHECK_STATUS(&mb, mailbox_update(&mb), MB_OK);
    mailbox_close(&mb);
    CHECK_FILE(spool, M4, sizeof M4 - 1);
    free(f.p);

    /* last message deleted, mail appended: the new mail takes its place */
    new_spool();
    f = join(S(M1), S(M2), NONE, NONE);
    CHECK(write_file(spool, f.p, f.len) == 0);
    CHECK_STATUS(&mb, open_mb(&mb, spool), MB_OK);
    CHECK(append_file(spool, S(M4)) == 0);
    if (mb.idx.count == 2)
        mb.idx.msgs[1].deleted = 1;
    CHECK_STATUS(&mb, mailbox_update(&mb), MB_OK);
    mailbox_close(&mb);
    struct buf want = join(S(M1), S(M4), NONE, NONE);
    CHECK_FILE(spool, want.p, want.len);
    free(want.p);
    free(f.p);
}

/* Overwrites one byte of the spool at off (same size), through another
 * descriptor, and moves the mtime so the change is visible. */
static void rewrite_byte(const char *path, off_t off, char c)
{
    int fd = open(path, O_WRONLY);
    if (fd < 0 || pwrite(fd, &c, 1, off) != 1)
        perror("rewrite");
    if (fd >= 0)
        close(fd);
    struct timespec later[2] = { { 0, UTIME_NOW }, { 0, UTIME_NOW } };
    utimensat(AT_FDCWD, path, later, 0);
}

TEST(rewritten_file_is_changed_and_left_alone)
{
    new_spool();
    struct buf f = join(S(M1), S(M2), S(M3), NONE);
    CHECK(write_file(spool, f.p, f.len) == 0);
    struct mailbox mb;
    CHECK_STATUS(&mb, open_mb(&mb, spool), MB_OK);
    /* someone else rewrites a byte in the first message */
    size_t off = strlen(FROM1) + 3;
    f.p[off] = 'X';
    rewrite_byte(spool, (off_t)off, 'X');
    CHECK_STATUS(&mb, mailbox_verify(&mb), MB_CHANGED);
    if (mb.idx.count == 3)
        mb.idx.msgs[1].deleted = 1;
    CHECK_STATUS(&mb, mailbox_update(&mb), MB_CHANGED);
    mailbox_close(&mb);
    CHECK_FILE(spool, f.p, f.len);      /* nothing deleted */
    CHECK_NO_LOCKS(spool);
    free(f.p);
}

/* Another program rewrites a byte after the scan and puts the old mtime
 * back: UPDATE must notice and delete nothing.  age_ms: how long the
 * spool's ctime ages before the scan (past 10 ms, the scan trusts it). */
static void check_rewrite_caught(long age_ms, int line)
{
    new_spool();
    struct buf f = join(S(M1), S(M2), S(M3), NONE);
    CHECK(write_file(spool, f.p, f.len) == 0);
    struct timespec pause = { 0, age_ms * 1000000L };
    nanosleep(&pause, NULL);
    struct mailbox mb;
    CHECK_STATUS(&mb, open_mb(&mb, spool), MB_OK);
    struct stat st;
    CHECK(stat(spool, &st) == 0);
    if (age_ms >= 30 && st.st_ctim.tv_nsec != 0 && !mb.identity_exact) {
        tl_current_failed = 1;
        printf("  %s:%d: %s: an old ctime was not trusted\n", __FILE__, line, tl_current);
    }
    size_t off = sizeof M1 - 1 + strlen(FROM2) + 2;
    f.p[off] = 'Y';
    rewrite_byte(spool, (off_t)off, 'Y');
    struct timespec ts[2] = { st.st_atim, st.st_mtim };
    CHECK(utimensat(AT_FDCWD, spool, ts, 0) == 0);
    if (mb.idx.count == 3)
        mb.idx.msgs[0].deleted = 1;
    CHECK_STATUS(&mb, mailbox_update(&mb), MB_CHANGED);
    mailbox_close(&mb);
    CHECK_FILE(spool, f.p, f.len);
    free(f.p);
}

/* Hashed again at UPDATE: only the contents tell. */
TEST(rewrite_with_same_size_and_mtime_is_caught_by_update)
{
    check_rewrite_caught(0, __LINE__);
}

/* A spool big enough to be scanned by threads: the index, a RETR-time
 * check and an UPDATE through it. */
TEST(big_spool_scanned_in_parts)
{
    new_spool();
    const size_t n = 3600, body = 10000;
    struct buf f = { malloc(n * (body + 200)), 0 };
    CHECK(f.p != NULL);
    if (f.p == NULL)
        return;
    size_t second = 0;
    for (size_t i = 0; i < n; i++) {
        if (i == 1)
            second = f.len;
        f.len += (size_t)sprintf(f.p + f.len, "From a@b Mon Jan  1 00:00:00 2024\n"
                                 "Message-ID: <%zu@b>\n\n", i);
        for (size_t k = 0; k < body / 50; k++)
            f.len += (size_t)sprintf(f.p + f.len, "%049zu\n", k * 7919 + i);
        f.p[f.len++] = '\n';
    }
    CHECK(f.len >= (32u << 20));
    CHECK(write_file(spool, f.p, f.len) == 0);
    struct mailbox mb;
    CHECK_STATUS(&mb, open_mb(&mb, spool), MB_OK);
    CHECK_EQ(mb.idx.count, n);
    CHECK_EQ(mb.idx.prefix_hash, mbox_prefix_hash(f.p, f.len));
    CHECK_STATUS(&mb, mailbox_verify(&mb), MB_OK);
    if (mb.idx.count == n)
        mb.idx.msgs[0].deleted = 1;
    CHECK_STATUS(&mb, mailbox_update(&mb), MB_OK);
    mailbox_close(&mb);
    CHECK_FILE(spool, f.p + second, f.len - second);
    free(f.p);
}

/* An old ctime lets UPDATE skip hashing an unchanged spool; a rewrite
 * that puts size and mtime back still moves the ctime, and is caught. */
TEST(rewrite_after_a_trusted_scan_is_caught_by_the_ctime)
{
    check_rewrite_caught(30, __LINE__);
}

/* A scan right after a write does not trust the ctime. */
TEST(fresh_ctime_is_not_trusted)
{
    new_spool();
    struct buf f = join(S(M1), S(M2), S(M3), NONE);
    CHECK(write_file(spool, f.p, f.len) == 0);
    struct mailbox mb;
    CHECK_STATUS(&mb, open_mb(&mb, spool), MB_OK);
    CHECK(!mb.identity_exact);
    mailbox_close(&mb);
    free(f.p);
}

TEST(truncated_file_is_changed)
{
    new_spool();
    struct buf f = join(S(M1), S(M2), S(M3), NONE);
    CHECK(write_file(spool, f.p, f.len) == 0);
    struct mailbox mb;
    CHECK_STATUS(&mb, open_mb(&mb, spool), MB_OK);
    CHECK(truncate(spool, (off_t)(sizeof M1 - 1)) == 0);
    CHECK_STATUS(&mb, mailbox_verify(&mb), MB_CHANGED);
    /* sending a message that is gone fails cleanly */
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    struct netio io;
    CHECK(netio_init(&io, sv[1], sv[1], 5) == 0);
    if (mb.idx.count == 3)
        CHECK(mailbox_send(&mb, 2, -1, &io) != MB_OK);
    netio_free(&io);
    close(sv[0]);
    close(sv[1]);
    if (mb.idx.count == 3)
        mb.idx.msgs[0].deleted = 1;
    CHECK_STATUS(&mb, mailbox_update(&mb), MB_CHANGED);
    mailbox_close(&mb);
    CHECK_FILE(spool, M1, sizeof M1 - 1);
    free(f.p);
}

TEST(replaced_file_is_changed_and_new_file_untouched)
{
    new_spool();
    struct buf f = join(S(M1), S(M2), S(M3), NONE);
    CHECK(write_file(spool, f.p, f.len) == 0);
    struct mailbox mb;
    CHECK_STATUS(&mb, open_mb(&mb, spool), MB_OK);
    char tmp[200];
    snprintf(tmp, sizeof tmp, "%s.new", spool);
    struct buf g = join(S(M1), S(M2), S(M3), S(M4));
    CHECK(write_file(tmp, g.p, g.len) == 0);
    CHECK(rename(tmp, spool) == 0);
    CHECK_STATUS(&mb, mailbox_verify(&mb), MB_CHANGED);
    if (mb.idx.count == 3)
        mb.idx.msgs[0].deleted = 1;
    CHECK_STATUS(&mb, mailbox_update(&mb), MB_CHANGED);
    mailbox_close(&mb);
    CHECK_FILE(spool, g.p, g.len);
    free(f.p);
    free(g.p);
}

TEST(update_waits_for_locks_and_gives_up)
{
    new_spool();
    struct buf f = join(S(M1), S(M2), NONE, NONE);
    CHECK(write_file(spool, f.p, f.len) == 0);
    struct mailbox mb;
    struct mailbox_opts o = opts(0);
    CHECK_STATUS(&mb, mailbox_open(&mb, spool, &o), MB_OK);
    char lock[200];
    snprintf(lock, sizeof lock, "%s.lock", spool);
    CHECK(write_file(lock, "", 0) == 0);          /* a deliverer is busy */
    if (mb.idx.count == 2)
        mb.idx.msgs[0].deleted = 1;
    int64_t t0 = now_ms();
    enum mb_status st = mailbox_update(&mb);
    CHECK(st != MB_OK);
    CHECK(now_ms() - t0 < 1500);
    CHECK_FILE(spool, f.p, f.len);
    CHECK(exists(lock));
    unlink(lock);
    mailbox_close(&mb);
    free(f.p);
}

/* ---- RETR / TOP bytes ---- */

struct reader {
    int fd;
    char *buf;
    size_t cap, got;
};

static void *reader_main(void *arg)
{
    struct reader *r = arg;
    for (;;) {
        ssize_t n = read(r->fd, r->buf + r->got, r->cap - r->got);
        if (n > 0) {
            r->got += (size_t)n;
            if (r->got == r->cap)
                break;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        break;
    }
    return NULL;
}

/* Sends message i (body_lines as for mailbox_send) and returns what the
 * client receives (malloc'd). */
static char *send_msg(struct mailbox *mb, size_t i, int64_t body_lines, size_t *len,
                      enum mb_status *st)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        return NULL;
    struct netio io;
    if (netio_init(&io, sv[1], sv[1], 5) != 0) {
        close(sv[0]);
        close(sv[1]);
        return NULL;
    }
    size_t cap = 4 * 1024 * 1024;
    struct reader r = { sv[0], malloc(cap), cap, 0 };
    pthread_t t;
    if (r.buf == NULL || pthread_create(&t, NULL, reader_main, &r) != 0) {
        free(r.buf);
        netio_free(&io);
        close(sv[0]);
        close(sv[1]);
        return NULL;
    }
    *st = mailbox_send(mb, i, body_lines, &io);
    netio_flush(&io);
    shutdown(sv[1], SHUT_WR);
    pthread_join(t, NULL);
    netio_free(&io);
    close(sv[0]);
    close(sv[1]);
    *len = r.got;
    return r.buf;
}

static void check_send(struct mailbox *mb, size_t i, int64_t body_lines, const char *want,
                       size_t want_len, int line)
{
    size_t len = 0;
    enum mb_status st = MB_TEMP;
    char *got = send_msg(mb, i, body_lines, &len, &st);
    if (got == NULL) {
        tl_current_failed = 1;
        printf("  %s:%d: %s: send failed to run\n", __FILE__, line, tl_current);
        return;
    }
    report_status(mb, st, MB_OK, line);
    tl_check_mem(__FILE__, line, got, len, want, want_len);
    free(got);
}
#define CHECK_SEND(mb, i, lines, want) check_send((mb), (i), (lines), S(want), __LINE__)

TEST(retr_and_top_bytes)
{
    new_spool();
    static const char nohdr[] = FROM4 "Subject: headers only\n\n";
    static const char last[] = FROM4 "Subject: last\n\n.starts with dot\nabc";
    struct buf f = join(S(M1), S(M2), S(nohdr), S(last));
    CHECK(write_file(spool, f.p, f.len) == 0);
    struct mailbox mb;
    CHECK_STATUS(&mb, open_mb(&mb, spool), MB_OK);
    CHECK_EQ(mb.idx.count, 4);
    if (mb.idx.count != 4) {
        mailbox_close(&mb);
        free(f.p);
        return;
    }
    /* RETR: CRLF, dot-stuffed, terminated; the separator is not sent */
    CHECK_SEND(&mb, 0, -1,
               "Received: from a\r\nSubject: one\r\n\r\nbody 1\r\n..dotted\r\n.\r\n");
    CHECK_SEND(&mb, 1, -1,
               "Received: from b\r\nSubject: two\r\n\r\nbody 2\r\nline 2\r\nline 3\r\n.\r\n");
    CHECK_SEND(&mb, 2, -1, "Subject: headers only\r\n.\r\n");
    CHECK_SEND(&mb, 3, -1, "Subject: last\r\n\r\n..starts with dot\r\nabc\r\n.\r\n");
    /* TOP */
    CHECK_SEND(&mb, 0, 0, "Received: from a\r\nSubject: one\r\n\r\n.\r\n");
    CHECK_SEND(&mb, 0, 1, "Received: from a\r\nSubject: one\r\n\r\nbody 1\r\n.\r\n");
    CHECK_SEND(&mb, 0, 2,
               "Received: from a\r\nSubject: one\r\n\r\nbody 1\r\n..dotted\r\n.\r\n");
    CHECK_SEND(&mb, 1, 2,
               "Received: from b\r\nSubject: two\r\n\r\nbody 2\r\nline 2\r\n.\r\n");
    CHECK_SEND(&mb, 1, 1000000,
               "Received: from b\r\nSubject: two\r\n\r\nbody 2\r\nline 2\r\nline 3\r\n.\r\n");
    /* no blank line in the message: TOP still ends the headers with one */
    CHECK_SEND(&mb, 2, 0, "Subject: headers only\r\n\r\n.\r\n");
    CHECK_SEND(&mb, 2, 5, "Subject: headers only\r\n\r\n.\r\n");
    CHECK_SEND(&mb, 3, 1, "Subject: last\r\n\r\n..starts with dot\r\n.\r\n");
    CHECK_SEND(&mb, 3, 2, "Subject: last\r\n\r\n..starts with dot\r\nabc\r\n.\r\n");
    /* the size announced by LIST is what RETR sends, minus stuffing and ".\r\n" */
    for (size_t i = 0; i < mb.idx.count; i++) {
        size_t len = 0;
        enum mb_status st;
        char *got = send_msg(&mb, i, -1, &len, &st);
        const char *c = f.p + mb.idx.msgs[i].content_off;
        size_t stuffed = 0;
        for (size_t k = 0; k < msg_content_len(&mb.idx, i); k++)
            stuffed += c[k] == '.' && (k == 0 || c[k - 1] == '\n');
        CHECK(got != NULL);
        CHECK_EQ(mb.idx.msgs[i].size + stuffed + 3, len);
        free(got);
    }
    mailbox_close(&mb);
    free(f.p);
}

TEST(retr_and_top_headers_only_unterminated)
{
    new_spool();
    static const char m[] = FROM1 "Subject: cut";
    CHECK(write_file(spool, S(m)) == 0);
    struct mailbox mb;
    CHECK_STATUS(&mb, open_mb(&mb, spool), MB_OK);
    CHECK_EQ(mb.idx.count, 1);
    if (mb.idx.count == 1) {
        CHECK_SEND(&mb, 0, -1, "Subject: cut\r\n.\r\n");
        CHECK_SEND(&mb, 0, 0, "Subject: cut\r\n\r\n.\r\n");
        CHECK_SEND(&mb, 0, 3, "Subject: cut\r\n\r\n.\r\n");
    }
    mailbox_close(&mb);
}

TEST(retr_crlf_spool_is_not_doubled)
{
    new_spool();
    static const char m[] = "From a@b Mon Jan  1 00:00:00 2024\r\nSubject: c\r\n\r\n.x\r\ny\r\n\r\n"
                            "From c@d Mon Jan  1 00:00:00 2024\r\nSubject: d\r\n\r\nz\r\n";
    CHECK(write_file(spool, S(m)) == 0);
    struct mailbox mb;
    CHECK_STATUS(&mb, open_mb(&mb, spool), MB_OK);
    CHECK_EQ(mb.idx.count, 2);
    if (mb.idx.count == 2) {
        CHECK_SEND(&mb, 0, -1, "Subject: c\r\n\r\n..x\r\ny\r\n.\r\n");
        CHECK_SEND(&mb, 0, 1, "Subject: c\r\n\r\n..x\r\n.\r\n");
        CHECK_SEND(&mb, 1, -1, "Subject: d\r\n\r\nz\r\n.\r\n");
    }
    mailbox_close(&mb);
}

/* A message larger than the send chunks, with a '.' line and a CRLF pair
 * on chunk boundaries (128 KB and 1 MB are likely chunk sizes). */
TEST(retr_large_message_across_chunks)
{
    new_spool();
    size_t body = 600 * 1024;
    const char *head = FROM1 "Subject: big\n\n";
    size_t hl = strlen(head), co = strlen(FROM1);
    char *f = malloc(hl + body + 1);
    CHECK(f != NULL);
    if (f == NULL)
        return;
    memcpy(f, head, hl);
    for (size_t i = 0; i < body; i++)
        f[hl + i] = (i % 61 == 60) ? '\n' : (char)('a' + i % 26);
    /* content offsets 128K-1 / 128K and 256K: LF then '.', a CR|LF split */
    size_t k1 = 128 * 1024, k2 = 256 * 1024, k3 = 384 * 1024;
    f[co + k1 - 1] = '\n';
    f[co + k1] = '.';
    f[co + k2 - 1] = '\r';
    f[co + k2] = '\n';
    f[co + k3 - 1] = '\n';
    f[co + k3] = '.';
    f[co + k3 + 1] = '\n';
    f[hl + body - 1] = '\n';
    size_t flen = hl + body;
    CHECK(write_file(spool, f, flen) == 0);

    /* the expected bytes, computed here */
    const char *c = f + co;
    size_t clen = flen - co;
    char *want = malloc(2 * clen + 8);
    size_t w = 0;
    int bol = 1;
    for (size_t i = 0; i < clen; i++) {
        if (bol && c[i] == '.')
            want[w++] = '.';
        bol = 0;
        if (c[i] == '\n') {
            if (i == 0 || c[i - 1] != '\r')
                want[w++] = '\r';
            want[w++] = '\n';
            bol = 1;
        } else {
            want[w++] = c[i];
        }
    }
    memcpy(want + w, ".\r\n", 3);
    w += 3;

    struct mailbox mb;
    CHECK_STATUS(&mb, open_mb(&mb, spool), MB_OK);
    CHECK_EQ(mb.idx.count, 1);
    if (mb.idx.count == 1) {
        size_t len = 0;
        enum mb_status st = MB_TEMP;
        char *got = send_msg(&mb, 0, -1, &len, &st);
        CHECK_EQ(st, MB_OK);
        CHECK(got != NULL);
        if (got) {
            CHECK_EQ(len, w);
            CHECK(len == w && memcmp(got, want, w) == 0);
        }
        free(got);
    }
    mailbox_close(&mb);
    free(want);
    free(f);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    if (tl_make_tmpdir(tmpdir, "mailbox") != 0)
        return 1;
    RUN(missing_file_is_empty_mailbox);
    RUN(empty_file_is_empty_mailbox);
    RUN(open_scans_and_releases_locks);
    RUN(symlink_is_refused);
    RUN(directory_is_refused);
    RUN(fifo_is_refused_without_blocking);
    RUN(wrong_owner_is_refused);
    RUN(not_mbox_is_refused);
    RUN(locked_by_other_program_is_in_use);
    RUN(update_without_deletions_touches_nothing);
    RUN(delete_first_middle_last_all);
    RUN(delete_with_unterminated_last_message);
    RUN(delete_keeps_pseudo_message);
    RUN(delete_in_crlf_spool);
    RUN(delete_many_messages);
    RUN(mail_appended_after_open_is_kept);
    RUN(mail_appended_after_open_is_kept_when_all_deleted);
    RUN(rewritten_file_is_changed_and_left_alone);
    RUN(rewrite_with_same_size_and_mtime_is_caught_by_update);
    RUN(big_spool_scanned_in_parts);
    RUN(rewrite_after_a_trusted_scan_is_caught_by_the_ctime);
    RUN(fresh_ctime_is_not_trusted);
    RUN(truncated_file_is_changed);
    RUN(replaced_file_is_changed_and_new_file_untouched);
    RUN(update_waits_for_locks_and_gives_up);
    RUN(retr_and_top_bytes);
    RUN(retr_and_top_headers_only_unterminated);
    RUN(retr_crlf_spool_is_not_doubled);
    RUN(retr_large_message_across_chunks);
    tl_remove_tmpdir(tmpdir);
    return test_report();
}

/* Unit tests: dotlocks, and the all-or-nothing lock sets of lock.h, with
 * other processes (forked children) holding the locks.  Every wait is
 * bounded (lock timeouts of 1 s, child timeouts of a few seconds). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testlib.h"
#include "config.h"
#include "lock.h"
#include "util.h"

static char tmpdir[64];
static char spool[128], lockpath[160];
static int case_no;

/* A fresh spool file name (and its .lock) for each test. */
static void new_paths(void)
{
    snprintf(spool, sizeof spool, "%s/user%d", tmpdir, ++case_no);
    snprintf(lockpath, sizeof lockpath, "%s.lock", spool);
    unlink(lockpath);
    int fd = open(spool, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0) {
        if (write(fd, "From a\n\nx\n", 10) != 10)
            perror("write");
        close(fd);
    }
}

static int exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* Files in tmpdir whose name starts with prefix (temp files of dotlocks). */
static int count_prefixed(const char *prefix)
{
    DIR *d = opendir(tmpdir);
    if (d == NULL)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    closedir(d);
    return n;
}

static const char *base(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static void set_mtime_ago(const char *path, time_t secs)
{
    struct timespec ts[2];
    clock_gettime(CLOCK_REALTIME, &ts[0]);
    ts[0].tv_sec -= secs;
    ts[1] = ts[0];
    if (utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW) != 0)
        perror("utimensat");
}

static time_t mtime_age(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return -1;
    return time(NULL) - st.st_mtime;
}

static ino_t inode_of(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0 ? st.st_ino : 0;
}

static double now_s(void)
{
    return (double)now_ms() / 1000.0;
}

/* ---- a child process that holds a lock ---- */

enum hold_kind { HOLD_FCNTL_WRITE, HOLD_FCNTL_READ, HOLD_FLOCK_EX };

struct holder {
    pid_t pid;
    int release_fd;     /* write a byte (or close) to let the child go */
};

/* Forks a child that takes the lock on its own descriptor of spool, says
 * so, and holds it until told (or at most 10 s). */
static int hold_start(struct holder *h, enum hold_kind kind)
{
    int ready[2], release[2];
    if (pipe(ready) != 0 || pipe(release) != 0)
        return -1;
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        close(ready[0]);
        close(release[1]);
        alarm(10);
        int fd = open(spool, O_RDWR);
        int rc = -1;
        if (fd >= 0) {
            if (kind == HOLD_FLOCK_EX) {
                rc = flock(fd, LOCK_EX | LOCK_NB);
            } else {
                struct flock fl = { .l_type = kind == HOLD_FCNTL_READ ? F_RDLCK : F_WRLCK,
                                    .l_whence = SEEK_SET };
                rc = fcntl(fd, F_SETLK, &fl);
            }
        }
        char c = rc == 0 ? 'y' : 'n';
        if (write(ready[1], &c, 1) != 1)
            _exit(2);
        /* Hold the lock until the parent says so (or goes away). */
        _exit(read(release[0], &c, 1) < 0 ? 3 : 0);
    }
    close(ready[1]);
    close(release[0]);
    h->pid = pid;
    h->release_fd = release[1];
    char c = 0;
    ssize_t n = read(ready[0], &c, 1);
    close(ready[0]);
    return n == 1 && c == 'y' ? 0 : -1;
}

static void hold_stop(struct holder *h)
{
    close(h->release_fd);
    int status;
    waitpid(h->pid, &status, 0);
}

/* In a child: can another process take this lock right now?  1 yes, 0 no,
 * -1 error. */
static int other_can_lock(enum hold_kind kind)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        alarm(5);
        int fd = open(spool, O_RDWR);
        if (fd < 0)
            _exit(2);
        int rc;
        if (kind == HOLD_FLOCK_EX) {
            rc = flock(fd, LOCK_EX | LOCK_NB);
        } else {
            struct flock fl = { .l_type = kind == HOLD_FCNTL_READ ? F_RDLCK : F_WRLCK,
                                .l_whence = SEEK_SET };
            rc = fcntl(fd, F_SETLK, &fl);
        }
        _exit(rc == 0 ? 0 : 1);
    }
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
        return -1;
    return WEXITSTATUS(status) == 0 ? 1 : WEXITSTATUS(status) == 1 ? 0 : -1;
}

/* ---- dotlock_direct ---- */

TEST(dotlock_create_and_remove)
{
    new_paths();
    CHECK_EQ(dotlock_direct(lockpath, DOTLOCK_CREATE, 10), 0);
    CHECK(exists(lockpath));
    struct stat st;
    CHECK(lstat(lockpath, &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 1);
    /* the unique temp file is gone: only USER.lock carries the prefix */
    char prefix[200];
    snprintf(prefix, sizeof prefix, "%s", base(lockpath));
    CHECK_EQ(count_prefixed(prefix), 1);
    CHECK_EQ(dotlock_direct(lockpath, DOTLOCK_REMOVE, 10), 0);
    CHECK(!exists(lockpath));
    CHECK_EQ(count_prefixed(prefix), 0);
    /* removing a lock that is not there is fine */
    CHECK_EQ(dotlock_direct(lockpath, DOTLOCK_REMOVE, 10), 0);
}

TEST(dotlock_second_create_fails_with_eexist)
{
    new_paths();
    CHECK_EQ(dotlock_direct(lockpath, DOTLOCK_CREATE, 10), 0);
    ino_t ino = inode_of(lockpath);
    errno = 0;
    CHECK_EQ(dotlock_direct(lockpath, DOTLOCK_CREATE, 10), -1);
    CHECK_EQ(errno, EEXIST);
    CHECK_EQ(inode_of(lockpath), ino);
    char prefix[200];
    snprintf(prefix, sizeof prefix, "%s", base(lockpath));
    CHECK_EQ(count_prefixed(prefix), 1);   /* no temp file left behind */
    CHECK_EQ(dotlock_direct(lockpath, DOTLOCK_REMOVE, 10), 0);
}

TEST(dotlock_stale_lock_is_taken_over)
{
    new_paths();
    int fd = open(lockpath, O_WRONLY | O_CREAT | O_EXCL, 0644);
    CHECK(fd >= 0);
    if (fd >= 0)
        close(fd);
    set_mtime_ago(lockpath, 3600);
    CHECK(mtime_age(lockpath) >= 3500);
    CHECK_EQ(dotlock_direct(lockpath, DOTLOCK_CREATE, 10), 0);
    CHECK(exists(lockpath));
    time_t age = mtime_age(lockpath);
    CHECK(age >= -2 && age <= 5);   /* a fresh lock, ours */
    CHECK_EQ(dotlock_direct(lockpath, DOTLOCK_REMOVE, 10), 0);
}

TEST(dotlock_fresh_lock_is_not_taken)
{
    new_paths();
    int fd = open(lockpath, O_WRONLY | O_CREAT | O_EXCL, 0644);
    CHECK(fd >= 0);
    if (fd >= 0)
        close(fd);
    set_mtime_ago(lockpath, 5);       /* younger than stale_secs */
    ino_t ino = inode_of(lockpath);
    errno = 0;
    CHECK_EQ(dotlock_direct(lockpath, DOTLOCK_CREATE, 10), -1);
    CHECK_EQ(errno, EEXIST);
    CHECK_EQ(inode_of(lockpath), ino);
    CHECK(mtime_age(lockpath) >= 4);  /* untouched */
    unlink(lockpath);
}

TEST(dotlock_refresh_updates_mtime)
{
    new_paths();
    CHECK_EQ(dotlock_direct(lockpath, DOTLOCK_CREATE, 10), 0);
    set_mtime_ago(lockpath, 600);
    CHECK_EQ(dotlock_direct(lockpath, DOTLOCK_REFRESH, 10), 0);
    time_t age = mtime_age(lockpath);
    CHECK(age >= -2 && age <= 5);
    CHECK_EQ(dotlock_direct(lockpath, DOTLOCK_REMOVE, 10), 0);
}

TEST(dotlock_in_missing_directory_is_an_error)
{
    char path[200];
    snprintf(path, sizeof path, "%s/no-such-dir/user.lock", tmpdir);
    errno = 0;
    CHECK_EQ(dotlock_direct(path, DOTLOCK_CREATE, 10), -1);
    CHECK(errno != 0 && errno != EEXIST);
}

/* ---- locker ---- */

static void check_nothing_held(struct locker *lk, int line)
{
    if (lk->held_fcntl || lk->held_flock || lk->held_dotlock) {
        tl_current_failed = 1;
        printf("  %s:%d: %s: still holding fcntl %d flock %d dotlock %d\n", __FILE__, line,
               tl_current, lk->held_fcntl, lk->held_flock, lk->held_dotlock);
    }
}
#define CHECK_NOTHING_HELD(lk) check_nothing_held((lk), __LINE__)

TEST(locker_acquire_and_release_when_free)
{
    new_paths();
    struct locker lk;
    CHECK_EQ(locker_init(&lk, spool, LOCK_KIND_FCNTL | LOCK_KIND_DOTLOCK, 1, 10), 0);
    CHECK(lk.lock_path != NULL && strcmp(lk.lock_path, lockpath) == 0);
    int fd = open(spool, O_RDWR);
    CHECK(fd >= 0);
    double t0 = now_s();
    CHECK_EQ(locker_acquire(&lk, fd, 1), 0);
    CHECK(now_s() - t0 < 0.5);
    CHECK(lk.held_fcntl && lk.held_dotlock && !lk.held_flock);
    CHECK(exists(lockpath));
    CHECK_EQ(other_can_lock(HOLD_FCNTL_READ), 0);
    locker_release(&lk, fd);
    CHECK_NOTHING_HELD(&lk);
    CHECK(!exists(lockpath));
    CHECK_EQ(other_can_lock(HOLD_FCNTL_WRITE), 1);
    /* shared: another reader may share it, a writer may not */
    CHECK_EQ(locker_acquire(&lk, fd, 0), 0);
    CHECK_EQ(other_can_lock(HOLD_FCNTL_READ), 1);
    CHECK_EQ(other_can_lock(HOLD_FCNTL_WRITE), 0);
    locker_release(&lk, fd);
    CHECK(!exists(lockpath));
    /* releasing twice is harmless */
    locker_release(&lk, fd);
    close(fd);
    locker_free(&lk);
    CHECK(lk.lock_path == NULL);
}

TEST(locker_fails_when_other_process_holds_fcntl)
{
    new_paths();
    struct holder h;
    if (hold_start(&h, HOLD_FCNTL_WRITE) != 0)
        SKIP("could not start the lock holder");
    struct locker lk;
    CHECK_EQ(locker_init(&lk, spool, LOCK_KIND_FCNTL | LOCK_KIND_DOTLOCK, 1, 10), 0);
    int fd = open(spool, O_RDWR);
    /* exclusive, with the 1 s timeout: retried until then */
    double t0 = now_s();
    errno = 0;
    CHECK_EQ(locker_acquire(&lk, fd, 1), -1);
    CHECK_EQ(errno, EWOULDBLOCK);
    double dt = now_s() - t0;
    CHECK(dt >= 0.9 && dt < 2.5);
    CHECK_NOTHING_HELD(&lk);
    CHECK(!exists(lockpath));
    /* shared, with timeout 0: one try */
    lk.timeout_secs = 0;
    t0 = now_s();
    errno = 0;
    CHECK_EQ(locker_acquire(&lk, fd, 0), -1);
    CHECK_EQ(errno, EWOULDBLOCK);
    CHECK(now_s() - t0 < 0.5);
    CHECK_NOTHING_HELD(&lk);
    CHECK(!exists(lockpath));
    hold_stop(&h);
    /* once the other process is gone, it works */
    CHECK_EQ(locker_acquire(&lk, fd, 1), 0);
    locker_release(&lk, fd);
    close(fd);
    locker_free(&lk);
}

TEST(locker_shares_with_other_reader)
{
    new_paths();
    struct holder h;
    if (hold_start(&h, HOLD_FCNTL_READ) != 0)
        SKIP("could not start the lock holder");
    struct locker lk;
    CHECK_EQ(locker_init(&lk, spool, LOCK_KIND_FCNTL, 0, 10), 0);
    int fd = open(spool, O_RDWR);
    CHECK_EQ(locker_acquire(&lk, fd, 0), 0);
    locker_release(&lk, fd);
    errno = 0;
    CHECK_EQ(locker_acquire(&lk, fd, 1), -1);
    CHECK_EQ(errno, EWOULDBLOCK);
    CHECK_NOTHING_HELD(&lk);
    hold_stop(&h);
    close(fd);
    locker_free(&lk);
}

TEST(locker_fails_on_foreign_dotlock_and_keeps_it)
{
    new_paths();
    int lfd = open(lockpath, O_WRONLY | O_CREAT | O_EXCL, 0644);
    CHECK(lfd >= 0);
    if (lfd >= 0)
        close(lfd);
    ino_t ino = inode_of(lockpath);
    struct locker lk;
    CHECK_EQ(locker_init(&lk, spool, LOCK_KIND_FCNTL | LOCK_KIND_DOTLOCK, 1, 10), 0);
    int fd = open(spool, O_RDWR);
    double t0 = now_s();
    errno = 0;
    CHECK_EQ(locker_acquire(&lk, fd, 1), -1);
    CHECK_EQ(errno, EWOULDBLOCK);
    double dt = now_s() - t0;
    CHECK(dt >= 0.9 && dt < 2.5);
    CHECK_NOTHING_HELD(&lk);
    /* the fcntl lock taken on the way was given back */
    CHECK_EQ(other_can_lock(HOLD_FCNTL_WRITE), 1);
    /* somebody else's dotlock is not ours to remove */
    CHECK_EQ(inode_of(lockpath), ino);
    char prefix[200];
    snprintf(prefix, sizeof prefix, "%s", base(lockpath));
    CHECK_EQ(count_prefixed(prefix), 1);
    unlink(lockpath);
    close(fd);
    locker_free(&lk);
}

TEST(locker_fails_on_flock_and_leaves_no_dotlock)
{
    new_paths();
    struct holder h;
    if (hold_start(&h, HOLD_FLOCK_EX) != 0)
        SKIP("could not start the lock holder");
    struct locker lk;
    CHECK_EQ(locker_init(&lk, spool, LOCK_KIND_FCNTL | LOCK_KIND_DOTLOCK | LOCK_KIND_FLOCK, 0,
                         10), 0);
    int fd = open(spool, O_RDWR);
    double t0 = now_s();
    errno = 0;
    CHECK_EQ(locker_acquire(&lk, fd, 1), -1);
    CHECK_EQ(errno, EWOULDBLOCK);
    CHECK(now_s() - t0 < 2.5);
    CHECK_NOTHING_HELD(&lk);
    /* the dotlock and the fcntl lock taken before the flock failed are gone */
    CHECK(!exists(lockpath));
    CHECK_EQ(other_can_lock(HOLD_FCNTL_WRITE), 1);
    hold_stop(&h);
    CHECK_EQ(locker_acquire(&lk, fd, 1), 0);
    CHECK(lk.held_fcntl && lk.held_dotlock && lk.held_flock);
    CHECK_EQ(other_can_lock(HOLD_FLOCK_EX), 0);
    locker_release(&lk, fd);
    CHECK_EQ(other_can_lock(HOLD_FLOCK_EX), 1);
    CHECK(!exists(lockpath));
    close(fd);
    locker_free(&lk);
}

TEST(locker_flock_kind)
{
    new_paths();
    struct locker lk;
    CHECK_EQ(locker_init(&lk, spool, LOCK_KIND_FLOCK, 0, 10), 0);
    int fd = open(spool, O_RDWR);
    CHECK_EQ(locker_acquire(&lk, fd, 1), 0);
    CHECK(lk.held_flock && !lk.held_fcntl && !lk.held_dotlock);
    CHECK(!exists(lockpath));                     /* no dotlock asked for */
    CHECK_EQ(other_can_lock(HOLD_FLOCK_EX), 0);
    CHECK_EQ(other_can_lock(HOLD_FCNTL_WRITE), 1); /* nor fcntl */
    locker_release(&lk, fd);
    CHECK_NOTHING_HELD(&lk);
    CHECK_EQ(other_can_lock(HOLD_FLOCK_EX), 1);

    struct holder h;
    if (hold_start(&h, HOLD_FLOCK_EX) != 0) {
        close(fd);
        locker_free(&lk);
        SKIP("could not start the lock holder");
    }
    errno = 0;
    CHECK_EQ(locker_acquire(&lk, fd, 0), -1);
    CHECK_EQ(errno, EWOULDBLOCK);
    CHECK_NOTHING_HELD(&lk);
    hold_stop(&h);
    close(fd);
    locker_free(&lk);
}

TEST(locker_takes_over_stale_dotlock)
{
    new_paths();
    int lfd = open(lockpath, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (lfd >= 0)
        close(lfd);
    set_mtime_ago(lockpath, 3600);
    struct locker lk;
    CHECK_EQ(locker_init(&lk, spool, LOCK_KIND_FCNTL | LOCK_KIND_DOTLOCK, 1, 10), 0);
    int fd = open(spool, O_RDWR);
    double t0 = now_s();
    CHECK_EQ(locker_acquire(&lk, fd, 1), 0);
    CHECK(now_s() - t0 < 0.9);
    CHECK(lk.held_dotlock);
    CHECK(mtime_age(lockpath) <= 5);
    locker_release(&lk, fd);
    CHECK(!exists(lockpath));
    close(fd);
    locker_free(&lk);
}

TEST(locker_keepalive_refreshes_held_dotlock)
{
    new_paths();
    struct locker lk;
    CHECK_EQ(locker_init(&lk, spool, LOCK_KIND_DOTLOCK, 1, 30), 0);
    int fd = open(spool, O_RDWR);
    CHECK_EQ(locker_acquire(&lk, fd, 1), 0);
    set_mtime_ago(lockpath, 600);
    /* refreshed recently: nothing to do yet */
    locker_keepalive(&lk);
    CHECK(mtime_age(lockpath) >= 590);
    /* pretend the last refresh was long ago */
    lk.dotlock_refreshed_ms -= 60 * 1000;
    locker_keepalive(&lk);
    CHECK(mtime_age(lockpath) <= 5);
    locker_release(&lk, fd);
    CHECK(!exists(lockpath));
    /* not held: keepalive creates nothing */
    lk.dotlock_refreshed_ms -= 60 * 1000;
    locker_keepalive(&lk);
    CHECK(!exists(lockpath));
    close(fd);
    locker_free(&lk);
}

static int cb_ops[16], cb_count, cb_fail_create;

static int record_dotlock(void *ctx, enum dotlock_op op)
{
    CHECK(ctx == (void *)&cb_count);
    if (cb_count < 16)
        cb_ops[cb_count++] = op;
    if (op == DOTLOCK_CREATE && cb_fail_create) {
        errno = EEXIST;
        return -1;
    }
    return 0;
}

TEST(locker_uses_dotlock_callback)
{
    new_paths();
    struct locker lk;
    CHECK_EQ(locker_init(&lk, spool, LOCK_KIND_FCNTL | LOCK_KIND_DOTLOCK, 0, 30), 0);
    lk.dotlock = record_dotlock;
    lk.dotlock_ctx = &cb_count;
    int fd = open(spool, O_RDWR);
    cb_count = 0;
    cb_fail_create = 0;
    CHECK_EQ(locker_acquire(&lk, fd, 1), 0);
    CHECK(!exists(lockpath));               /* the callback made it, not us */
    locker_release(&lk, fd);
    CHECK_EQ(cb_count, 2);
    CHECK_EQ(cb_ops[0], DOTLOCK_CREATE);
    CHECK_EQ(cb_ops[1], DOTLOCK_REMOVE);
    /* a busy callback: retried, then EWOULDBLOCK, never a REMOVE */
    cb_count = 0;
    cb_fail_create = 1;
    errno = 0;
    CHECK_EQ(locker_acquire(&lk, fd, 1), -1);
    CHECK_EQ(errno, EWOULDBLOCK);
    CHECK(cb_count >= 1);
    for (int i = 0; i < cb_count && i < 16; i++)
        CHECK_EQ(cb_ops[i], DOTLOCK_CREATE);
    CHECK_NOTHING_HELD(&lk);
    CHECK_EQ(other_can_lock(HOLD_FCNTL_WRITE), 1);
    close(fd);
    locker_free(&lk);
}

/* A real failure (not "busy") is reported at once, not after the timeout. */
TEST(locker_real_error_is_not_busy)
{
    new_paths();
    struct locker lk;
    char missing[200];
    snprintf(missing, sizeof missing, "%s/no-such-dir/user", tmpdir);
    CHECK_EQ(locker_init(&lk, missing, LOCK_KIND_FCNTL | LOCK_KIND_DOTLOCK, 2, 10), 0);
    int fd = open(spool, O_RDWR);
    double t0 = now_s();
    errno = 0;
    CHECK_EQ(locker_acquire(&lk, fd, 1), -1);
    CHECK(errno != EWOULDBLOCK && errno != 0);
    CHECK(now_s() - t0 < 1.0);
    CHECK_NOTHING_HELD(&lk);
    CHECK_EQ(other_can_lock(HOLD_FCNTL_WRITE), 1);
    locker_free(&lk);
    /* a write lock on a read-only descriptor */
    CHECK_EQ(locker_init(&lk, spool, LOCK_KIND_FCNTL, 2, 10), 0);
    int rfd = open(spool, O_RDONLY);
    t0 = now_s();
    errno = 0;
    CHECK_EQ(locker_acquire(&lk, rfd, 1), -1);
    CHECK(errno != EWOULDBLOCK && errno != 0);
    CHECK(now_s() - t0 < 1.0);
    close(rfd);
    close(fd);
    locker_free(&lk);
}

/* A spool directory the user cannot write to (a common setup: root:mail
 * 1775 without group mail) makes the dotlock fail with EACCES.  That is
 * not "mailbox in use": it should fail at once with the real errno, not
 * wait for lock_timeout and then report EWOULDBLOCK. */
TEST(locker_dotlock_permission_denied_is_not_busy)
{
    if (geteuid() != 0 && access(tmpdir, W_OK) == 0)
        SKIP("needs root (to make a directory this user cannot write)");
    char dir[128], sp[200];
    snprintf(dir, sizeof dir, "%s/ro-spool", tmpdir);
    snprintf(sp, sizeof sp, "%s/nobody", dir);
    mkdir(dir, 0755);
    int fd = open(sp, O_RDWR | O_CREAT, 0666);
    if (fd >= 0) {
        if (fchown(fd, 65534, 65534) != 0)
            perror("fchown");
        close(fd);
    }
    chmod(dir, 0755);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        alarm(10);
        if (setgid(65534) != 0 || setuid(65534) != 0)
            _exit(3);
        struct locker lk;
        if (locker_init(&lk, sp, LOCK_KIND_DOTLOCK, 1, 10) != 0)
            _exit(3);
        int f = open(sp, O_RDWR);
        double t0 = now_s();
        errno = 0;
        int rc = locker_acquire(&lk, f, 1);
        int e = errno;
        double dt = now_s() - t0;
        printf("  (as uid 65534: locker_acquire = %d, errno %d (%s), after %.2f s)\n", rc, e,
               strerror(e), dt);
        fflush(stdout);
        _exit(rc == -1 && e == EACCES && dt < 1.0 ? 0 : 1);
    }
    int status = 0;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 3)
        SKIP("could not switch to uid 65534");
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

int main(void)
{
    if (tl_make_tmpdir(tmpdir, "lock") != 0)
        return 1;
    chmod(tmpdir, 0755);
    srand(1);
    RUN(dotlock_create_and_remove);
    RUN(dotlock_second_create_fails_with_eexist);
    RUN(dotlock_stale_lock_is_taken_over);
    RUN(dotlock_fresh_lock_is_not_taken);
    RUN(dotlock_refresh_updates_mtime);
    RUN(dotlock_in_missing_directory_is_an_error);
    RUN(locker_acquire_and_release_when_free);
    RUN(locker_fails_when_other_process_holds_fcntl);
    RUN(locker_shares_with_other_reader);
    RUN(locker_fails_on_foreign_dotlock_and_keeps_it);
    RUN(locker_fails_on_flock_and_leaves_no_dotlock);
    RUN(locker_flock_kind);
    RUN(locker_takes_over_stale_dotlock);
    RUN(locker_keepalive_refreshes_held_dotlock);
    RUN(locker_uses_dotlock_callback);
    RUN(locker_real_error_is_not_busy);
    RUN(locker_dotlock_permission_denied_is_not_busy);
    tl_remove_tmpdir(tmpdir);
    return test_report();
}

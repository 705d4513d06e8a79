/* lock.c - fcntl, dotlock and flock spool locks, all-or-nothing; see lock.h. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "lock.h"
#include "log.h"
#include "util.h"

#define LOCK_RETRY_FIRST_MS 20
#define LOCK_RETRY_MAX_MS 1000

int locker_init(struct locker *lk, const char *spool_path, unsigned kinds,
                unsigned timeout_secs, unsigned stale_secs)
{
    memset(lk, 0, sizeof *lk);
    lk->kinds = kinds;
    lk->timeout_secs = timeout_secs;
    lk->stale_secs = stale_secs;
    if (asprintf(&lk->lock_path, "%s.lock", spool_path) < 0) {
        lk->lock_path = NULL;
        return log_errno("locker: allocating the lock path");
    }
    return 0;
}

void locker_free(struct locker *lk)
{
    free(lk->lock_path);
    lk->lock_path = NULL;
}

static int is_stale(const char *lock_path, unsigned stale_secs)
{
    struct stat st;
    if (lstat(lock_path, &st) != 0)
        return 0;
    return time(NULL) - st.st_mtime > (time_t)stale_secs;
}

static int dotlock_create(const char *lock_path, unsigned stale_secs)
{
    char tmp[PATH_MAX], host[64];
    static unsigned counter;
    if (gethostname(host, sizeof host) != 0)
        strlcpy_checked(host, "localhost", sizeof host);
    host[sizeof host - 1] = '\0';
    host[strcspn(host, "/")] = '\0';
    int n = snprintf(tmp, sizeof tmp, "%s.%s.%ld.%u", lock_path, host, (long)getpid(), counter++);
    if (n < 0 || (size_t)n >= sizeof tmp) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (int attempt = 0; attempt < 2; attempt++) {
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0)
            return -1;
        close(fd);
        /* NFS: link() may fail after succeeding; the link count decides. */
        int link_rc = link(tmp, lock_path);
        int link_errno = errno;
        struct stat st;
        int got = stat(tmp, &st) == 0 && st.st_nlink == 2;
        unlink(tmp);
        if (got)
            return 0;
        if (link_rc == 0 || link_errno != EEXIST) {
            errno = link_rc == 0 ? EIO : link_errno;
            return -1;
        }
        if (attempt == 0 && is_stale(lock_path, stale_secs)) {
            log_warn("removing stale dotlock %s (unchanged for over %u s)", lock_path, stale_secs);
            if (unlink(lock_path) != 0 && errno != ENOENT)
                return -1;
            continue;
        }
        break;
    }
    errno = EEXIST;
    return -1;
}

int dotlock_direct(const char *lock_path, enum dotlock_op op, unsigned stale_secs)
{
    switch (op) {
    case DOTLOCK_CREATE:
        return dotlock_create(lock_path, stale_secs);
    case DOTLOCK_REFRESH:
        return utimensat(AT_FDCWD, lock_path, NULL, AT_SYMLINK_NOFOLLOW);
    case DOTLOCK_REMOVE:
        return unlink(lock_path) == 0 || errno == ENOENT ? 0 : -1;
    }
    errno = EINVAL;
    return -1;
}

static int dotlock_call(struct locker *lk, enum dotlock_op op)
{
    if (lk->dotlock)
        return lk->dotlock(lk->dotlock_ctx, op);
    return dotlock_direct(lk->lock_path, op, lk->stale_secs);
}

static int busy_errno(int e)
{
    return e == EACCES || e == EAGAIN || e == EWOULDBLOCK || e == EEXIST;
}

/* One attempt at the whole set: 0 all held, 1 something busy, -1 error. */
static int try_all(struct locker *lk, int fd, int write)
{
    if ((lk->kinds & LOCK_KIND_FCNTL) && fd >= 0) {
        struct flock fl = { .l_type = write ? F_WRLCK : F_RDLCK, .l_whence = SEEK_SET };
        if (fcntl(fd, F_SETLK, &fl) != 0)
            return busy_errno(errno) ? 1 : -1;
        lk->held_fcntl = 1;
    }
    if (lk->kinds & LOCK_KIND_DOTLOCK) {
        /* Only EEXIST means busy here: EACCES is a spool directory we
         * may not write, which waiting will not cure. */
        if (dotlock_call(lk, DOTLOCK_CREATE) != 0)
            return errno == EEXIST ? 1 : -1;
        lk->held_dotlock = 1;
        lk->dotlock_refreshed_ms = now_ms();
    }
    if ((lk->kinds & LOCK_KIND_FLOCK) && fd >= 0) {
        if (flock(fd, (write ? LOCK_EX : LOCK_SH) | LOCK_NB) != 0)
            return busy_errno(errno) ? 1 : -1;
        lk->held_flock = 1;
    }
    return 0;
}

void locker_release(struct locker *lk, int fd)
{
    int saved = errno;
    if (lk->held_flock && flock(fd, LOCK_UN) != 0)
        log_errno("releasing flock on %.200s", lk->lock_path);
    if (lk->held_dotlock && dotlock_call(lk, DOTLOCK_REMOVE) != 0)
        log_errno("removing dotlock %.200s", lk->lock_path);
    if (lk->held_fcntl) {
        struct flock fl = { .l_type = F_UNLCK, .l_whence = SEEK_SET };
        if (fcntl(fd, F_SETLK, &fl) != 0)
            log_errno("releasing fcntl lock");
    }
    lk->held_fcntl = lk->held_flock = lk->held_dotlock = 0;
    errno = saved;
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000 };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

int locker_acquire(struct locker *lk, int fd, int write)
{
    int64_t deadline = now_ms() + (int64_t)lk->timeout_secs * 1000;
    int64_t delay = LOCK_RETRY_FIRST_MS;
    for (;;) {
        int rc = try_all(lk, fd, write);
        if (rc == 0)
            return 0;
        int saved = errno;
        locker_release(lk, fd);
        if (rc < 0) {
            errno = saved;
            return -1;
        }
        int64_t left = deadline - now_ms();
        if (left <= 0) {
            errno = EWOULDBLOCK;
            return -1;
        }
        /* Jitter so two waiters do not retry in lock-step. */
        int64_t pause = delay / 2 + rand() % (delay / 2 + 1);
        sleep_ms(pause < left ? pause : left);
        delay = delay * 2 > LOCK_RETRY_MAX_MS ? LOCK_RETRY_MAX_MS : delay * 2;
    }
}

void locker_keepalive(struct locker *lk)
{
    if (!lk->held_dotlock)
        return;
    int64_t now = now_ms();
    if (now - lk->dotlock_refreshed_ms < (int64_t)lk->stale_secs * 1000 / 3)
        return;
    if (dotlock_call(lk, DOTLOCK_REFRESH) != 0)
        log_errno("refreshing dotlock %.200s", lk->lock_path);
    lk->dotlock_refreshed_ms = now;
}

/* privsep.c - the privilege drop and the dotlock monitor; see privsep.h. */
#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "privsep.h"
#include "util.h"

volatile pid_t privsep_child_pid;

int privsep_drop(const struct account *acct)
{
    if (acct->system) {
        if (initgroups(acct->name, acct->gid) != 0)
            return log_errno("initgroups(%s)", acct->name);
    } else if (setgroups(1, &acct->gid) != 0) {
        return log_errno("setgroups(%u)", (unsigned)acct->gid);
    }
    if (setgid(acct->gid) != 0)
        return log_errno("setgid(%u)", (unsigned)acct->gid);
    if (setuid(acct->uid) != 0)
        return log_errno("setuid(%u)", (unsigned)acct->uid);
    /* Paranoia: root must be gone for good. */
    if (acct->uid != 0 && (setuid(0) == 0 || geteuid() != acct->uid || getegid() != acct->gid)) {
        log_err("privilege drop to %s did not stick", acct->name);
        return -1;
    }
    /* Dumpable again is not wanted: the process held a password. */
    (void)prctl(PR_SET_DUMPABLE, 0);
    return 0;
}

/* Request: one byte (enum dotlock_op).  Reply: an int, 0 or an errno. */
int privsep_dotlock(void *ctx, enum dotlock_op op)
{
    int chan = *(int *)ctx;
    char request = (char)op;
    if (write_all(chan, &request, 1) != 0)
        return -1;
    int reply;
    size_t got = 0;
    while (got < sizeof reply) {
        ssize_t n = read(chan, (char *)&reply + got, sizeof reply - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            errno = n == 0 ? EPIPE : errno;
            return -1;
        }
        got += (size_t)n;
    }
    if (reply != 0) {
        errno = reply;
        return -1;
    }
    return 0;
}

static void serve_dotlocks(int chan, const char *lock_path, unsigned stale_secs)
{
    int held = 0;
    for (;;) {
        char op;
        ssize_t n = read(chan, &op, 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        int rc;
        if (op == DOTLOCK_CREATE || op == DOTLOCK_REFRESH || op == DOTLOCK_REMOVE)
            rc = dotlock_direct(lock_path, (enum dotlock_op)op, stale_secs) == 0 ? 0 : errno;
        else
            rc = EINVAL;
        if (rc == 0 && op == DOTLOCK_CREATE)
            held = 1;
        if (rc == 0 && op == DOTLOCK_REMOVE)
            held = 0;
        if (write_all(chan, &rc, sizeof rc) != 0)
            break;
    }
    /* The session is gone; a dotlock it held must not outlive it. */
    if (held && dotlock_direct(lock_path, DOTLOCK_REMOVE, stale_secs) == 0)
        log_warn("removed dotlock %s left by a session that ended holding it", lock_path);
}

int privsep_run_session(const struct account *acct, const char *lock_path,
                        unsigned stale_secs, int *chan, const int *client_fds,
                        int n_client_fds)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return log_errno("socketpair");
    pid_t pid = fork();
    if (pid < 0) {
        close(sv[0]);
        close(sv[1]);
        return log_errno("fork (session)");
    }
    if (pid == 0) {
        close(sv[0]);
        if (privsep_drop(acct) != 0)
            _exit(1);
        *chan = sv[1];
        return 0;
    }
    privsep_child_pid = pid;
    close(sv[1]);
    for (int i = 0; i < n_client_fds; i++)
        close(client_fds[i]);
    serve_dotlocks(sv[0], lock_path, stale_secs);
    close(sv[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    privsep_child_pid = 0;
    return 1;
}

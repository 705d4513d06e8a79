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

/*
 * Request: one byte (a dotlock_op or journal_op).  Reply: an int, 0 or an
 * errno, and for a journal open a file descriptor (SCM_RIGHTS) with it.
 */
static int send_reply(int chan, int result, int fd)
{
    struct iovec iov = { .iov_base = &result, .iov_len = sizeof result };
    union {
        struct cmsghdr hdr;
        char buf[CMSG_SPACE(sizeof(int))];
    } control;
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
    if (fd >= 0) {
        memset(&control, 0, sizeof control);
        msg.msg_control = control.buf;
        msg.msg_controllen = sizeof control.buf;
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof fd);
    }
    ssize_t n;
    while ((n = sendmsg(chan, &msg, MSG_NOSIGNAL)) < 0 && errno == EINTR)
        ;
    return n == (ssize_t)sizeof result ? 0 : -1;
}

/* Sends a request and waits for the reply; *fd gets a passed descriptor. */
static int request(int chan, char op, int *fd)
{
    if (write_all(chan, &op, 1) != 0)
        return -1;
    int result = EPROTO;
    struct iovec iov = { .iov_base = &result, .iov_len = sizeof result };
    union {
        struct cmsghdr hdr;
        char buf[CMSG_SPACE(sizeof(int))];
    } control;
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                          .msg_controllen = sizeof control.buf };
    ssize_t n;
    while ((n = recvmsg(chan, &msg, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
        ;
    if (n != (ssize_t)sizeof result) {
        errno = n == 0 ? EPIPE : (n < 0 ? errno : EPROTO);
        return -1;
    }
    int passed = -1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
            memcpy(&passed, CMSG_DATA(c), sizeof passed);
    if (fd)
        *fd = passed;
    else if (passed >= 0)
        close(passed);
    if (result != 0) {
        if (passed >= 0 && fd) {
            close(passed);
            *fd = -1;
        }
        errno = result;
        return -1;
    }
    return 0;
}

int privsep_dotlock(void *ctx, enum dotlock_op op)
{
    return request(*(int *)ctx, (char)op, NULL);
}

int privsep_journal(void *ctx, enum journal_op op)
{
    int fd = -1;
    if (request(*(int *)ctx, (char)op, op == JOURNAL_REMOVE ? NULL : &fd) != 0)
        return -1;
    if (op == JOURNAL_REMOVE)
        return 0;
    if (fd < 0) {
        errno = EPROTO;
        return -1;
    }
    return fd;
}

/* Carries out one request for the account the monitor serves. */
static int handle_request(const struct monitor_spec *spec, char op, int *fd, int *lock_held)
{
    *fd = -1;
    switch (op) {
    case DOTLOCK_CREATE:
    case DOTLOCK_REFRESH:
    case DOTLOCK_REMOVE:
        if (dotlock_direct(spec->lock_path, (enum dotlock_op)op, spec->stale_secs) != 0)
            return errno;
        if (op != DOTLOCK_REFRESH)
            *lock_held = op == DOTLOCK_CREATE;
        return 0;
    case JOURNAL_OPEN:
    case JOURNAL_CREATE:
    case JOURNAL_REMOVE: {
        int r = journal_direct(spec->journal_path, (enum journal_op)op, spec->acct->uid,
                               spec->acct->gid);
        if (r < 0)
            return errno;
        if (op != JOURNAL_REMOVE)
            *fd = r;
        return 0;
    }
    }
    return EINVAL;
}

static void serve_requests(int chan, const struct monitor_spec *spec)
{
    int held = 0;
    for (;;) {
        char op;
        ssize_t n = read(chan, &op, 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        int fd;
        int rc = handle_request(spec, op, &fd, &held);
        int sent = send_reply(chan, rc, fd);
        if (fd >= 0)
            close(fd);
        if (sent != 0)
            break;
    }
    /* The session is gone; a dotlock it held must not outlive it. */
    if (held && dotlock_direct(spec->lock_path, DOTLOCK_REMOVE, spec->stale_secs) == 0)
        log_warn("removed dotlock %s left by a session that ended holding it", spec->lock_path);
}

int privsep_run_session(const struct monitor_spec *spec, int *chan, const int *client_fds,
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
        if (privsep_drop(spec->acct) != 0)
            _exit(1);
        *chan = sv[1];
        return 0;
    }
    privsep_child_pid = pid;
    close(sv[1]);
    for (int i = 0; i < n_client_fds; i++)
        close(client_fds[i]);
    serve_requests(sv[0], spec);
    close(sv[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    privsep_child_pid = 0;
    return 1;
}

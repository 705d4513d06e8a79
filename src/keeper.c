/* keeper.c - dotlocks and journals for every session; see keeper.h. */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "keeper.h"
#include "log.h"
#include "util.h"

/* ---- descriptors over a socket ---- */

/* Sends buf with fd attached (fd < 0: none). */
static ssize_t send_with_fd(int sock, const void *buf, size_t len, int fd, int flags)
{
    struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
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
    while ((n = sendmsg(sock, &msg, MSG_NOSIGNAL | flags)) < 0 && errno == EINTR)
        ;
    return n;
}

/* Receives into buf; *fd gets the one descriptor attached, or -1 (any
 * other passed descriptors are closed: nobody may leave us theirs). */
static ssize_t recv_with_fd(int sock, void *buf, size_t len, int *fd, int flags)
{
    struct iovec iov = { .iov_base = buf, .iov_len = len };
    union {
        struct cmsghdr hdr;
        char buf[CMSG_SPACE(4 * sizeof(int))];
    } control;
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                          .msg_controllen = sizeof control.buf };
    ssize_t n;
    while ((n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | flags)) < 0 && errno == EINTR)
        ;
    *fd = -1;
    if (n < 0)
        return n;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < count; i++) {
            int passed;
            memcpy(&passed, CMSG_DATA(c) + i * sizeof(int), sizeof passed);
            if (*fd < 0)
                *fd = passed;
            else
                close(passed);
        }
    }
    if (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
        if (*fd >= 0)
            close(*fd);
        *fd = -1;
        errno = EMSGSIZE;
        return -1;
    }
    return n;
}

/* ---- the session's side ---- */

/* Sends a request and waits for the answer; *fd gets a passed descriptor. */
static int request(int chan, char op, int *fd)
{
    ssize_t sent;
    while ((sent = send(chan, &op, 1, MSG_NOSIGNAL)) < 0 && errno == EINTR)
        ;
    if (sent != 1)
        return -1;
    int result = EPROTO, passed;
    ssize_t n = recv_with_fd(chan, &result, sizeof result, &passed, 0);
    if (n != (ssize_t)sizeof result) {
        if (passed >= 0)
            close(passed);
        errno = n == 0 ? EPIPE : (n < 0 ? errno : EPROTO);
        return -1;
    }
    if (result != 0 || fd == NULL) {
        if (passed >= 0)
            close(passed);
        passed = -1;
    }
    if (fd)
        *fd = passed;
    if (result != 0) {
        errno = result;
        return -1;
    }
    return 0;
}

int keeper_dotlock(void *ctx, enum dotlock_op op)
{
    return request(*(int *)ctx, (char)op, NULL);
}

int keeper_journal(void *ctx, enum journal_op op)
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

/* ---- binding a channel (a root process) ---- */

int keeper_bind(int bind_fd, const char *spool_path, unsigned dotlock_stale)
{
    size_t plen = strlen(spool_path);
    if (plen == 0 || plen > KEEPER_PATH_MAX) {
        errno = ENAMETOOLONG;
        return -1;
    }
    char msg[4 + KEEPER_PATH_MAX];
    uint32_t stale = dotlock_stale;
    memcpy(msg, &stale, 4);
    memcpy(msg + 4, spool_path, plen);
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return -1;
    ssize_t n = send_with_fd(bind_fd, msg, 4 + plen, sv[0], 0);
    int saved = errno;
    close(sv[0]);
    if (n != (ssize_t)(4 + plen)) {
        close(sv[1]);
        errno = n < 0 ? saved : EPROTO;
        return -1;
    }
    return sv[1];
}

/* ---- the keeper ---- */

struct channel {
    int fd;
    int lock_held;
    unsigned stale_secs;
    char *lock_path;        /* spool + ".lock" */
    char *journal_path;     /* journal_path_for(spool) */
};

struct keeper {
    struct channel *ch;
    size_t count, cap;
    struct pollfd *pfd;     /* [0] the bind socket, then one per channel */
};

static void channel_free(struct channel *c)
{
    free(c->lock_path);
    free(c->journal_path);
}

/* Carries out one request for a channel's spool. */
static int handle_request(struct channel *c, char op, int *fd)
{
    *fd = -1;
    switch (op) {
    case DOTLOCK_CREATE:
    case DOTLOCK_REFRESH:
    case DOTLOCK_REMOVE:
        if (dotlock_direct(c->lock_path, (enum dotlock_op)op, c->stale_secs) != 0)
            return errno;
        if (op != DOTLOCK_REFRESH)
            c->lock_held = op == DOTLOCK_CREATE;
        return 0;
    case JOURNAL_OPEN:
    case JOURNAL_CREATE:
    case JOURNAL_REMOVE: {
        /* The journal belongs to the keeper's own uid; the session writes
         * it through the descriptor it is given. */
        int r = journal_direct(c->journal_path, (enum journal_op)op, geteuid());
        if (r < 0)
            return errno;
        if (op != JOURNAL_REMOVE)
            *fd = r;
        return 0;
    }
    }
    return EINVAL;
}

/* A channel is over: a dotlock it holds must not outlive its session. */
static void drop_channel(struct keeper *k, size_t i)
{
    struct channel *c = &k->ch[i];
    if (c->lock_held && dotlock_direct(c->lock_path, DOTLOCK_REMOVE, c->stale_secs) == 0)
        log_warn("removed dotlock %s left by a session that ended holding it", c->lock_path);
    close(c->fd);
    channel_free(c);
    k->ch[i] = k->ch[--k->count];
}

/* Serves what channel i sent; 0, or -1 when the channel is over. */
static int serve_channel(struct channel *c)
{
    char op;
    ssize_t n;
    while ((n = recv(c->fd, &op, 1, MSG_DONTWAIT)) < 0 && errno == EINTR)
        ;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return 0;
    if (n != 1)
        return -1;
    int fd;
    int rc = handle_request(c, op, &fd);
    /* A session waits for each answer; one that does not read it (its
     * buffer full) gets no other chance: the keeper never blocks. */
    ssize_t sent = send_with_fd(c->fd, &rc, sizeof rc, fd, MSG_DONTWAIT);
    if (fd >= 0)
        close(fd);
    return sent == (ssize_t)sizeof rc ? 0 : -1;
}

static int add_channel(struct keeper *k, int fd, unsigned stale, const char *spool)
{
    if (k->count == k->cap) {
        size_t cap = k->cap ? k->cap * 2 : 64;
        struct channel *ch = realloc(k->ch, cap * sizeof *ch);
        if (ch == NULL)
            return -1;
        k->ch = ch;
        struct pollfd *pfd = realloc(k->pfd, (cap + 1) * sizeof *pfd);
        if (pfd == NULL)
            return -1;
        k->pfd = pfd;
        k->cap = cap;
    }
    struct channel c = { .fd = fd, .stale_secs = stale };
    size_t plen = strlen(spool);
    c.lock_path = malloc(plen + sizeof ".lock");
    c.journal_path = journal_path_for(spool);
    if (c.lock_path == NULL || c.journal_path == NULL) {
        channel_free(&c);
        return -1;
    }
    memcpy(c.lock_path, spool, plen);
    memcpy(c.lock_path + plen, ".lock", sizeof ".lock");
    k->ch[k->count++] = c;
    return 0;
}

/* Takes one bind request; 0, or -1 when every binder is gone. */
static int take_bind(struct keeper *k, int bind_fd)
{
    char msg[4 + KEEPER_PATH_MAX + 1];
    int fd;
    ssize_t n = recv_with_fd(bind_fd, msg, sizeof msg - 1, &fd, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return 0;
    if (n == 0)
        return -1;
    if (n < 0) {
        log_errno("keeper: reading a bind request");
        return 0;
    }
    uint32_t stale;
    msg[n] = '\0';
    if (fd < 0 || n <= 4 || memchr(msg + 4, '\0', (size_t)n - 4) != NULL) {
        log_err("keeper: malformed bind request");
        if (fd >= 0)
            close(fd);
        return 0;
    }
    memcpy(&stale, msg, 4);
    if (add_channel(k, fd, stale, msg + 4) != 0) {
        log_errno("keeper: a channel for %s", msg + 4);
        close(fd);          /* the session's first request fails: EPIPE */
    }
    return 0;
}

void keeper_serve(int bind_fd)
{
    struct keeper k = { 0 };
    k.pfd = calloc(1, sizeof *k.pfd);
    if (k.pfd == NULL) {
        log_errno("keeper: out of memory");
        return;
    }
    int binders = 1;
    while (binders || k.count > 0) {
        k.pfd[0] = (struct pollfd){ .fd = binders ? bind_fd : -1, .events = POLLIN };
        for (size_t i = 0; i < k.count; i++)
            k.pfd[i + 1] = (struct pollfd){ .fd = k.ch[i].fd, .events = POLLIN };
        size_t polled = k.count;
        if (poll(k.pfd, polled + 1, -1) < 0) {
            if (errno == EINTR)
                continue;
            log_errno("keeper: poll");
            break;
        }
        /* Back to front: dropping channel i moves the last one into i. */
        for (size_t i = polled; i-- > 0;)
            if (k.pfd[i + 1].revents && serve_channel(&k.ch[i]) != 0)
                drop_channel(&k, i);
        if (binders && k.pfd[0].revents && take_bind(&k, bind_fd) != 0)
            binders = 0;
    }
    while (k.count > 0)
        drop_channel(&k, k.count - 1);
    free(k.ch);
    free(k.pfd);
}

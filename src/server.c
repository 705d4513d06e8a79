/* server.c - listeners, the pre-forked worker pool, signals; see server.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "log.h"
#include "privsep.h"
#include "proctitle.h"
#include "proxy.h"
#include "service.h"
#include "server.h"
#include "session.h"
#include "util.h"

#define LISTEN_BACKLOG 128
#define ACCEPT_PAUSE_MS 200        /* after EMFILE/ENFILE: pause, don't spin */
/* Sessions end at once on SIGTERM, but an UPDATE in progress finishes:
 * wait for it, within the unit's TimeoutStopSec (60 s). */
#define SHUTDOWN_GRACE_SECS 50

/*
 * Each worker has a SOCK_SEQPACKET channel to the master.  Worker to
 * master: "B" (busy: accepted a connection), "L" + user (claim that
 * mailbox).  Master to worker, answering "L": "K" (claimed) or "I" (in
 * use).  The master forgets a worker's claim when the worker exits, so a
 * claim cannot outlive a crash.
 */
#define MSG_BUSY 'B'            /* + the client's address key */
#define MSG_CLAIM 'L'           /* + user */
#define MSG_RELEASE 'U'
#define MSG_CLAIMED 'K'         /* yes (to B and L) */
#define MSG_IN_USE 'I'          /* no: mailbox claimed (to L) */
#define MSG_TOO_MANY 'X'        /* no: max_per_ip reached (to B) */
#define MSG_BLOCKED 'D'         /* no: too many failed logins (to B) */
#define MSG_LOGIN_DELAY 'W'     /* no: login_delay not over for this user (to L) */
#define MSG_AUTH_FAIL 'F'       /* + address key: a failed login (no answer) */
#define CLAIM_REPLY_TIMEOUT_MS 10000
/* A client that QUITs and logs in again at once can reach the master
 * before the old session's worker has exited; such a claim waits this
 * long for the mailbox before it is refused. */
#define CLAIM_WAIT_MS 1500
#define CLAIM_RETRY_MS 50
#define LIMIT_WAIT_MS 1000      /* the same grace for max_per_ip, max_children */

/* Pre-auth connections are the first to go when the pool runs short
 * (a slowloris attack is made of them): past this share of max_children
 * busy, the oldest pre-auth connection older than the grace is closed. */
#define SHED_PERCENT 80
#define SHED_GRACE_MS 5000

/* W_DONE: its connection is over (RELEASE), it is about to exit; it no
 * longer counts against any limit. */
enum worker_state { W_IDLE, W_RETIRING, W_PREAUTH, W_SESSION, W_DONE };

struct worker {
    pid_t pid;
    enum worker_state state;
    int64_t since_ms;              /* when it accepted its connection */
    int shed;                      /* told to close its pre-auth connection */
    int chan;                      /* master's end of the channel */
    char addr[64];                 /* client address key (max_per_ip) */
    char user[AUTH_MAX_USER + 1];  /* claimed mailbox, or "" */
};

static volatile sig_atomic_t got_stop, got_hup, got_child, got_retire;

/* The keeper (keeper.h): its pid (0: to be started) and the root side of
 * its bind socket, which every worker inherits. */
static pid_t keeper_pid;
static int keeper_fd = -1;
static int64_t keeper_started_ms;
#define KEEPER_RESTART_MS 1000     /* a keeper that dies at once is not restarted in a loop */

/* Who the pre-auth child and the keeper become; set once at start-up. */
static struct privsep_ids ids;

static void on_stop(int sig) { (void)sig; got_stop = 1; }
static void on_hup(int sig) { (void)sig; got_hup = 1; }
static void on_child(int sig) { (void)sig; got_child = 1; }

/* SIGUSR1 asks an idle worker to retire (pool shrinking, SIGHUP); a
 * worker that has accepted a connection ignores it and serves on.
 * SIGTERM is shutdown: sessions end politely too. */
static void on_retire(int sig) { (void)sig; got_retire = 1; }

/* SIGUSR2, from the master when the pool runs short: a pre-auth
 * connection is closed (its session child, if it just logged in,
 * ignores it). */
static volatile sig_atomic_t got_shed;
static void on_shed(int sig) { (void)sig; got_shed = 1; got_stop = 1; }


/* Each worker leads a process group with the pre-auth and session
 * children it forks, so the master (root) can reach them all with one
 * kill(-pid): the worker itself may no longer signal them once it has
 * dropped to preauth_user. */
static void on_worker_stop(int sig)
{
    (void)sig;
    got_stop = 1;
}

static void set_handler(int sig, void (*fn)(int))
{
    struct sigaction sa = { .sa_handler = fn };
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);
}

/* Only the pre-auth child takes SIGUSR2; the worker ignores it, so that a
 * session child it forks later never inherits a stop. */
static void preauth_signals(void)
{
    set_handler(SIGUSR2, on_shed);
}

/* ---- listeners ---- */

int server_resolve_listen(const char *spec, struct addrinfo **ai)
{
    char host[128];
    const char *colon = strrchr(spec, ':');
    if (colon == NULL)
        return EAI_NONAME;
    size_t hlen = (size_t)(colon - spec);
    const char *h = spec;
    if (spec[0] == '[' && hlen >= 2) {   /* [v6]:port */
        h++;
        hlen -= 2;
    }
    if (hlen >= sizeof host)
        return EAI_NONAME;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV };
    return getaddrinfo(host, colon + 1, &hints, ai);
}

static int open_listener(const char *spec)
{
    struct addrinfo *ai;
    int rc = server_resolve_listen(spec, &ai);
    if (rc != 0) {
        log_err("listen %s: %s", spec, gai_strerror(rc));
        return -1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        log_errno("listen %s: socket", spec);
        freeaddrinfo(ai);
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ai->ai_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, LISTEN_BACKLOG) != 0) {
        log_errno("listen %s", spec);
        close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    return fd;
}

size_t server_listen(const struct config *cfg, int *fds, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < cfg->listen_count && n < max; i++) {
        int fd = open_listener(cfg->listen[i]);
        if (fd < 0) {
            while (n > 0)
                close(fds[--n]);
            return 0;
        }
        log_info("listening on %s", cfg->listen[i]);
        fds[n++] = fd;
    }
    return n;
}

/* ---- worker ---- */

static void peer_name(const struct sockaddr_storage *sa, socklen_t len, char *out, size_t size)
{
    char host[NI_MAXHOST];
    if (getnameinfo((const struct sockaddr *)sa, len, host, sizeof host, NULL, 0,
                    NI_NUMERICHOST) != 0)
        strlcpy_checked(host, "unknown", sizeof host);
    /* ::ffff:192.0.2.7 is logged as 192.0.2.7 */
    const char *h = strncmp(host, "::ffff:", 7) == 0 && strchr(host, '.') ? host + 7 : host;
    strlcpy_checked(out, h, size);
}

/* Sends the master one request and waits for its one-byte answer. */
static int ask_master(int chan, char type, const char *payload, size_t n)
{
    char msg[1 + AUTH_MAX_USER + 64];
    if (n > sizeof msg - 1)
        return -1;
    msg[0] = type;
    memcpy(msg + 1, payload, n);
    if (send(chan, msg, n + 1, MSG_NOSIGNAL) != (ssize_t)(n + 1))
        return log_errno("asking the master");
    struct pollfd pfd = { .fd = chan, .events = POLLIN };
    int64_t deadline = now_ms() + CLAIM_REPLY_TIMEOUT_MS;
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0) {
            log_err("the master did not answer");
            return -1;
        }
        int r = poll(&pfd, 1, (int)left);
        if (r < 0 && errno != EINTR)
            return log_errno("waiting for the master");
        if (r <= 0)
            continue;
        char reply;
        ssize_t got = recv(chan, &reply, 1, 0);
        if (got == 1)
            return (unsigned char)reply;
        if (got < 0 && errno == EINTR)
            continue;
        return log_errno("reading the master's answer");
    }
}

/* One claim (0 claimed, 1 in use, -1 no answer). */
static int claim_once(int chan, const char *user)
{
    int r = ask_master(chan, MSG_CLAIM, user, strlen(user));
    return r == MSG_CLAIMED ? 0 : r == MSG_IN_USE ? 1 : r == MSG_LOGIN_DELAY ? 2 : -1;
}

/* The worker's side of a claim (a claim_fn). */
static int claim_mailbox(void *ctx, const char *user)
{
    int chan = *(int *)ctx;
    int64_t deadline = now_ms() + CLAIM_WAIT_MS;
    for (;;) {
        int r = claim_once(chan, user);
        if (r != 1 || now_ms() >= deadline)
            return r;           /* 0 claimed, 1 in use, 2 login delay, -1 */
        struct timespec ts = { 0, CLAIM_RETRY_MS * 1000000L };
        nanosleep(&ts, NULL);
    }
}

/* Tells the master about a failed login from key (an auth_failed). */
static void report_auth_failure(void *ctx, const char *key)
{
    char msg[1 + 64];
    size_t n = strlen(key) < 63 ? strlen(key) : 63;
    msg[0] = MSG_AUTH_FAIL;
    memcpy(msg + 1, key, n);
    if (send(*(int *)ctx, msg, n + 1, MSG_NOSIGNAL) != (ssize_t)(n + 1))
        log_errno("telling the master about a failed login");
}

/* The key max_per_ip counts by: the address, or its /64 for IPv6. */
static void address_key(const struct sockaddr_storage *sa, const char *peer, char *key,
                        size_t size)
{
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
    if (sa->ss_family != AF_INET6 || IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
        strlcpy_checked(key, peer, size);
        return;
    }
    struct in6_addr net = s6->sin6_addr;
    memset(net.s6_addr + 8, 0, 8);
    char text[INET6_ADDRSTRLEN];
    if (inet_ntop(AF_INET6, &net, text, sizeof text) == NULL)
        strlcpy_checked(text, peer, sizeof text);
    snprintf(key, size, "%s/64", text);
}

/* Refuses a connection outright: one line, then close. */
static void refuse(int fd, const char *why)
{
    char line[160];
    int n = snprintf(line, sizeof line, "-ERR [SYS/TEMP] %s, try again later\r\n", why);
    (void)send(fd, line, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
    close(fd);
}

#define PROXY_HEADER_TIMEOUT_MS 5000

static void serve_connection(const struct config *cfg, int fd, const struct sockaddr_storage *sa,
                             socklen_t salen, int chan)
{
    char peer[NI_MAXHOST], key[64];
    struct proxy_info pi;
    if (cfg->proxy_trusted && cidr_list_match(cfg->proxy_trusted, sa)) {
        /* A trusted proxy (stunnel, haproxy) says who the client is. */
        peer_name(sa, salen, peer, sizeof peer);
        if (proxy_read(fd, PROXY_HEADER_TIMEOUT_MS, &pi) != 0) {
            log_warn("dropped a connection from proxy %s: no valid PROXY header", peer);
            close(fd);
            return;
        }
        if (!pi.use_peer) {
            sa = &pi.src;
            salen = pi.srclen;
        }
    }
    peer_name(sa, salen, peer, sizeof peer);
    address_key(sa, peer, key, sizeof key);
    /* A client that reconnects the moment its last connection closed can
     * be here before that connection's worker has told the master it is
     * done: a refusal waits a little before it is final. */
    int verdict = ask_master(chan, MSG_BUSY, key, strlen(key));
    for (int64_t until = now_ms() + LIMIT_WAIT_MS;
         verdict == MSG_TOO_MANY && now_ms() < until;) {
        struct timespec ts = { 0, CLAIM_RETRY_MS * 1000000L };
        nanosleep(&ts, NULL);
        verdict = ask_master(chan, MSG_BUSY, key, strlen(key));
    }
    if (verdict == MSG_TOO_MANY) {
        log_warn("refused %s: more than max_per_ip=%u connections from %s", peer,
                 cfg->max_per_ip, key);
        refuse(fd, "too many connections from your address");
        return;
    }
    if (verdict == MSG_BLOCKED) {
        log_warn("refused %s: too many failed logins from %s", peer, key);
        refuse(fd, "too many failed logins from your address");
        return;
    }
    int one = 1;
    /* Replies are written whole; no need to let Nagle hold the last bit. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    log_info("connect from %s", peer);
    struct connection conn = { .rfd = fd, .wfd = fd, .peer = peer, .stop_flag = &got_stop,
                               .shed_flag = &got_shed, .claim = claim_mailbox,
                               .claim_ctx = &chan, .master_fd = chan, .addr_key = key,
                               .auth_failed = report_auth_failure, .keeper_fd = keeper_fd,
                               .preauth_setup = preauth_signals, .start_ms = now_ms() };
    proctitle_set("worker %s", peer);
    privsep_serve(cfg, &ids, &conn);     /* returns only if nobody logged in */
    close(fd);
    char release = MSG_RELEASE;      /* before exit: the next login need not wait */
    (void)send(chan, &release, 1, MSG_NOSIGNAL);
}

static void worker_main(const struct config *cfg, const int *lfds, size_t nl, int chan)
{
    proctitle_set("worker (idle)");
    set_handler(SIGTERM, on_worker_stop);
    set_handler(SIGUSR1, on_retire);
    set_handler(SIGUSR2, SIG_IGN);
    set_handler(SIGINT, SIG_IGN);
    set_handler(SIGHUP, SIG_IGN);
    set_handler(SIGCHLD, SIG_DFL);
    /* EPOLLEXCLUSIVE: a connection wakes one idle worker, not the whole
     * pool (a poll() on the shared sockets woke every one of them, and
     * all but one went back to sleep with EAGAIN). */
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        _exit(log_errno("worker: epoll_create1") ? 1 : 1);
    for (size_t i = 0; i < nl; i++) {
        struct epoll_event ev = { .events = EPOLLIN | EPOLLEXCLUSIVE, .data.u64 = i };
        if (epoll_ctl(ep, EPOLL_CTL_ADD, lfds[i], &ev) != 0)
            _exit(log_errno("worker: epoll_ctl") ? 1 : 1);
    }
    while (!got_stop && !got_retire) {
        struct epoll_event evs[CONFIG_MAX_LISTEN];
        int n = epoll_wait(ep, evs, (int)nl, 1000);
        if (n < 0 && errno != EINTR)
            _exit(log_errno("worker: epoll_wait") ? 1 : 1);
        for (int k = 0; k < n; k++) {
            size_t i = (size_t)evs[k].data.u64;
            struct sockaddr_storage sa;
            socklen_t salen = sizeof sa;
            int fd = accept4(lfds[i], (struct sockaddr *)&sa, &salen, SOCK_CLOEXEC);
            if (fd < 0) {
                if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                    log_errno("accept");
                    struct timespec ts = { 0, ACCEPT_PAUSE_MS * 1000000L };
                    nanosleep(&ts, NULL);
                }
                continue;   /* EAGAIN: another worker took it */
            }
            close(ep);
            set_handler(SIGUSR1, SIG_IGN);     /* busy now: retiring is for idle workers */
            for (size_t j = 0; j < nl; j++)
                close(lfds[j]);
            serve_connection(cfg, fd, &sa, salen, chan);
            _exit(0);
        }
    }
    _exit(0);
}

/* ---- master ---- */

struct pool {
    struct worker *w;
    size_t count, cap;
    const int *lfds;
    size_t nl;
};

static void spawn_worker(struct pool *p, const struct config *cfg)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
        log_errno("socketpair (worker)");
        return;
    }
    pid_t pid = fork();
    if (pid < 0) {
        log_errno("fork (worker)");
        close(sv[0]);
        close(sv[1]);
        return;
    }
    if (pid == 0) {
        if (setpgid(0, 0) != 0)
            log_errno("worker: setpgid");
        for (size_t i = 0; i < p->count; i++)
            close(p->w[i].chan);         /* other workers' business */
        close(sv[0]);
        worker_main(cfg, p->lfds, p->nl, sv[1]);
    }
    close(sv[1]);
    int flags = fcntl(sv[0], F_GETFL);
    if (flags >= 0)
        fcntl(sv[0], F_SETFL, flags | O_NONBLOCK);
    p->w[p->count++] = (struct worker){ .pid = pid, .chan = sv[0] };
}

static struct worker *find_worker(struct pool *p, pid_t pid)
{
    for (size_t i = 0; i < p->count; i++)
        if (p->w[i].pid == pid)
            return &p->w[i];
    return NULL;
}

static void reap_workers(struct pool *p)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        if (pid == keeper_pid) {
            log_err("the keeper (pid %ld) %s %d; starting another", (long)pid,
                    WIFSIGNALED(status) ? "was killed by signal" : "exited with status",
                    WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
            keeper_pid = 0;
            continue;
        }
        struct worker *w = find_worker(p, pid);
        if (w == NULL)
            continue;       /* a keeper that was replaced, now done */
        if (WIFSIGNALED(status))
            log_warn("worker %ld killed by signal %d", (long)pid, WTERMSIG(status));
        if (w->chan >= 0)
            close(w->chan);
        *w = p->w[--p->count];
    }
}

static int mailbox_claimed(const struct pool *p, const char *user)
{
    for (size_t i = 0; i < p->count; i++)
        if (strcmp(p->w[i].user, user) == 0)
            return 1;
    return 0;
}

/* Reads what one worker says and answers claims. */
/*
 * Failed logins per client address, for ip_auth_failures: a fixed table
 * (the oldest entry makes room), each entry counting failures since its
 * window began, and blocking the address once the count is reached.
 */
#define IP_TABLE_SIZE 4096

struct ip_record {
    char key[64];
    int64_t window_start_ms, last_ms, blocked_until_ms;
    unsigned failures;
};

static struct ip_record ip_table[IP_TABLE_SIZE];

static struct ip_record *ip_find(const char *key, int create)
{
    struct ip_record *oldest = &ip_table[0];
    for (size_t i = 0; i < IP_TABLE_SIZE; i++) {
        struct ip_record *r = &ip_table[i];
        if (r->key[0] != '\0' && strcmp(r->key, key) == 0)
            return r;
        if (r->last_ms < oldest->last_ms)
            oldest = r;
    }
    if (!create)
        return NULL;
    memset(oldest, 0, sizeof *oldest);
    strlcpy_checked(oldest->key, key, sizeof oldest->key);
    return oldest;
}

static void record_auth_failure(const struct config *cfg, const char *key)
{
    if (cfg->ip_auth_failures == 0)
        return;
    int64_t now = now_ms();
    struct ip_record *r = ip_find(key, 1);
    if (now - r->window_start_ms > (int64_t)cfg->ip_auth_window * 1000) {
        r->window_start_ms = now;
        r->failures = 0;
    }
    r->last_ms = now;
    if (++r->failures >= cfg->ip_auth_failures && r->blocked_until_ms <= now) {
        r->blocked_until_ms = now + (int64_t)cfg->ip_auth_block * 1000;
        log_warn("login failures: blocking %s for %u s after %u failed logins in %u s", key,
                 cfg->ip_auth_block, r->failures, cfg->ip_auth_window);
    }
}

/*
 * login_delay (RFC 2449 LOGIN-DELAY): when each account last logged in.
 * A fixed table; the oldest entry makes room, which can only shorten a
 * delay, never lengthen one.
 */
#define LOGIN_TABLE_SIZE 4096

struct login_record {
    char user[AUTH_MAX_USER + 1];
    int64_t last_ms;
};

static struct login_record login_table[LOGIN_TABLE_SIZE];

/* 1 if user logged in less than login_delay ago; else records now. */
static int too_soon(const struct config *cfg, const char *user)
{
    if (cfg->login_delay == 0)
        return 0;
    int64_t now = now_ms();
    struct login_record *slot = &login_table[0];
    for (size_t i = 0; i < LOGIN_TABLE_SIZE; i++) {
        struct login_record *r = &login_table[i];
        if (strcmp(r->user, user) == 0) {
            if (now - r->last_ms < (int64_t)cfg->login_delay * 1000)
                return 1;
            slot = r;
            break;
        }
        if (r->last_ms < slot->last_ms)
            slot = r;
    }
    strlcpy_checked(slot->user, user, sizeof slot->user);
    slot->last_ms = now;
    return 0;
}

static int address_blocked(const char *key)
{
    const struct ip_record *r = ip_find(key, 0);
    return r != NULL && r->blocked_until_ms > now_ms();
}

static int is_busy(const struct worker *w)
{
    return w->state == W_PREAUTH || w->state == W_SESSION;
}

static unsigned connections_from(const struct pool *p, const char *key)
{
    unsigned n = 0;
    for (size_t i = 0; i < p->count; i++)
        n += is_busy(&p->w[i]) && strcmp(p->w[i].addr, key) == 0;
    return n;
}

static void answer(struct worker *w, char reply)
{
    if (w->chan < 0)
        return;
    if (send(w->chan, &reply, 1, MSG_NOSIGNAL | MSG_DONTWAIT) != 1)
        log_errno("answering worker %ld", (long)w->pid);
}

/* Reads what one worker says and answers its requests. */
static void read_worker(struct pool *p, struct worker *w, const struct config *cfg)
{
    char msg[1 + AUTH_MAX_USER + 64];
    ssize_t n = -1;
    while (w->chan >= 0 && (n = recv(w->chan, msg, sizeof msg - 1, 0)) > 0) {
        msg[n] = '\0';
        const char *arg = msg + 1;
        if (msg[0] == MSG_BUSY) {
            w->state = W_PREAUTH;
            w->since_ms = now_ms();
            strlcpy_checked(w->addr, arg, sizeof w->addr);
            int blocked = address_blocked(w->addr);
            int over = !blocked && cfg->max_per_ip &&
                       connections_from(p, w->addr) > cfg->max_per_ip;   /* itself included */
            if (over || blocked)
                w->addr[0] = '\0';        /* refused: it does not count */
            answer(w, blocked ? MSG_BLOCKED : over ? MSG_TOO_MANY : MSG_CLAIMED);
        } else if (msg[0] == MSG_AUTH_FAIL && n >= 2) {
            record_auth_failure(cfg, arg);
        } else if (msg[0] == MSG_RELEASE) {
            w->user[0] = '\0';
            w->addr[0] = '\0';
            w->state = W_DONE;
        } else if (msg[0] == MSG_CLAIM && n >= 2 && (size_t)n <= 1 + AUTH_MAX_USER) {
            int taken = w->user[0] != '\0' || mailbox_claimed(p, arg);
            int wait = !taken && too_soon(cfg, arg);
            if (!taken && !wait) {
                strlcpy_checked(w->user, arg, sizeof w->user);
                w->state = W_SESSION;
            }
            answer(w, taken ? MSG_IN_USE : wait ? MSG_LOGIN_DELAY : MSG_CLAIMED);
        }
    }
    if (w->chan >= 0 && n == 0) {
        /* The worker became a session and let go of the channel; its
         * claim lasts until it is reaped. */
        close(w->chan);
        w->chan = -1;
    }
}

/* When the pool runs short, closes the oldest pre-auth connection. */
static void shed_preauth(struct pool *p, const struct config *cfg)
{
    size_t busy = 0;
    for (size_t i = 0; i < p->count; i++)
        busy += is_busy(&p->w[i]);
    if (busy * 100 < (size_t)cfg->max_children * SHED_PERCENT)
        return;
    struct worker *oldest = NULL;
    int64_t now = now_ms();
    for (size_t i = 0; i < p->count; i++) {
        struct worker *w = &p->w[i];
        if (w->state == W_PREAUTH && !w->shed && now - w->since_ms >= SHED_GRACE_MS &&
            (oldest == NULL || w->since_ms < oldest->since_ms))
            oldest = w;
    }
    if (oldest == NULL)
        return;
    log_warn("pool nearly full (%zu of max_children=%u busy): closing the pre-auth "
             "connection from %s, open %lld s without a login", busy, cfg->max_children,
             oldest->addr, (long long)((now - oldest->since_ms) / 1000));
    oldest->shed = 1;
    if (kill(-oldest->pid, SIGUSR2) != 0)
        log_errno("signalling worker %ld", (long)oldest->pid);
}

/* With every worker busy and max_children reached, the master answers
 * new connections itself, at once, instead of letting them hang. */
static void refuse_overflow(const int *lfds, size_t nl, const struct pollfd *pfd,
                            const struct config *cfg)
{
    for (size_t i = 0; i < nl; i++) {
        if (!(pfd[i].revents & POLLIN))
            continue;
        int fd;
        while ((fd = accept4(lfds[i], NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) >= 0) {
            log_warn("refused a connection: max_children=%u reached", cfg->max_children);
            refuse(fd, "too many connections");
        }
    }
}

/* Keeps min_spare..max_spare idle workers, max_children in all. */
/* Workers that count against max_children: all but those whose
 * connection is over and which are only exiting. */
static size_t active_workers(const struct pool *p)
{
    size_t n = 0;
    for (size_t i = 0; i < p->count; i++)
        n += p->w[i].state != W_DONE;
    return n;
}

static size_t balance_pool(struct pool *p, const struct config *cfg)
{
    size_t idle = 0, active = active_workers(p);
    for (size_t i = 0; i < p->count; i++)
        idle += p->w[i].state == W_IDLE;
    while (idle < cfg->min_spare && active < cfg->max_children && p->count < p->cap) {
        spawn_worker(p, cfg);
        idle++;
        active++;
    }
    if (idle == 0 && active < cfg->max_children && p->count < p->cap)
        spawn_worker(p, cfg);          /* min_spare = 0: still one to accept */
    for (size_t i = 0; i < p->count && idle > cfg->max_spare; i++)
        if (p->w[i].state == W_IDLE) {
            kill(p->w[i].pid, SIGUSR1);
            p->w[i].state = W_RETIRING;
            idle--;
        }
    return idle;
}

static void retire_idle(struct pool *p)
{
    for (size_t i = 0; i < p->count; i++)
        if (p->w[i].state == W_IDLE) {
            kill(p->w[i].pid, SIGUSR1);
            p->w[i].state = W_RETIRING;
        }
}

/* Starts a keeper for the workers forked from now on; the one before it,
 * if any, serves the sessions bound to it and then ends by itself. */
static void start_keeper(const struct config *cfg, const struct pool *p)
{
    int64_t now = now_ms();
    if (keeper_started_ms && now - keeper_started_ms < KEEPER_RESTART_MS)
        return;
    keeper_started_ms = now;
    int *fds = calloc(p->nl + p->count + 1, sizeof *fds);
    if (fds == NULL) {
        log_errno("starting the keeper");
        return;
    }
    size_t n = 0;
    for (size_t i = 0; i < p->nl; i++)
        fds[n++] = p->lfds[i];
    for (size_t i = 0; i < p->count; i++)
        fds[n++] = p->w[i].chan;
    fds[n++] = keeper_fd;
    int bind_fd;
    pid_t pid = privsep_start_keeper(cfg, &ids, fds, n, &bind_fd);
    free(fds);
    if (pid < 0)
        return;
    if (keeper_fd >= 0)
        close(keeper_fd);
    keeper_fd = bind_fd;
    keeper_pid = pid;
}

static void reload(struct config *cfg, const char *path, struct pool *p)
{
    struct privsep_ids fresh_ids;
    if (path == NULL) {
        log_info("SIGHUP: no config file to re-read");
        return;
    }
    struct config fresh;
    config_defaults(&fresh);
    char err[512];
    if (config_load(&fresh, path, 1, err, sizeof err) != 0 ||
        privsep_prepare(&fresh, &fresh_ids, 0, err, sizeof err) != 0) {
        log_err("SIGHUP: keeping the old configuration: %s", err);
        config_free(&fresh);
        return;
    }
    ids = fresh_ids;
    int listen_changed = fresh.listen_count != cfg->listen_count;
    for (size_t i = 0; !listen_changed && i < fresh.listen_count; i++)
        listen_changed = strcmp(fresh.listen[i], cfg->listen[i]) != 0;
    if (listen_changed)
        log_warn("SIGHUP: listen addresses changed; they take effect at the next restart");
    /* Keep the sockets we have: the listen setting stays as bound. */
    for (size_t i = 0; i < fresh.listen_count; i++)
        free(fresh.listen[i]);
    memcpy(fresh.listen, cfg->listen, sizeof cfg->listen);
    fresh.listen_count = cfg->listen_count;
    cfg->listen_count = 0;
    config_free(cfg);
    *cfg = fresh;
    keeper_started_ms = 0;
    start_keeper(cfg, p);            /* preauth_user or the spool group may differ */
    retire_idle(p);
    log_info("SIGHUP: configuration re-read from %s", path);
}

/* Lets the keeper go: it ends after the last session bound to it.  With
 * none left, wait for it a moment, so that it does not outlive us. */
static void stop_keeper(int wait)
{
    if (keeper_fd >= 0)
        close(keeper_fd);
    keeper_fd = -1;
    for (int64_t until = now_ms() + 2000; wait && keeper_pid > 0 && now_ms() < until;) {
        if (waitpid(keeper_pid, NULL, WNOHANG) == keeper_pid)
            break;
        struct timespec ts = { 0, 10 * 1000000L };
        nanosleep(&ts, NULL);
    }
}

static void shutdown_pool(struct pool *p)
{
    log_info("shutting down: %zu workers", p->count);
    for (size_t i = 0; i < p->count; i++)
        if (kill(-p->w[i].pid, SIGTERM) != 0)
            kill(p->w[i].pid, SIGTERM);     /* not yet its own group */
    int64_t deadline = now_ms() + SHUTDOWN_GRACE_SECS * 1000;
    while (p->count > 0 && now_ms() < deadline) {
        reap_workers(p);
        struct timespec ts = { 0, 50 * 1000000L };
        nanosleep(&ts, NULL);
    }
    if (p->count > 0)
        log_warn("exiting with %zu sessions still finishing", p->count);
}

/* max_children may grow at SIGHUP: so must the tables sized by it. */
static int grow_pool(struct pool *p, struct pollfd **pfd, const struct config *cfg)
{
    size_t want = (size_t)cfg->max_children * 2 + 16;   /* retiring workers linger */
    if (p->cap >= want)
        return 0;
    struct worker *w = realloc(p->w, want * sizeof *w);
    if (w == NULL)
        return log_errno("growing the worker table");
    p->w = w;
    struct pollfd *f = realloc(*pfd, (want + CONFIG_MAX_LISTEN) * sizeof *f);
    if (f == NULL)
        return log_errno("growing the worker table");
    *pfd = f;
    p->cap = want;
    return 0;
}

static int daemonize(void)
{
    pid_t pid = fork();
    if (pid < 0)
        return log_errno("fork (daemon)");
    if (pid > 0)
        _exit(0);
    if (setsid() < 0)
        return log_errno("setsid");
    if (chdir("/") != 0)
        return log_errno("chdir /");
    int null = open("/dev/null", O_RDWR);
    if (null < 0)
        return log_errno("/dev/null");
    dup2(null, 0);
    dup2(null, 1);
    dup2(null, 2);
    if (null > 2)
        close(null);
    return 0;
}

/* Start-up checks of the privilege separation; 0, or -1 (logged). */
static int prepare_privsep(const struct config *cfg)
{
    char err[512];
    if (privsep_prepare(cfg, &ids, 0, err, sizeof err) != 0) {
        log_err("refusing to start: %s", err);
        return -1;
    }
    return 0;
}

int server_run(struct config *cfg, const char *config_path, int foreground)
{
    if (prepare_privsep(cfg) != 0)
        return 1;
    int lfds[CONFIG_MAX_LISTEN];
    size_t nl = service_inherited_listeners(lfds, CONFIG_MAX_LISTEN);
    if (nl == 0)
        nl = server_listen(cfg, lfds, CONFIG_MAX_LISTEN);
    if (nl == 0)
        return 1;
    if (!foreground && daemonize() != 0)
        return 1;
    proctitle_set("master");         /* before the pid file names this process */
    /* The pid file stays where it was written, whatever SIGHUP brings. */
    char *pid_path = !foreground && cfg->pid_file ? strdup(cfg->pid_file) : NULL;
    if (pid_path)
        (void)service_write_pidfile(pid_path);   /* logged; not fatal */
    struct pool p = { .lfds = lfds, .nl = nl };
    p.cap = cfg->max_children * 2 + 16;    /* retiring workers linger briefly */
    p.w = calloc(p.cap, sizeof *p.w);
    struct pollfd *pfd = calloc(p.cap + CONFIG_MAX_LISTEN, sizeof *pfd);
    if (p.w == NULL || pfd == NULL)
        return log_errno("allocating the worker table") ? 1 : 1;

    set_handler(SIGTERM, on_stop);
    set_handler(SIGINT, on_stop);
    set_handler(SIGUSR1, SIG_IGN);      /* meant for workers */
    set_handler(SIGUSR2, SIG_IGN);
    set_handler(SIGHUP, on_hup);
    set_handler(SIGCHLD, on_child);
    log_info("mboxpop3d started: %zu listeners, min_spare=%u max_spare=%u max_children=%u",
             nl, cfg->min_spare, cfg->max_spare, cfg->max_children);
    start_keeper(cfg, &p);
    if (keeper_pid == 0)
        return 1;
    balance_pool(&p, cfg);
    service_notify("READY=1\nSTATUS=accepting connections");

    int64_t full_since_ms = 0;
    while (!got_stop) {
        if (grow_pool(&p, &pfd, cfg) != 0)
            break;
        size_t idle = balance_pool(&p, cfg);
        shed_preauth(&p, cfg);
        size_t n = p.count;
        for (size_t i = 0; i < n; i++)
            pfd[i] = (struct pollfd){ .fd = p.w[i].chan, .events = POLLIN };
        /* Full: after a grace (a worker may be about to finish), the
         * master answers the waiting connections itself. */
        int full = idle == 0 && active_workers(&p) >= cfg->max_children;
        if (!full)
            full_since_ms = 0;
        else if (full_since_ms == 0)
            full_since_ms = now_ms();
        size_t nl_polled = full && now_ms() - full_since_ms >= LIMIT_WAIT_MS ? nl : 0;
        for (size_t i = 0; i < nl_polled; i++)
            pfd[n + i] = (struct pollfd){ .fd = lfds[i], .events = POLLIN };
        if (poll(pfd, n + nl_polled, 1000) < 0 && errno != EINTR)
            log_errno("master: poll");
        for (size_t i = 0; i < n && i < p.count; i++)
            if (pfd[i].revents & POLLIN)
                read_worker(&p, &p.w[i], cfg);
        if (nl_polled)
            refuse_overflow(lfds, nl, pfd + n, cfg);
        if (got_child) {
            got_child = 0;
            reap_workers(&p);
        }
        if (keeper_pid == 0 && !got_stop) {
            start_keeper(cfg, &p);
            if (keeper_pid != 0)
                retire_idle(&p);     /* they hold the dead keeper's socket */
        }
        if (got_hup) {
            got_hup = 0;
            service_notify("RELOADING=1");
            reload(cfg, config_path, &p);
            service_notify("READY=1");
        }
    }
    service_notify("STOPPING=1");
    shutdown_pool(&p);
    stop_keeper(p.count == 0);
    service_remove_pidfile(pid_path);
    free(pid_path);
    for (size_t i = 0; i < p.count; i++)
        if (p.w[i].chan >= 0)
            close(p.w[i].chan);
    free(p.w);
    free(pfd);
    for (size_t i = 0; i < nl; i++)
        close(lfds[i]);
    log_info("mboxpop3d stopped");
    return 0;
}

int server_inetd(const struct config *cfg)
{
    struct sockaddr_storage sa;
    socklen_t salen = sizeof sa;
    char peer[NI_MAXHOST] = "stdin";
    if (getpeername(0, (struct sockaddr *)&sa, &salen) == 0)
        peer_name(&sa, salen, peer, sizeof peer);
    set_handler(SIGTERM, on_worker_stop);
    log_info("connect from %s (inetd)", peer);
    /* No master, so no table of logged-in mailboxes: a second session is
     * caught by UPDATE's check that the spool is still what it scanned. */
    if (prepare_privsep(cfg) != 0)
        return 1;
    /* A keeper of its own, for this connection's session; it must not
     * hold the client's socket (stdin, stdout, and stderr if inetd made
     * it the socket too), or the connection would outlive the session. */
    int client_fds[] = { 0, 1, 2 };
    struct stat st;
    size_t nclient = fstat(2, &st) == 0 && S_ISSOCK(st.st_mode) ? 3 : 2;
    int bind_fd;
    if (privsep_start_keeper(cfg, &ids, client_fds, nclient, &bind_fd) < 0)
        return 1;
    struct connection conn = { .rfd = 0, .wfd = 1, .peer = peer, .stop_flag = &got_stop,
                               .master_fd = -1, .keeper_fd = bind_fd, .start_ms = now_ms() };
    privsep_serve(cfg, &ids, &conn);     /* returns only if nobody logged in */
    close(bind_fd);
    return 0;
}

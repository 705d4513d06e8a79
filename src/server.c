/* server.c - listeners, the pre-forked worker pool, signals; see server.h. */
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
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "privsep.h"
#include "server.h"
#include "session.h"
#include "util.h"

#define LISTEN_BACKLOG 128
#define ACCEPT_PAUSE_MS 200        /* after EMFILE/ENFILE: pause, don't spin */
#define SHUTDOWN_GRACE_SECS 10

/* A worker's report to the master; one write, atomic on a pipe. */
struct worker_note {
    pid_t pid;
    char state;                    /* 'B': busy with a connection */
};

struct worker {
    pid_t pid;
    int busy;
};

static volatile sig_atomic_t got_stop, got_hup, got_child;

static void on_stop(int sig) { (void)sig; got_stop = 1; }
static void on_hup(int sig) { (void)sig; got_hup = 1; }
static void on_child(int sig) { (void)sig; got_child = 1; }

/* In a worker, SIGTERM also reaches the session child it forked. */
static void on_worker_stop(int sig)
{
    got_stop = 1;
    if (privsep_child_pid > 0)
        kill(privsep_child_pid, sig);
}

static void set_handler(int sig, void (*fn)(int))
{
    struct sigaction sa = { .sa_handler = fn };
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);
}

/* ---- listeners ---- */

static int open_listener(const char *spec)
{
    char host[128];
    const char *colon = strrchr(spec, ':');
    size_t hlen = (size_t)(colon - spec);
    const char *h = spec;
    if (spec[0] == '[') {          /* [v6]:port */
        h++;
        hlen -= 2;
    }
    if (hlen >= sizeof host) {
        log_err("listen %s: address too long", spec);
        return -1;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV };
    struct addrinfo *ai;
    int rc = getaddrinfo(host, colon + 1, &hints, &ai);
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

static void serve_connection(const struct config *cfg, int fd, const struct sockaddr_storage *sa,
                             socklen_t salen)
{
    char peer[NI_MAXHOST];
    peer_name(sa, salen, peer, sizeof peer);
    int one = 1;
    /* Replies are written whole; no need to let Nagle hold the last bit. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    log_info("connect from %s", peer);
    session_serve(cfg, fd, fd, peer, &got_stop);
    close(fd);
}

static void worker_main(const struct config *cfg, const int *lfds, size_t nl, int note_fd)
{
    set_handler(SIGTERM, on_worker_stop);
    set_handler(SIGINT, SIG_IGN);
    set_handler(SIGHUP, SIG_IGN);
    set_handler(SIGCHLD, SIG_DFL);
    struct pollfd pfd[CONFIG_MAX_LISTEN];
    for (size_t i = 0; i < nl; i++)
        pfd[i] = (struct pollfd){ .fd = lfds[i], .events = POLLIN };
    while (!got_stop) {
        int n = poll(pfd, nl, 1000);
        if (n < 0 && errno != EINTR)
            _exit(log_errno("worker: poll") ? 1 : 1);
        for (size_t i = 0; n > 0 && i < nl; i++) {
            if (!(pfd[i].revents & POLLIN))
                continue;
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
            struct worker_note note = { getpid(), 'B' };
            if (write_all(note_fd, &note, sizeof note) != 0)
                log_errno("worker: telling the master");
            close(note_fd);
            for (size_t j = 0; j < nl; j++)
                close(lfds[j]);
            serve_connection(cfg, fd, &sa, salen);
            _exit(0);
        }
    }
    _exit(0);
}

/* ---- master ---- */

struct pool {
    struct worker *w;
    size_t count, cap;
    int note_rd, note_wr;
    const int *lfds;
    size_t nl;
};

static void spawn_worker(struct pool *p, const struct config *cfg)
{
    pid_t pid = fork();
    if (pid < 0) {
        log_errno("fork (worker)");
        return;
    }
    if (pid == 0) {
        close(p->note_rd);
        worker_main(cfg, p->lfds, p->nl, p->note_wr);
    }
    p->w[p->count++] = (struct worker){ .pid = pid };
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
        struct worker *w = find_worker(p, pid);
        if (w == NULL)
            continue;
        if (WIFSIGNALED(status))
            log_warn("worker %ld killed by signal %d", (long)pid, WTERMSIG(status));
        *w = p->w[--p->count];
    }
}

static void read_notes(struct pool *p)
{
    struct worker_note note;
    ssize_t n;
    while ((n = read(p->note_rd, &note, sizeof note)) == (ssize_t)sizeof note) {
        struct worker *w = find_worker(p, note.pid);
        if (w && note.state == 'B')
            w->busy = 1;
    }
}

/* Keeps min_spare..max_spare idle workers, max_children in all. */
static void balance_pool(struct pool *p, const struct config *cfg)
{
    size_t idle = 0;
    for (size_t i = 0; i < p->count; i++)
        idle += !p->w[i].busy;
    while (idle < cfg->min_spare && p->count < cfg->max_children && p->count < p->cap) {
        spawn_worker(p, cfg);
        idle++;
    }
    if (idle == 0 && p->count < cfg->max_children && p->count < p->cap)
        spawn_worker(p, cfg);          /* min_spare = 0: still one to accept */
    for (size_t i = 0; i < p->count && idle > cfg->max_spare; i++)
        if (!p->w[i].busy) {
            kill(p->w[i].pid, SIGTERM);
            p->w[i].busy = 1;          /* retiring: no longer counted idle */
            idle--;
        }
}

static void retire_idle(struct pool *p)
{
    for (size_t i = 0; i < p->count; i++)
        if (!p->w[i].busy) {
            kill(p->w[i].pid, SIGTERM);
            p->w[i].busy = 1;
        }
}

static void reload(struct config *cfg, const char *path, struct pool *p)
{
    if (path == NULL) {
        log_info("SIGHUP: no config file to re-read");
        return;
    }
    struct config fresh;
    config_defaults(&fresh);
    char err[512];
    if (config_load(&fresh, path, 1, err, sizeof err) != 0) {
        log_err("SIGHUP: keeping the old configuration: %s", err);
        config_free(&fresh);
        return;
    }
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
    retire_idle(p);
    log_info("SIGHUP: configuration re-read from %s", path);
}

static void shutdown_pool(struct pool *p)
{
    log_info("shutting down: %zu workers", p->count);
    for (size_t i = 0; i < p->count; i++)
        kill(p->w[i].pid, SIGTERM);
    int64_t deadline = now_ms() + SHUTDOWN_GRACE_SECS * 1000;
    while (p->count > 0 && now_ms() < deadline) {
        reap_workers(p);
        struct timespec ts = { 0, 50 * 1000000L };
        nanosleep(&ts, NULL);
    }
    if (p->count > 0)
        log_warn("exiting with %zu sessions still finishing", p->count);
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

int server_run(struct config *cfg, const char *config_path, int foreground)
{
    int lfds[CONFIG_MAX_LISTEN];
    size_t nl = server_listen(cfg, lfds, CONFIG_MAX_LISTEN);
    if (nl == 0)
        return 1;
    if (!foreground && daemonize() != 0)
        return 1;
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC | O_NONBLOCK) != 0)
        return log_errno("pipe") ? 1 : 1;
    struct pool p = { .note_rd = pipefd[0], .note_wr = pipefd[1], .lfds = lfds, .nl = nl };
    p.cap = cfg->max_children * 2 + 16;    /* retiring workers linger briefly */
    p.w = calloc(p.cap, sizeof *p.w);
    if (p.w == NULL)
        return log_errno("allocating the worker table") ? 1 : 1;

    set_handler(SIGTERM, on_stop);
    set_handler(SIGINT, on_stop);
    set_handler(SIGHUP, on_hup);
    set_handler(SIGCHLD, on_child);
    log_info("mboxpop3d started: %zu listeners, min_spare=%u max_spare=%u max_children=%u",
             nl, cfg->min_spare, cfg->max_spare, cfg->max_children);

    while (!got_stop) {
        balance_pool(&p, cfg);
        struct pollfd pfd = { .fd = p.note_rd, .events = POLLIN };
        if (poll(&pfd, 1, 1000) < 0 && errno != EINTR)
            log_errno("master: poll");
        read_notes(&p);
        if (got_child) {
            got_child = 0;
            reap_workers(&p);
        }
        if (got_hup) {
            got_hup = 0;
            reload(cfg, config_path, &p);
        }
    }
    shutdown_pool(&p);
    free(p.w);
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
    session_serve(cfg, 0, 1, peer, &got_stop);
    return 0;
}

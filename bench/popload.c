/*
 * popload - the load generator and reference meter of `make bench`.
 *
 *   popload MODE [ADDRESS:PORT] [options]
 *
 * Every mode prints one line "RESULT mode=... key=value ..." on stdout (and
 * its problems on stderr); bench/run.sh collects those lines.  POP3 modes
 * connect only to 127.0.0.0/8 or [::1]; every loop stops after a count and
 * a time limit.  The client is an ordinary one: one command at a time, no
 * pipelining, default socket options (no TCP_NODELAY, no TCP_QUICKACK).
 *
 * Modes:
 *   login    -c C clients (threads) log in and out for -t seconds or -n
 *            logins: connect, greeting, USER, PASS, STAT, QUIT, close.
 *            Client i uses account number -f+i (-u/-w are formats).
 *   open     connect to STAT's answer; then LIST and UIDL (--list/--uidl),
 *            each timed on its own, read to the terminating ".".
 *   retr     RETR messages one by one (all, --from/--to, or -m N), un-stuffs
 *            the dot-stuffing and compares each octet count with LIST's.
 *   loopref  the loopback reference: a forked sender writes the wire bytes
 *            of --mbox FILE (or -b bytes of text) as a RETR reply over
 *            127.0.0.1 TCP; the receiver parses them with retr's code.
 *   dele     DELE -m N (default 1), or every message with --all, then QUIT;
 *            times the DELEs, QUIT to +OK, and QUIT to the close.
 *   fsyncref writes -b bytes to a new file in --dir and fsyncs it.
 *   cryptref crypt(3) hashes/s with --setting on 1 thread and on all cores.
 *   procref  the cost of a process: fork, _exit and waitpid in a loop on
 *            all cores (--threads) for -t seconds or -n processes; with the
 *            crypt figure it bounds what a login that needs processes can
 *            reach on this machine.
 *   passref  one pass over --mbox FILE as the scan makes it: map it, read
 *            every word with one thread per core (--threads) on its share,
 *            unmap it.  The floor of an open; no scan can read less.
 *   idle     opens -n sessions (accounts -f .. -f+n-1), holds them, and
 *            measures the PSS/RSS of the process tree of -P PID before and
 *            during; also the processes that hold the sessions' sockets.
 */
#include <arpa/inet.h>
#include <crypt.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ERRLEN 256
#define MAX_CLIENTS 1024
#define MAX_SESSIONS 4096

/* ---------------------------------------------------------------- options */

static struct {
    const char *mode;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    int have_addr;
    int clients;
    double secs;
    long count;
    const char *userfmt;
    const char *passfmt;
    int first;
    long msg;
    long from, to;
    int all, list, uidl;
    long pid;
    double hold;
    double settle;
    const char *dir;
    long long bytes;
    const char *mbox;
    const char *setting;
    double timeout;
    int threads;
} opt = {
    .clients = 1, .secs = 10, .count = 1000000, .userfmt = "mpbench%02d",
    .passfmt = "mpb-%02d-Secret", .first = 1, .msg = 0, .from = 1, .to = 0,
    .hold = 0, .settle = 0.5, .bytes = 100000000, .timeout = 60,
    .setting = "$6$rounds=5000$Zb3nC7pQ1xY8wL2k", .threads = 0,
};

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("popload: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(2);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* "%02d", "%d", "%%" in fmt, with n; anything else is copied. */
static void expand(char *out, size_t outlen, const char *fmt, int n)
{
    size_t o = 0;
    for (const char *p = fmt; *p && o + 1 < outlen; p++) {
        if (*p != '%') {
            out[o++] = *p;
            continue;
        }
        if (p[1] == '%') {
            out[o++] = '%';
            p++;
            continue;
        }
        const char *q = p + 1;
        int zero = 0, width = 0;
        if (*q == '0') {
            zero = 1;
            q++;
        }
        while (isdigit((unsigned char)*q))
            width = width * 10 + (*q++ - '0');
        if (*q != 'd') {
            out[o++] = *p;
            continue;
        }
        char num[32];
        int len = snprintf(num, sizeof num, "%d", n);
        for (int i = len; i < width && o + 1 < outlen; i++)
            out[o++] = zero ? '0' : ' ';
        for (int i = 0; i < len && o + 1 < outlen; i++)
            out[o++] = num[i];
        p = q;
    }
    out[o] = '\0';
}

static void parse_addr(const char *s)
{
    char host[128];
    const char *port;
    if (s[0] == '[') {
        const char *e = strchr(s, ']');
        if (!e || e[1] != ':' || (size_t)(e - s - 1) >= sizeof host)
            die("bad address %s (use [::1]:PORT)", s);
        memcpy(host, s + 1, e - s - 1);
        host[e - s - 1] = '\0';
        port = e + 2;
    } else {
        const char *c = strrchr(s, ':');
        if (!c || (size_t)(c - s) >= sizeof host)
            die("bad address %s (use 127.0.0.1:PORT)", s);
        memcpy(host, s, c - s);
        host[c - s] = '\0';
        port = c + 1;
    }
    char *end;
    long p = strtol(port, &end, 10);
    if (*end || p < 1 || p > 65535)
        die("bad port in %s", s);
    memset(&opt.addr, 0, sizeof opt.addr);
    struct sockaddr_in *a4 = (struct sockaddr_in *)&opt.addr;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&opt.addr;
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        if ((ntohl(a4->sin_addr.s_addr) >> 24) != 127)
            die("refusing %s: only 127.0.0.0/8 and [::1] are allowed", host);
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)p);
        opt.addrlen = sizeof *a4;
    } else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        if (!IN6_IS_ADDR_LOOPBACK(&a6->sin6_addr))
            die("refusing %s: only 127.0.0.0/8 and [::1] are allowed", host);
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)p);
        opt.addrlen = sizeof *a6;
    } else {
        die("refusing %s: not a numeric loopback address", host);
    }
    opt.have_addr = 1;
}

/* ------------------------------------------------------------- connection */

struct conn {
    int fd;
    char *buf;
    size_t cap, start, end;
    double deadline;     /* absolute, CLOCK_MONOTONIC */
    uint64_t wire;       /* bytes received */
    char err[ERRLEN];
};

static void conn_init(struct conn *c, size_t cap)
{
    memset(c, 0, sizeof *c);
    c->fd = -1;
    c->cap = cap;
    c->buf = malloc(cap);
    if (!c->buf)
        die("out of memory");
}

static void conn_close(struct conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->start = c->end = 0;
}

static void conn_free(struct conn *c)
{
    conn_close(c);
    free(c->buf);
    c->buf = NULL;
}

static int conn_fail(struct conn *c, const char *what, const char *detail)
{
    snprintf(c->err, sizeof c->err, "%s: %s", what, detail);
    return -1;
}

/* Waits up to the deadline (and opt.timeout) for fd to be ready. */
static int conn_wait(struct conn *c, short events)
{
    for (;;) {
        double left = c->deadline - now();
        if (left > opt.timeout)
            left = opt.timeout;
        if (left <= 0)
            return conn_fail(c, "timeout", "time limit reached");
        struct pollfd p = {.fd = c->fd, .events = events};
        int r = poll(&p, 1, (int)(left * 1000) + 1);
        if (r > 0)
            return 0;
        if (r < 0 && errno != EINTR)
            return conn_fail(c, "poll", strerror(errno));
    }
}

static int conn_open(struct conn *c)
{
    c->start = c->end = 0;
    c->err[0] = '\0';
    c->fd = socket(opt.addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return conn_fail(c, "socket", strerror(errno));
    if (connect(c->fd, (struct sockaddr *)&opt.addr, opt.addrlen) < 0) {
        int e = errno;
        conn_close(c);
        return conn_fail(c, "connect", strerror(e));
    }
    return 0;
}

/* Reads more into the buffer; 0 at EOF, -1 on error, else bytes read. */
static ssize_t conn_fill(struct conn *c)
{
    if (c->start == c->end)
        c->start = c->end = 0;
    else if (c->end == c->cap && c->start > 0) {
        memmove(c->buf, c->buf + c->start, c->end - c->start);
        c->end -= c->start;
        c->start = 0;
    }
    if (c->end == c->cap)
        return conn_fail(c, "read", "line too long");
    for (;;) {
        ssize_t n = recv(c->fd, c->buf + c->end, c->cap - c->end, MSG_DONTWAIT);
        if (n > 0) {
            c->end += n;
            c->wire += n;
            return n;
        }
        if (n == 0)
            return 0;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return conn_fail(c, "recv", strerror(errno));
        if (conn_wait(c, POLLIN) < 0)
            return -1;
    }
}

/* One line without its CR LF, NUL-terminated in place. */
static int conn_line(struct conn *c, char **line, size_t *len)
{
    for (;;) {
        char *b = c->buf + c->start;
        char *nl = memchr(b, '\n', c->end - c->start);
        if (nl) {
            size_t l = nl - b;
            c->start += l + 1;
            if (l > 0 && b[l - 1] == '\r')
                l--;
            b[l] = '\0';
            *line = b;
            *len = l;
            return 0;
        }
        ssize_t n = conn_fill(c);
        if (n == 0)
            return conn_fail(c, "read", "connection closed by server");
        if (n < 0)
            return -1;
    }
}

static int conn_send(struct conn *c, const char *s)
{
    size_t len = strlen(s), off = 0;
    while (off < len) {
        ssize_t n = send(c->fd, s + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            off += n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (conn_wait(c, POLLOUT) < 0)
                return -1;
            continue;
        }
        return conn_fail(c, "send", strerror(errno));
    }
    return 0;
}

/* Reads a status line; 0 for +OK, -1 (text in c->err) otherwise. */
static int conn_status(struct conn *c, const char *what, char **linep)
{
    char *line;
    size_t len;
    if (conn_line(c, &line, &len) < 0)
        return -1;
    if (linep)
        *linep = line;
    if (strncmp(line, "+OK", 3) == 0)
        return 0;
    return conn_fail(c, what, line);
}

static int conn_cmd(struct conn *c, const char *cmd, const char *what, char **linep)
{
    if (conn_send(c, cmd) < 0)
        return -1;
    return conn_status(c, what, linep);
}

/* Waits for the server to close the connection (bytes are discarded). */
static int conn_wait_eof(struct conn *c)
{
    c->start = c->end = 0;
    for (;;) {
        ssize_t n = conn_fill(c);
        if (n == 0)
            return 0;
        if (n < 0)
            return -1;
        c->start = c->end = 0;
    }
}

/* Connect, greeting, USER, PASS, and STAT if stat != NULL. */
static int pop_login(struct conn *c, int account, long *msgs, long long *octets)
{
    char user[128], pass[128], cmd[300];
    expand(user, sizeof user, opt.userfmt, account);
    expand(pass, sizeof pass, opt.passfmt, account);
    if (conn_open(c) < 0)
        return -1;
    if (conn_status(c, "greeting", NULL) < 0)
        return -1;
    snprintf(cmd, sizeof cmd, "USER %s\r\n", user);
    if (conn_cmd(c, cmd, "USER", NULL) < 0)
        return -1;
    snprintf(cmd, sizeof cmd, "PASS %s\r\n", pass);
    if (conn_cmd(c, cmd, "PASS", NULL) < 0)
        return -1;
    if (msgs) {
        char *line;
        if (conn_cmd(c, "STAT\r\n", "STAT", &line) < 0)
            return -1;
        if (sscanf(line, "+OK %ld %lld", msgs, octets) != 2)
            return conn_fail(c, "STAT", "unparsable answer");
    }
    return 0;
}

static int pop_quit(struct conn *c)
{
    if (conn_cmd(c, "QUIT\r\n", "QUIT", NULL) < 0)
        return -1;
    return conn_wait_eof(c);
}

/* A multi-line reply's body, after the status line: counts lines, calls
 * fn for each (without CR LF, after un-stuffing) if given. */
static int read_lines(struct conn *c, long *lines,
                      int (*fn)(void *, char *, size_t), void *arg)
{
    long n = 0;
    for (;;) {
        char *line;
        size_t len;
        if (conn_line(c, &line, &len) < 0)
            return -1;
        if (line[0] == '.') {
            if (len == 1)
                break;
            line++;
            len--;
        }
        n++;
        if (fn && fn(arg, line, len) < 0)
            return conn_fail(c, "multi-line", "unparsable line");
    }
    *lines = n;
    return 0;
}

/* The un-stuffing parser of RETR bodies (shared by retr and loopref). */
enum { S_BOL, S_DOT, S_DOTCR, S_MID };
struct body {
    int state;
    uint64_t octets;   /* message octets after un-stuffing, CR LF included */
    uint64_t lines;
};

/* Consumes p[0..n); returns bytes used up to and including the
 * terminating ".\r\n" once seen, or -1 if more is needed. */
static ssize_t body_feed(struct body *b, const char *p, size_t n)
{
    const char *s = p, *e = p + n;
    while (p < e) {
        switch (b->state) {
        case S_BOL:
            if (*p == '.') {
                b->state = S_DOT;
                p++;
            } else {
                b->state = S_MID;
            }
            break;
        case S_DOT:
            if (*p == '\r') {
                b->state = S_DOTCR;
                p++;
            } else {
                b->state = S_MID;   /* the stuffed dot is dropped */
            }
            break;
        case S_DOTCR:
            if (*p == '\n') {
                b->state = S_BOL;
                return p + 1 - s;
            }
            b->octets += 1;         /* ".\r" + other: not a terminator */
            b->state = S_MID;
            break;
        default: {
            const char *nl = memchr(p, '\n', e - p);
            if (nl) {
                b->octets += nl + 1 - p;
                b->lines++;
                p = nl + 1;
                b->state = S_BOL;
            } else {
                b->octets += e - p;
                p = e;
            }
        }
        }
    }
    return -1;
}

static int read_body(struct conn *c, struct body *b)
{
    memset(b, 0, sizeof *b);
    for (;;) {
        if (c->end > c->start) {
            ssize_t used = body_feed(b, c->buf + c->start, c->end - c->start);
            if (used >= 0) {
                c->start += used;
                return 0;
            }
            c->start = c->end = 0;
        }
        ssize_t n = conn_fill(c);
        if (n == 0)
            return conn_fail(c, "RETR", "connection closed by server");
        if (n < 0)
            return -1;
    }
}

/* ------------------------------------------------------------ statistics */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(const double *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    size_t i = (size_t)(p * (n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

/* Quotes err text for a RESULT line: no spaces inside the value. */
static void print_err(const char *e)
{
    printf(" err_text=\"");
    for (const char *p = e; *p; p++)
        putchar(*p == '"' ? '\'' : (isprint((unsigned char)*p) ? *p : '?'));
    putchar('"');
}

/* ----------------------------------------------------------------- login */

static struct {
    atomic_long issued;
    atomic_long ok, err;
    double deadline;
    pthread_mutex_t mu;
    char first_err[ERRLEN];
} L = {.mu = PTHREAD_MUTEX_INITIALIZER};

struct lthread {
    pthread_t tid;
    int account;
    double *lat;
    size_t n, cap;
    double t_end;
};

static void *login_thread(void *arg)
{
    struct lthread *t = arg;
    struct conn c;
    conn_init(&c, 16384);
    for (;;) {
        if (atomic_fetch_add(&L.issued, 1) >= opt.count || now() >= L.deadline)
            break;
        double t0 = now();
        c.deadline = t0 + opt.timeout;
        long m;
        long long o;
        int r = pop_login(&c, t->account, &m, &o);
        if (r == 0)
            r = pop_quit(&c);
        conn_close(&c);
        double t1 = now();
        if (r == 0) {
            atomic_fetch_add(&L.ok, 1);
            if (t->n == t->cap) {
                t->cap = t->cap ? t->cap * 2 : 4096;
                t->lat = realloc(t->lat, t->cap * sizeof *t->lat);
                if (!t->lat)
                    die("out of memory");
            }
            t->lat[t->n++] = (t1 - t0) * 1000;
        } else {
            atomic_fetch_add(&L.err, 1);
            pthread_mutex_lock(&L.mu);
            if (!L.first_err[0])
                snprintf(L.first_err, sizeof L.first_err, "%s", c.err);
            pthread_mutex_unlock(&L.mu);
            /* a refused or failed connection must not spin: back off */
            struct timespec ts = {0, 10 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    t->t_end = now();
    conn_free(&c);
    return NULL;
}

static int mode_login(void)
{
    int nc = opt.clients;
    if (nc < 1 || nc > MAX_CLIENTS)
        die("-c must be 1..%d", MAX_CLIENTS);
    struct lthread *t = calloc(nc, sizeof *t);
    if (!t)
        die("out of memory");
    double t0 = now();
    L.deadline = t0 + opt.secs;
    for (int i = 0; i < nc; i++) {
        t[i].account = opt.first + i;
        if (pthread_create(&t[i].tid, NULL, login_thread, &t[i]) != 0)
            die("pthread_create failed");
    }
    double t_end = t0;
    size_t total = 0;
    for (int i = 0; i < nc; i++) {
        pthread_join(t[i].tid, NULL);
        if (t[i].t_end > t_end)
            t_end = t[i].t_end;
        total += t[i].n;
    }
    double *all = malloc((total ? total : 1) * sizeof *all);
    if (!all)
        die("out of memory");
    size_t k = 0;
    for (int i = 0; i < nc; i++) {
        memcpy(all + k, t[i].lat, t[i].n * sizeof *all);
        k += t[i].n;
        free(t[i].lat);
    }
    qsort(all, total, sizeof *all, cmp_double);
    double el = t_end - t0;
    printf("RESULT mode=login ok=%d clients=%d secs=%.3f logins=%ld errors=%ld rate=%.1f "
           "p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f",
           atomic_load(&L.ok) > 0, nc, el, atomic_load(&L.ok), atomic_load(&L.err),
           el > 0 ? atomic_load(&L.ok) / el : 0, pct(all, total, 0.5),
           pct(all, total, 0.9), pct(all, total, 0.99),
           total ? all[total - 1] : 0);
    if (L.first_err[0])
        print_err(L.first_err);
    putchar('\n');
    free(all);
    free(t);
    return atomic_load(&L.ok) > 0 ? 0 : 1;
}

/* ------------------------------------------------------------ open, retr */

struct sizes {
    long n;
    long long *size;   /* size[1..n] */
    long long sum;
};

static int list_line(void *arg, char *line, size_t len)
{
    (void)len;
    struct sizes *s = arg;
    long i;
    long long sz;
    if (sscanf(line, "%ld %lld", &i, &sz) != 2 || i < 1 || i > s->n)
        return -1;
    s->size[i] = sz;
    s->sum += sz;
    return 0;
}

static int do_list(struct conn *c, struct sizes *s, long *lines)
{
    if (conn_cmd(c, "LIST\r\n", "LIST", NULL) < 0)
        return -1;
    return read_lines(c, lines, s ? list_line : NULL, s);
}

static int mode_open(void)
{
    struct conn c;
    conn_init(&c, 1 << 18);
    double t0 = now();
    c.deadline = t0 + opt.secs;
    long msgs = 0, list_lines = -1, uidl_lines = -1;
    long long octets = 0;
    double t_stat = 0, list_ms = -1, uidl_ms = -1, quit_ms = -1;
    int r = pop_login(&c, opt.first, &msgs, &octets);
    if (r == 0) {
        t_stat = now();
        if (opt.list) {
            double a = now();
            r = do_list(&c, NULL, &list_lines);
            list_ms = (now() - a) * 1000;
        }
        if (r == 0 && opt.uidl) {
            double a = now();
            r = conn_cmd(&c, "UIDL\r\n", "UIDL", NULL);
            if (r == 0)
                r = read_lines(&c, &uidl_lines, NULL, NULL);
            uidl_ms = (now() - a) * 1000;
        }
        if (r == 0) {
            double a = now();
            r = pop_quit(&c);
            quit_ms = (now() - a) * 1000;
        }
    }
    printf("RESULT mode=open ok=%d open_ms=%.2f msgs=%ld octets=%lld list_ms=%.2f "
           "list_lines=%ld uidl_ms=%.2f uidl_lines=%ld quit_ms=%.2f",
           r == 0, r == 0 ? (t_stat - t0) * 1000 : -1, msgs, octets, list_ms,
           list_lines, uidl_ms, uidl_lines, quit_ms);
    if (r < 0)
        print_err(c.err);
    putchar('\n');
    conn_free(&c);
    return r == 0 ? 0 : 1;
}

static int mode_retr(void)
{
    struct conn c;
    conn_init(&c, 1 << 18);
    double t0 = now();
    c.deadline = t0 + opt.secs + opt.timeout;   /* login + listing + the loop */
    long msgs = 0;
    long long octets = 0;
    struct sizes s = {0};
    long lines = 0, done = 0, mismatches = 0, first_bad = 0;
    long long bad_exp = 0, bad_got = 0;
    uint64_t got = 0, wire0 = 0;
    double ta = 0, tb = 0;
    int r = pop_login(&c, opt.first, &msgs, &octets);
    if (r == 0) {
        s.n = msgs;
        s.size = calloc(msgs + 1, sizeof *s.size);
        if (!s.size)
            die("out of memory");
        r = do_list(&c, &s, &lines);
    }
    long from = opt.from, to = opt.to ? opt.to : msgs;
    if (opt.msg)
        from = to = opt.msg;
    if (to > msgs)
        to = msgs;
    if (r == 0) {
        char cmd[64];
        wire0 = c.wire;
        ta = now();
        double stop = ta + opt.secs;
        c.deadline = stop + opt.timeout;
        for (long i = from; i <= to && now() < stop; i++) {
            struct body b;
            snprintf(cmd, sizeof cmd, "RETR %ld\r\n", i);
            if ((r = conn_cmd(&c, cmd, "RETR", NULL)) < 0)
                break;
            if ((r = read_body(&c, &b)) < 0)
                break;
            got += b.octets;
            done++;
            if ((long long)b.octets != s.size[i]) {
                if (!mismatches++) {
                    first_bad = i;
                    bad_exp = s.size[i];
                    bad_got = (long long)b.octets;
                }
            }
        }
        tb = now();
        if (r == 0)
            r = pop_quit(&c);
    }
    double el = tb - ta;
    long want = to >= from ? to - from + 1 : 0;
    printf("RESULT mode=retr ok=%d msgs=%ld wanted=%ld complete=%d secs=%.4f msgs_s=%.1f "
           "mb_s=%.1f octets=%llu wire=%llu mismatches=%ld",
           r == 0, done, want, r == 0 && done == want, el, el > 0 ? done / el : 0,
           el > 0 ? got / el / 1e6 : 0, (unsigned long long)got,
           (unsigned long long)(c.wire - wire0), mismatches);
    if (mismatches)
        printf(" first_mismatch=%ld list=%lld got=%lld", first_bad, bad_exp, bad_got);
    if (r < 0)
        print_err(c.err);
    putchar('\n');
    free(s.size);
    conn_free(&c);
    return r == 0 && mismatches == 0 ? 0 : 1;
}

/* ---------------------------------------------------------------- loopref */

/* The wire bytes of a RETR reply to the message in an mbox file (its
 * first "From " line dropped), or of `bytes` of 76-column text. */
static char *build_wire(size_t *wlen, uint64_t *msg_octets)
{
    char *in = NULL;
    size_t inlen = 0;
    if (opt.mbox) {
        int fd = open(opt.mbox, O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0)
            die("%s: %s", opt.mbox, strerror(errno));
        inlen = st.st_size;
        in = malloc(inlen + 1);
        if (!in)
            die("out of memory");
        size_t off = 0;
        while (off < inlen) {
            ssize_t n = read(fd, in + off, inlen - off);
            if (n <= 0)
                die("%s: short read", opt.mbox);
            off += n;
        }
        close(fd);
    } else {
        if (opt.bytes < 1 || opt.bytes > (1LL << 34))
            die("-b must be 1 .. 16 GiB");
        inlen = opt.bytes;
        in = malloc(inlen + 1);
        if (!in)
            die("out of memory");
        for (size_t i = 0; i < inlen; i++)
            in[i] = (i % 77 == 76) ? '\n' : (char)('a' + i % 26);
    }
    size_t cap = inlen + inlen / 8 + 64, o = 0;
    char *w = malloc(cap);
    if (!w)
        die("out of memory");
    o += snprintf(w, cap, "+OK message follows\r\n");
    size_t p = 0;
    if (opt.mbox && inlen >= 5 && memcmp(in, "From ", 5) == 0) {
        char *nl = memchr(in, '\n', inlen);
        p = nl ? (size_t)(nl - in) + 1 : inlen;
    }
    uint64_t octets = 0;
    while (p < inlen) {
        char *nl = memchr(in + p, '\n', inlen - p);
        size_t l = nl ? (size_t)(nl - (in + p)) : inlen - p;
        if (o + l + 8 > cap) {
            cap = cap * 2 + l;
            w = realloc(w, cap);
            if (!w)
                die("out of memory");
        }
        if (l > 0 && in[p] == '.')
            w[o++] = '.';
        memcpy(w + o, in + p, l);
        o += l;
        w[o++] = '\r';
        w[o++] = '\n';
        octets += l + 2;
        p += l + 1;
    }
    memcpy(w + o, ".\r\n", 3);
    o += 3;
    free(in);
    *wlen = o;
    *msg_octets = octets;
    return w;
}

static int mode_loopref(void)
{
    size_t wlen;
    uint64_t expect;
    char *wire = build_wire(&wlen, &expect);
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof a) < 0 || listen(ls, 1) < 0 ||
        getsockname(ls, (struct sockaddr *)&a, &al) < 0)
        die("loopref listener: %s", strerror(errno));
    pid_t child = fork();
    if (child < 0)
        die("fork: %s", strerror(errno));
    if (child == 0) {
        /* the sender: accept one connection, wait for the command, send */
        alarm((unsigned)(opt.timeout + 1));
        int s = accept(ls, NULL, NULL);
        if (s < 0)
            _exit(1);
        char cmd[64];
        size_t got = 0;
        while (got < sizeof cmd && !memchr(cmd, '\n', got)) {
            ssize_t n = read(s, cmd + got, sizeof cmd - got);
            if (n <= 0)
                _exit(1);
            got += n;
        }
        size_t off = 0;
        while (off < wlen) {
            ssize_t n = write(s, wire + off, wlen - off);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                _exit(1);
            off += n;
        }
        char tmp[64];
        while (read(s, tmp, sizeof tmp) > 0)   /* until the receiver closes */
            ;
        _exit(0);
    }
    close(ls);
    free(wire);
    opt.addrlen = sizeof a;
    memcpy(&opt.addr, &a, sizeof a);
    struct conn c;
    conn_init(&c, 1 << 18);
    c.deadline = now() + opt.timeout;
    struct body b = {0};
    double ta = 0, tb = 0;
    int r = conn_open(&c);
    if (r == 0) {
        ta = now();
        r = conn_cmd(&c, "RETR 1\r\n", "RETR", NULL);
        if (r == 0)
            r = read_body(&c, &b);
        tb = now();
    }
    conn_close(&c);
    int st;
    waitpid(child, &st, 0);
    double el = tb - ta;
    printf("RESULT mode=loopref ok=%d octets=%llu expected=%llu wire=%llu secs=%.4f mb_s=%.1f",
           r == 0 && b.octets == expect, (unsigned long long)b.octets,
           (unsigned long long)expect, (unsigned long long)c.wire, el,
           el > 0 ? b.octets / el / 1e6 : 0);
    if (r < 0)
        print_err(c.err);
    putchar('\n');
    conn_free(&c);
    return r == 0 ? 0 : 1;
}

/* ------------------------------------------------------------------- dele */

static int mode_dele(void)
{
    struct conn c;
    conn_init(&c, 1 << 16);
    double t0 = now();
    c.deadline = t0 + opt.secs + opt.timeout;
    long msgs = 0, deleted = 0;
    long long octets = 0;
    double ta = 0, tb = 0, tq = 0, tok = 0, tclose = 0;
    int r = pop_login(&c, opt.first, &msgs, &octets);
    if (r == 0) {
        long from = opt.all ? 1 : (opt.msg ? opt.msg : 1);
        long to = opt.all ? msgs : from;
        char cmd[64];
        ta = now();
        double stop = ta + opt.secs;
        for (long i = from; i <= to && now() < stop; i++) {
            snprintf(cmd, sizeof cmd, "DELE %ld\r\n", i);
            if ((r = conn_cmd(&c, cmd, "DELE", NULL)) < 0)
                break;
            deleted++;
        }
        tb = now();
        if (r == 0 && deleted != to - from + 1)
            r = conn_fail(&c, "DELE", "time limit reached before every DELE");
        if (r == 0) {
            tq = now();
            r = conn_cmd(&c, "QUIT\r\n", "QUIT", NULL);
            tok = now();
            if (r == 0)
                r = conn_wait_eof(&c);
            tclose = now();
        }
    }
    printf("RESULT mode=dele ok=%d msgs=%ld octets=%lld deleted=%ld dele_ms=%.2f quit_ms=%.2f "
           "close_ms=%.2f total_ms=%.2f",
           r == 0, msgs, octets, deleted, (tb - ta) * 1000, (tok - tq) * 1000,
           (tclose - tq) * 1000, (tclose - ta) * 1000);
    if (r < 0)
        print_err(c.err);
    putchar('\n');
    conn_free(&c);
    return r == 0 ? 0 : 1;
}

/* --------------------------------------------------------------- fsyncref */

static int mode_fsyncref(void)
{
    if (!opt.dir)
        die("fsyncref needs --dir");
    if (opt.bytes < 0 || opt.bytes > (1LL << 36))
        die("-b must be 0 .. 64 GiB");
    char path[4096];
    snprintf(path, sizeof path, "%s/.popload-fsyncref.%ld", opt.dir, (long)getpid());
    size_t chunk = 1 << 20;
    char *buf = malloc(chunk);
    if (!buf)
        die("out of memory");
    for (size_t i = 0; i < chunk; i++)
        buf[i] = (i % 77 == 76) ? '\n' : (char)('A' + i % 26);
    double t0 = now();
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        die("%s: %s", path, strerror(errno));
    long long left = opt.bytes;
    int r = 0;
    while (left > 0 && now() < t0 + opt.secs + opt.timeout) {
        size_t n = left < (long long)chunk ? (size_t)left : chunk;
        ssize_t w = write(fd, buf, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            r = -1;
            break;
        }
        left -= w;
    }
    double t1 = now();
    if (r == 0 && fsync(fd) < 0)
        r = -1;
    double t2 = now();
    close(fd);
    unlink(path);
    free(buf);
    double el = t2 - t0;
    printf("RESULT mode=fsyncref ok=%d bytes=%lld write_ms=%.2f fsync_ms=%.2f ms=%.2f mb_s=%.1f\n",
           r == 0 && left == 0, opt.bytes - left, (t1 - t0) * 1000, (t2 - t1) * 1000,
           el * 1000, el > 0 ? (opt.bytes - left) / el / 1e6 : 0);
    return r == 0 ? 0 : 1;
}

/* --------------------------------------------------------------- cryptref */

static struct {
    atomic_long count;
    double deadline;
    atomic_int bad;
} C;

/* The reference modes' loops: one more turn, unless the deadline has
 * passed or count has reached the count limit (-n). */
static int another_turn(atomic_long *count, double deadline)
{
    if (now() >= deadline)
        return 0;
    if (atomic_fetch_add(count, 1) >= opt.count) {
        atomic_fetch_sub(count, 1);
        return 0;
    }
    return 1;
}

/* --threads, or one thread per core, at most max. */
static int threads_wanted(int max)
{
    int nt = opt.threads > 0 ? opt.threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    return nt < 1 ? 1 : nt > max ? max : nt;
}

/* Runs fn(arg[i]) on nt threads (arg may be NULL); returns the seconds
 * from the first start to the last join. */
static double run_threads(int nt, void *(*fn)(void *), void *arg, size_t arg_size)
{
    pthread_t tid[MAX_CLIENTS];
    double t0 = now();
    for (int i = 0; i < nt; i++)
        if (pthread_create(&tid[i], NULL, fn, arg ? (char *)arg + i * arg_size : NULL) != 0)
            die("pthread_create failed");
    for (int i = 0; i < nt; i++)
        pthread_join(tid[i], NULL);
    return now() - t0;
}

static void *crypt_thread(void *arg)
{
    (void)arg;
    struct crypt_data *d = calloc(1, sizeof *d);
    if (!d)
        die("out of memory");
    while (another_turn(&C.count, C.deadline)) {
        const char *h = crypt_r("mpb-00-Secret", opt.setting, d);
        if (!h || h[0] == '*')
            atomic_store(&C.bad, 1);
    }
    free(d);
    return NULL;
}

static double crypt_run(int nt)
{
    atomic_store(&C.count, 0);
    C.deadline = now() + opt.secs;
    double el = run_threads(nt, crypt_thread, NULL, 0);
    return el > 0 ? atomic_load(&C.count) / el : 0;
}

static int mode_cryptref(void)
{
    int nt = threads_wanted(MAX_CLIENTS);
    double one = crypt_run(1);
    double all = crypt_run(nt);
    printf("RESULT mode=cryptref ok=%d threads=%d hps_1=%.1f hps_all=%.1f ms_per_hash=%.3f\n",
           !atomic_load(&C.bad), nt, one, all, one > 0 ? 1000 / one : 0);
    return atomic_load(&C.bad) ? 1 : 0;
}

/* ---------------------------------------------------------------- procref */

static struct {
    atomic_long count;
    double deadline;
    atomic_int bad;
} P;

static void *proc_thread(void *arg)
{
    (void)arg;
    while (another_turn(&P.count, P.deadline)) {
        pid_t pid = fork();
        if (pid == 0)
            _exit(0);
        int status;
        if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) {
            atomic_store(&P.bad, 1);
            break;
        }
    }
    return NULL;
}

static double cpu_secs(int who)
{
    struct rusage ru;
    if (getrusage(who, &ru) != 0)
        return 0;
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
           (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* Processes/s on all cores, and the CPU one costs (parent's and child's). */
static int mode_procref(void)
{
    int nt = threads_wanted(MAX_CLIENTS);
    double cpu0 = cpu_secs(RUSAGE_SELF) + cpu_secs(RUSAGE_CHILDREN);
    P.deadline = now() + opt.secs;
    double el = run_threads(nt, proc_thread, NULL, 0);
    double cpu = cpu_secs(RUSAGE_SELF) + cpu_secs(RUSAGE_CHILDREN) - cpu0;
    long n = atomic_load(&P.count);
    printf("RESULT mode=procref ok=%d threads=%d procs=%ld per_s=%.1f cpu_us=%.1f\n",
           !atomic_load(&P.bad) && n > 0, nt, n, el > 0 ? n / el : 0, n ? cpu * 1e6 / n : 0);
    return atomic_load(&P.bad) ? 1 : 0;
}

/* ---------------------------------------------------------------- passref */

struct pass_share {
    const unsigned char *from;
    size_t len;
    uint64_t sum;
};

static void *pass_thread(void *arg)
{
    struct pass_share *s = arg;
    uint64_t sum = 0, w;
    size_t i = 0;
    for (; i + 8 <= s->len; i += 8) {
        memcpy(&w, s->from + i, 8);
        sum ^= w;
    }
    for (; i < s->len; i++)
        sum ^= s->from[i];
    s->sum = sum;
    return NULL;
}

static int mode_passref(void)
{
    if (!opt.mbox)
        die("passref needs --mbox");
    int nt = threads_wanted(64);
    double t0 = now();
    int fd = open(opt.mbox, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0)
        die("%s: %s", opt.mbox, strerror(errno));
    if (st.st_size == 0)
        die("%s: empty", opt.mbox);
    size_t len = (size_t)st.st_size;
    unsigned char *map = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED)
        die("mmap %s: %s", opt.mbox, strerror(errno));
    close(fd);
    struct pass_share share[64];
    size_t per = len / (size_t)nt / 4096 * 4096, at = 0;
    for (int i = 0; i < nt; i++) {
        share[i].from = map + at;
        share[i].len = i == nt - 1 ? len - at : per;
        at += share[i].len;
    }
    run_threads(nt, pass_thread, share, sizeof share[0]);
    uint64_t sum = 0;
    for (int i = 0; i < nt; i++)
        sum ^= share[i].sum;
    munmap(map, len);
    double ms = (now() - t0) * 1000;
    printf("RESULT mode=passref ok=1 threads=%d bytes=%zu ms=%.2f gb_s=%.2f check=%llx\n", nt,
           len, ms, len / ms / 1e6, (unsigned long long)(sum & 0xff));
    return 0;
}

/* ------------------------------------------------------------------- idle */

struct proc {
    long pid, ppid;
    long pss, rss, hwm;   /* KiB */
    int in_tree, holds;
};

struct procs {
    struct proc *p;
    size_t n, cap;
};

static long read_kib(const char *path, const char *key)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return 0;
    char line[256];
    size_t kl = strlen(key);
    long v = 0;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, kl) == 0) {
            v = strtol(line + kl, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}

static struct proc *find_proc(struct procs *ps, long pid)
{
    for (size_t i = 0; i < ps->n; i++)
        if (ps->p[i].pid == pid)
            return &ps->p[i];
    return NULL;
}

/* The process tree under root (root included), with PSS/RSS/VmHWM. */
static void scan_tree(struct procs *ps, long root)
{
    ps->n = 0;
    DIR *d = opendir("/proc");
    if (!d)
        die("/proc: %s", strerror(errno));
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!isdigit((unsigned char)e->d_name[0]))
            continue;
        char path[300], buf[512];
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        FILE *f = fopen(path, "re");
        if (!f)
            continue;
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = '\0';
        char *rp = strrchr(buf, ')');
        long ppid;
        char st;
        if (!rp || sscanf(rp + 1, " %c %ld", &st, &ppid) != 2)
            continue;
        if (ps->n == ps->cap) {
            ps->cap = ps->cap ? ps->cap * 2 : 1024;
            ps->p = realloc(ps->p, ps->cap * sizeof *ps->p);
            if (!ps->p)
                die("out of memory");
        }
        struct proc *p = &ps->p[ps->n++];
        memset(p, 0, sizeof *p);
        p->pid = strtol(e->d_name, NULL, 10);
        p->ppid = ppid;
    }
    closedir(d);
    /* mark the tree: repeat until nothing changes (trees are shallow) */
    struct proc *r = find_proc(ps, root);
    if (!r)
        die("no process %ld", root);
    r->in_tree = 1;
    for (int changed = 1, rounds = 0; changed && rounds < 64; rounds++) {
        changed = 0;
        for (size_t i = 0; i < ps->n; i++) {
            if (ps->p[i].in_tree)
                continue;
            struct proc *pp = find_proc(ps, ps->p[i].ppid);
            if (pp && pp->in_tree) {
                ps->p[i].in_tree = 1;
                changed = 1;
            }
        }
    }
    size_t k = 0;
    for (size_t i = 0; i < ps->n; i++) {
        if (!ps->p[i].in_tree)
            continue;
        struct proc *p = &ps->p[i];
        char path[64];
        snprintf(path, sizeof path, "/proc/%ld/smaps_rollup", p->pid);
        p->pss = read_kib(path, "Pss:");
        p->rss = read_kib(path, "Rss:");
        snprintf(path, sizeof path, "/proc/%ld/status", p->pid);
        p->hwm = read_kib(path, "VmHWM:");
        ps->p[k++] = *p;
    }
    ps->n = k;
}

/* Inodes of the server ends of our connections, from /proc/net/tcp{,6}. */
static size_t server_inodes(struct conn *cs, int n, unsigned long *ino, size_t max)
{
    unsigned short sport = ntohs(opt.addr.ss_family == AF_INET
                                     ? ((struct sockaddr_in *)&opt.addr)->sin_port
                                     : ((struct sockaddr_in6 *)&opt.addr)->sin6_port);
    unsigned short *cport = calloc(n ? n : 1, sizeof *cport);
    if (!cport)
        die("out of memory");
    for (int i = 0; i < n; i++) {
        struct sockaddr_storage a;
        socklen_t al = sizeof a;
        if (cs[i].fd >= 0 && getsockname(cs[i].fd, (struct sockaddr *)&a, &al) == 0)
            cport[i] = ntohs(a.ss_family == AF_INET ? ((struct sockaddr_in *)&a)->sin_port
                                                    : ((struct sockaddr_in6 *)&a)->sin6_port);
    }
    size_t k = 0;
    const char *files[] = {"/proc/net/tcp", "/proc/net/tcp6"};
    for (int fi = 0; fi < 2; fi++) {
        FILE *f = fopen(files[fi], "re");
        if (!f)
            continue;
        char line[512];
        while (fgets(line, sizeof line, f) && k < max) {
            char loc[64], rem[64];
            unsigned long inode;
            if (sscanf(line, " %*s %63s %63s %*s %*s %*s %*s %*s %*s %lu", loc, rem, &inode) != 3)
                continue;
            char *lc = strrchr(loc, ':'), *rc = strrchr(rem, ':');
            if (!lc || !rc)
                continue;
            unsigned lp = strtoul(lc + 1, NULL, 16), rp = strtoul(rc + 1, NULL, 16);
            if (lp != sport || inode == 0)
                continue;
            for (int i = 0; i < n; i++)
                if (cport[i] && cport[i] == rp) {
                    ino[k++] = inode;
                    break;
                }
        }
        fclose(f);
    }
    free(cport);
    return k;
}

/* Marks the processes that hold one of the inodes, and their ancestors
 * below root: the processes that serve our sessions. */
static void mark_holders(struct procs *ps, long root, unsigned long *ino, size_t nino)
{
    for (size_t i = 0; i < ps->n; i++) {
        char dpath[64];
        snprintf(dpath, sizeof dpath, "/proc/%ld/fd", ps->p[i].pid);
        DIR *d = opendir(dpath);
        if (!d)
            continue;
        struct dirent *e;
        while ((e = readdir(d))) {
            char lpath[400], target[64];
            snprintf(lpath, sizeof lpath, "%s/%s", dpath, e->d_name);
            ssize_t l = readlink(lpath, target, sizeof target - 1);
            if (l <= 0)
                continue;
            target[l] = '\0';
            unsigned long v;
            if (sscanf(target, "socket:[%lu]", &v) != 1)
                continue;
            for (size_t j = 0; j < nino; j++)
                if (ino[j] == v)
                    ps->p[i].holds = 1;
        }
        closedir(d);
    }
    for (size_t i = 0; i < ps->n; i++) {
        if (ps->p[i].holds != 1)
            continue;
        struct proc *p = find_proc(ps, ps->p[i].ppid);
        for (int depth = 0; p && p->pid != root && depth < 64; depth++) {
            if (!p->holds)
                p->holds = 2;
            p = find_proc(ps, p->ppid);
        }
    }
}

static int mode_idle(void)
{
    int n = (int)opt.count;
    if (n < 1 || n > MAX_SESSIONS)
        die("-n must be 1..%d for idle", MAX_SESSIONS);
    if (opt.pid <= 0)
        die("idle needs -P SERVER_PID");
    struct procs before = {0}, during = {0};
    scan_tree(&before, opt.pid);
    struct conn *cs = calloc(n, sizeof *cs);
    if (!cs)
        die("out of memory");
    int ok = 0;
    char first_err[ERRLEN] = "";
    double t0 = now();
    for (int i = 0; i < n; i++) {
        conn_init(&cs[i], 1 << 16);
        cs[i].deadline = t0 + opt.secs + opt.timeout;
        long m;
        long long o;
        int r = pop_login(&cs[i], opt.first + i, &m, &o);
        long lines;
        if (r == 0 && opt.list)
            r = do_list(&cs[i], NULL, &lines);
        if (r == 0 && opt.uidl) {
            r = conn_cmd(&cs[i], "UIDL\r\n", "UIDL", NULL);
            if (r == 0)
                r = read_lines(&cs[i], &lines, NULL, NULL);
        }
        if (r == 0)
            ok++;
        else {
            if (!first_err[0])
                snprintf(first_err, sizeof first_err, "%s", cs[i].err);
            conn_close(&cs[i]);
        }
    }
    double t_open = now() - t0;
    struct timespec ts = {(time_t)opt.settle, (long)((opt.settle - (time_t)opt.settle) * 1e9)};
    nanosleep(&ts, NULL);
    scan_tree(&during, opt.pid);
    unsigned long *ino = calloc(n * 2 + 1, sizeof *ino);
    if (!ino)
        die("out of memory");
    size_t nino = server_inodes(cs, n, ino, n * 2);
    mark_holders(&during, opt.pid, ino, nino);
    long pss_b = 0, rss_b = 0, pss_d = 0, rss_d = 0;
    long cpss = 0, crss = 0, chwm = 0, cprocs = 0;
    for (size_t i = 0; i < before.n; i++) {
        pss_b += before.p[i].pss;
        rss_b += before.p[i].rss;
    }
    for (size_t i = 0; i < during.n; i++) {
        struct proc *p = &during.p[i];
        pss_d += p->pss;
        rss_d += p->rss;
        if (p->holds) {
            cprocs++;
            cpss += p->pss;
            crss += p->rss;
            if (p->hwm > chwm)
                chwm = p->hwm;
        }
    }
    if (opt.hold > 0) {
        struct timespec h = {(time_t)opt.hold, (long)((opt.hold - (time_t)opt.hold) * 1e9)};
        nanosleep(&h, NULL);
    }
    for (int i = 0; i < n; i++) {
        if (cs[i].fd >= 0) {
            cs[i].deadline = now() + opt.timeout;
            pop_quit(&cs[i]);
        }
        conn_free(&cs[i]);
    }
    int d = ok > 0 ? ok : 1;
    printf("RESULT mode=idle ok=%d sessions=%d sessions_ok=%d open_secs=%.3f procs_before=%zu procs_during=%zu "
           "pss_before_kib=%ld pss_during_kib=%ld rss_before_kib=%ld rss_during_kib=%ld "
           "pss_per_session_kib=%.1f rss_per_session_kib=%.1f conn_procs=%ld "
           "conn_pss_per_session_kib=%.1f conn_rss_per_session_kib=%.1f conn_hwm_max_kib=%ld",
           ok == n, n, ok, t_open, before.n, during.n, pss_b, pss_d, rss_b, rss_d,
           (double)(pss_d - pss_b) / d, (double)(rss_d - rss_b) / d, cprocs,
           (double)cpss / d, (double)crss / d, chwm);
    if (first_err[0])
        print_err(first_err);
    putchar('\n');
    free(ino);
    free(cs);
    free(before.p);
    free(during.p);
    return ok == n ? 0 : 1;
}

/* ------------------------------------------------------------------- main */

static void usage(void)
{
    fputs("usage: popload MODE [ADDRESS:PORT] [options]\n"
          "modes: login open retr loopref dele fsyncref cryptref procref passref idle\n"
          "  -c N        clients (login)                    -t SECS  time limit (10)\n"
          "  -n N        count limit: logins, sessions (idle), hashes\n"
          "  -u FMT      user name format (mpbench%02d)     -w FMT   password format\n"
          "  -f N        first account number (1)           -m N     one message\n"
          "  --from N --to N  message range (retr)          --all    DELE every message\n"
          "  --list --uidl    also LIST / UIDL (open, idle) -P PID   server root (idle)\n"
          "  --settle S  wait before measuring (idle, 0.5)  --hold S keep sessions open\n"
          "  --dir D     directory (fsyncref)               -b N     bytes (fsyncref, loopref)\n"
          "  --mbox F    message file (loopref, passref)    --setting S  crypt setting\n"
          "  --threads N (cryptref, procref, passref; default: cores)\n"
          "  --timeout S  per wait (60)\n",
          stderr);
    exit(2);
}

static long num(const char *s, long lo, long hi, const char *what)
{
    char *e;
    errno = 0;
    long v = strtol(s, &e, 10);
    if (errno || *e || e == s || v < lo || v > hi)
        die("bad %s: %s", what, s);
    return v;
}

static double fnum(const char *s, const char *what)
{
    char *e;
    double v = strtod(s, &e);
    if (*e || e == s || v < 0 || v > 86400)
        die("bad %s: %s", what, s);
    return v;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        usage();
    opt.mode = argv[1];
    int ai = 2;
    if (argc > 2 && argv[2][0] != '-') {
        parse_addr(argv[2]);
        ai = 3;
    }
    enum { O_FROM = 256, O_TO, O_ALL, O_LIST, O_UIDL, O_HOLD, O_SETTLE, O_DIR, O_MBOX,
           O_SETTING, O_TIMEOUT, O_THREADS };
    static const struct option lo[] = {
        {"from", 1, 0, O_FROM},       {"to", 1, 0, O_TO},         {"all", 0, 0, O_ALL},
        {"list", 0, 0, O_LIST},       {"uidl", 0, 0, O_UIDL},     {"hold", 1, 0, O_HOLD},
        {"settle", 1, 0, O_SETTLE},   {"dir", 1, 0, O_DIR},       {"mbox", 1, 0, O_MBOX},
        {"setting", 1, 0, O_SETTING}, {"timeout", 1, 0, O_TIMEOUT},
        {"threads", 1, 0, O_THREADS}, {0, 0, 0, 0}};
    optind = ai;
    int ch;
    while ((ch = getopt_long(argc, argv, "c:t:n:u:w:f:m:P:b:", lo, NULL)) != -1) {
        switch (ch) {
        case 'c': opt.clients = (int)num(optarg, 1, MAX_CLIENTS, "-c"); break;
        case 't': opt.secs = fnum(optarg, "-t"); break;
        case 'n': opt.count = num(optarg, 0, 1000000000L, "-n"); break;
        case 'u': opt.userfmt = optarg; break;
        case 'w': opt.passfmt = optarg; break;
        case 'f': opt.first = (int)num(optarg, 0, 1000000, "-f"); break;
        case 'm': opt.msg = num(optarg, 1, 1000000000L, "-m"); break;
        case 'P': opt.pid = num(optarg, 1, 1L << 30, "-P"); break;
        case 'b': {
            char *e;
            opt.bytes = strtoll(optarg, &e, 10);
            if (*e || opt.bytes < 0)
                die("bad -b: %s", optarg);
            break;
        }
        case O_FROM: opt.from = num(optarg, 1, 1000000000L, "--from"); break;
        case O_TO: opt.to = num(optarg, 1, 1000000000L, "--to"); break;
        case O_ALL: opt.all = 1; break;
        case O_LIST: opt.list = 1; break;
        case O_UIDL: opt.uidl = 1; break;
        case O_HOLD: opt.hold = fnum(optarg, "--hold"); break;
        case O_SETTLE: opt.settle = fnum(optarg, "--settle"); break;
        case O_DIR: opt.dir = optarg; break;
        case O_MBOX: opt.mbox = optarg; break;
        case O_SETTING: opt.setting = optarg; break;
        case O_TIMEOUT: opt.timeout = fnum(optarg, "--timeout"); break;
        case O_THREADS: opt.threads = (int)num(optarg, 1, MAX_CLIENTS, "--threads"); break;
        default: usage();
        }
    }
    if (optind != argc)
        usage();
    if (opt.timeout <= 0)
        opt.timeout = 1;
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);

    const char *m = opt.mode;
    int needs_addr = strcmp(m, "loopref") && strcmp(m, "fsyncref") && strcmp(m, "cryptref") &&
                     strcmp(m, "procref") && strcmp(m, "passref");
    if (needs_addr && !opt.have_addr)
        die("mode %s needs ADDRESS:PORT (127.0.0.0/8 or [::1])", m);
    if (!strcmp(m, "login"))
        return mode_login();
    if (!strcmp(m, "open"))
        return mode_open();
    if (!strcmp(m, "retr"))
        return mode_retr();
    if (!strcmp(m, "loopref"))
        return mode_loopref();
    if (!strcmp(m, "dele"))
        return mode_dele();
    if (!strcmp(m, "fsyncref"))
        return mode_fsyncref();
    if (!strcmp(m, "cryptref"))
        return mode_cryptref();
    if (!strcmp(m, "procref"))
        return mode_procref();
    if (!strcmp(m, "passref"))
        return mode_passref();
    if (!strcmp(m, "idle"))
        return mode_idle();
    usage();
}

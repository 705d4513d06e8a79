/* Unit tests: the bounded line reader, the buffered writer and the
 * multi-line writer (netio.h), over socketpairs. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "testlib.h"
#include "netio.h"
#include "util.h"

/* ---- helpers ---- */

struct pair {
    int peer;           /* the test's end */
    int fd;             /* netio's end */
    struct netio io;
};

static int pair_open(struct pair *p, unsigned timeout)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) {
        perror("socketpair");
        return -1;
    }
    p->peer = sv[0];
    p->fd = sv[1];
    if (netio_init(&p->io, p->fd, p->fd, timeout) != 0) {
        close(sv[0]);
        close(sv[1]);
        return -1;
    }
    return 0;
}

static void pair_close(struct pair *p)
{
    netio_free(&p->io);
    if (p->peer >= 0)
        close(p->peer);
    close(p->fd);
}

static void peer_send(struct pair *p, const void *data, size_t len)
{
    CHECK(write_all(p->peer, data, len) == 0);
}

static void peer_sends(struct pair *p, const char *s)
{
    peer_send(p, s, strlen(s));
}

/* Reads everything currently queued at the peer (flush has completed, so
 * all of it is there). */
static size_t peer_drain(struct pair *p, char *buf, size_t cap)
{
    size_t got = 0;
    for (;;) {
        if (got == cap)
            break;
        ssize_t n = recv(p->peer, buf + got, cap - got, MSG_DONTWAIT);
        if (n > 0) {
            got += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        break;
    }
    return got;
}

static void check_line(struct netio *io, const char *want, int lineno)
{
    char line[NETIO_MAX_LINE + 1];
    size_t len = 9999;
    enum netio_status st = netio_read_line(io, line, sizeof line, &len);
    if (st != NETIO_OK) {
        tl_current_failed = 1;
        printf("  %s:%d: %s: netio_read_line = %d, expected NETIO_OK with \"%s\"\n",
               __FILE__, lineno, tl_current, (int)st, want);
        return;
    }
    tl_check_mem(__FILE__, lineno, line, len, want, strlen(want));
    if (line[len] != '\0') {
        tl_current_failed = 1;
        printf("  %s:%d: %s: line not NUL-terminated\n", __FILE__, lineno, tl_current);
    }
}
#define CHECK_LINE(io, want) check_line((io), (want), __LINE__)

static enum netio_status read_status(struct netio *io)
{
    char line[NETIO_MAX_LINE + 1];
    size_t len;
    return netio_read_line(io, line, sizeof line, &len);
}

static double now_s(void)
{
    return (double)now_ms() / 1000.0;
}

/* ---- line input ---- */

static size_t pending_len(const struct netio *io)
{
    size_t n;
    netio_pending(io, &n);
    return n;
}

TEST(reads_crlf_and_bare_lf_lines)
{
    struct pair p;
    if (pair_open(&p, 5) != 0)
        SKIP("socketpair");
    peer_sends(&p, "USER alice\r\n");
    CHECK_LINE(&p.io, "USER alice");
    peer_sends(&p, "PASS x y\n");
    CHECK_LINE(&p.io, "PASS x y");
    peer_sends(&p, "\r\n\n");
    CHECK_LINE(&p.io, "");
    CHECK_LINE(&p.io, "");
    /* a CR not before the LF stays in the line; only the last CR goes */
    peer_sends(&p, "a\rb\r\r\n");
    CHECK_LINE(&p.io, "a\rb\r");
    pair_close(&p);
}

TEST(pipelined_lines_come_one_by_one)
{
    struct pair p;
    if (pair_open(&p, 5) != 0)
        SKIP("socketpair");
    CHECK(!netio_line_pending(&p.io));
    CHECK_EQ(pending_len(&p.io), 0);
    peer_sends(&p, "USER a\r\nPASS b\nSTAT\r\nLIST\r\nRE");
    CHECK_LINE(&p.io, "USER a");
    CHECK(netio_line_pending(&p.io));
    CHECK_EQ(pending_len(&p.io), strlen("PASS b\nSTAT\r\nLIST\r\nRE"));
    CHECK_LINE(&p.io, "PASS b");
    CHECK(netio_line_pending(&p.io));
    CHECK_LINE(&p.io, "STAT");
    CHECK(netio_line_pending(&p.io));
    CHECK_LINE(&p.io, "LIST");
    CHECK(!netio_line_pending(&p.io));
    CHECK_EQ(pending_len(&p.io), 2);
    peer_sends(&p, "TR 1\r\n");
    CHECK_LINE(&p.io, "RETR 1");
    CHECK(!netio_line_pending(&p.io));
    CHECK_EQ(pending_len(&p.io), 0);
    pair_close(&p);
}

TEST(line_of_253_chars_is_accepted)
{
    struct pair p;
    if (pair_open(&p, 5) != 0)
        SKIP("socketpair");
    char buf[600];
    memset(buf, 'a', 253);
    memcpy(buf + 253, "\r\n", 2);
    peer_send(&p, buf, 255);
    char line[NETIO_MAX_LINE + 1];
    size_t len = 0;
    CHECK_EQ(netio_read_line(&p.io, line, sizeof line, &len), NETIO_OK);
    CHECK_EQ(len, 253);
    CHECK_MEM(line, len, buf, 253);
    /* the same with a bare LF */
    memset(buf, 'b', 253);
    buf[253] = '\n';
    peer_send(&p, buf, 254);
    CHECK_EQ(netio_read_line(&p.io, line, sizeof line, &len), NETIO_OK);
    CHECK_EQ(len, 253);
    pair_close(&p);
}

TEST(line_of_254_chars_is_too_long_and_next_line_is_intact)
{
    struct pair p;
    if (pair_open(&p, 5) != 0)
        SKIP("socketpair");
    char buf[600];
    memset(buf, 'a', 254);
    memcpy(buf + 254, "\r\nNOOP\r\n", 8);
    peer_send(&p, buf, 262);
    CHECK_EQ(read_status(&p.io), NETIO_TOO_LONG);
    CHECK_LINE(&p.io, "NOOP");
    /* well over the limit, but within one buffer */
    memset(buf, 'c', 500);
    memcpy(buf + 500, "\nSTAT\r\n", 7);
    peer_send(&p, buf, 507);
    CHECK_EQ(read_status(&p.io), NETIO_TOO_LONG);
    CHECK_LINE(&p.io, "STAT");
    pair_close(&p);
}

TEST(over_long_line_rest_is_discarded)
{
    struct pair p;
    if (pair_open(&p, 5) != 0)
        SKIP("socketpair");
    size_t n = 10 * 1024;
    char *big = malloc(n);
    CHECK(big != NULL);
    if (big == NULL) {
        pair_close(&p);
        return;
    }
    for (size_t i = 0; i < n; i++)
        big[i] = (char)('A' + i % 26);
    peer_send(&p, big, n);
    peer_sends(&p, "\n");
    peer_sends(&p, "NOOP\r\n");
    CHECK_EQ(read_status(&p.io), NETIO_TOO_LONG);
    CHECK_LINE(&p.io, "NOOP");
    /* and again, with CRLF and a pipelined pair after it */
    peer_send(&p, big, n);
    peer_sends(&p, "\r\nUSER x\r\nQUIT\r\n");
    CHECK_EQ(read_status(&p.io), NETIO_TOO_LONG);
    CHECK_LINE(&p.io, "USER x");
    CHECK_LINE(&p.io, "QUIT");
    /* EOF after the rest: nothing more */
    shutdown(p.peer, SHUT_WR);
    CHECK_EQ(read_status(&p.io), NETIO_EOF);
    free(big);
    pair_close(&p);
}

/* Writes the pieces with pauses, so the reader sees them in separate reads. */
struct slow_writer {
    int fd;
    const char *const *pieces;
    size_t count;
    int delay_ms;
};

static void *slow_writer_main(void *arg)
{
    struct slow_writer *w = arg;
    for (size_t i = 0; i < w->count; i++) {
        struct timespec ts = { 0, w->delay_ms * 1000000L };
        nanosleep(&ts, NULL);
        if (write_all(w->fd, w->pieces[i], strlen(w->pieces[i])) != 0)
            break;
    }
    return NULL;
}

TEST(over_long_line_arriving_in_pieces)
{
    struct pair p;
    if (pair_open(&p, 5) != 0)
        SKIP("socketpair");
    static char a200[201], b300[301], c253[254], d254[255];
    memset(a200, 'a', 200);
    memset(b300, 'b', 300);
    memset(c253, 'c', 253);
    memset(d254, 'd', 254);
    const char *pieces[] = {
        a200, a200, b300, "\r", "\n", "NOOP\r\n",   /* 700 chars in pieces: too long */
        c253, "\r", "\n",                           /* 253 + CRLF split: fine */
        d254, "\r", "\nSTAT\r\n",                   /* 254 + CRLF split: too long */
        a200, "\r\n",                               /* 200 then CRLF: fine */
    };
    struct slow_writer w = { p.peer, pieces, sizeof pieces / sizeof pieces[0], 20 };
    pthread_t t;
    CHECK(pthread_create(&t, NULL, slow_writer_main, &w) == 0);
    CHECK_EQ(read_status(&p.io), NETIO_TOO_LONG);
    CHECK_LINE(&p.io, "NOOP");
    CHECK_LINE(&p.io, c253);
    CHECK_EQ(read_status(&p.io), NETIO_TOO_LONG);
    CHECK_LINE(&p.io, "STAT");
    CHECK_LINE(&p.io, a200);
    pthread_join(t, NULL);
    pair_close(&p);
}

TEST(eof_and_partial_last_line)
{
    struct pair p;
    if (pair_open(&p, 5) != 0)
        SKIP("socketpair");
    peer_sends(&p, "QUIT\r\nNOO");
    shutdown(p.peer, SHUT_WR);
    CHECK_LINE(&p.io, "QUIT");
    CHECK_EQ(read_status(&p.io), NETIO_EOF);
    CHECK_EQ(read_status(&p.io), NETIO_EOF);
    pair_close(&p);

    if (pair_open(&p, 5) != 0)
        SKIP("socketpair");
    close(p.peer);
    p.peer = -1;
    CHECK_EQ(read_status(&p.io), NETIO_EOF);
    pair_close(&p);
}

TEST(timeout_is_bounded)
{
    struct pair p;
    if (pair_open(&p, 1) != 0)
        SKIP("socketpair");
    double t0 = now_s();
    CHECK_EQ(read_status(&p.io), NETIO_TIMEOUT);
    double dt = now_s() - t0;
    CHECK(dt >= 0.9);
    CHECK(dt < 3.0);
    /* a partial line does not reset the verdict into a hang either */
    peer_sends(&p, "NOO");
    t0 = now_s();
    CHECK_EQ(read_status(&p.io), NETIO_TIMEOUT);
    dt = now_s() - t0;
    CHECK(dt >= 0.9);
    CHECK(dt < 3.0);
    pair_close(&p);
}

TEST(stop_flag_interrupts_read)
{
    struct pair p;
    if (pair_open(&p, 5) != 0)
        SKIP("socketpair");
    static volatile sig_atomic_t stop = 1;
    p.io.stop_flag = &stop;
    double t0 = now_s();
    CHECK_EQ(read_status(&p.io), NETIO_INTERRUPTED);
    CHECK(now_s() - t0 < 1.0);
    /* cleared again: reading goes on */
    peer_sends(&p, "NOOP\r\n");
    stop = 0;
    CHECK_LINE(&p.io, "NOOP");
    pair_close(&p);
}

TEST(nul_inside_a_line_is_kept)
{
    struct pair p;
    if (pair_open(&p, 5) != 0)
        SKIP("socketpair");
    static const char in[] = "US\0ER x\r\n\0\n";
    peer_send(&p, in, sizeof in - 1);
    char line[NETIO_MAX_LINE + 1];
    size_t len = 0;
    CHECK_EQ(netio_read_line(&p.io, line, sizeof line, &len), NETIO_OK);
    CHECK_EQ(len, 7);
    CHECK_MEM(line, len, "US\0ER x", 7);
    CHECK_EQ(netio_read_line(&p.io, line, sizeof line, &len), NETIO_OK);
    CHECK_EQ(len, 1);
    CHECK_EQ(line[0], 0);
    pair_close(&p);
}

/* ---- output ---- */

TEST(output_is_buffered_until_flush)
{
    struct pair p;
    if (pair_open(&p, 5) != 0)
        SKIP("socketpair");
    char buf[256];
    netio_write(&p.io, "+OK hello\r\n", 11);
    netio_printf(&p.io, "+OK %d %s\r\n", 2, "msgs");
    CHECK_EQ(peer_drain(&p, buf, sizeof buf), 0);   /* nothing sent yet */
    CHECK_EQ(p.io.bytes_out, 0);
    CHECK_EQ(netio_flush(&p.io), 0);
    size_t n = peer_drain(&p, buf, sizeof buf);
    CHECK_MEM(buf, n, "+OK hello\r\n+OK 2 msgs\r\n", 23);
    CHECK_EQ(p.io.bytes_out, 23);
    CHECK_EQ(p.io.out_len, 0);
    /* an empty flush is fine */
    CHECK_EQ(netio_flush(&p.io), 0);
    CHECK_EQ(peer_drain(&p, buf, sizeof buf), 0);
    pair_close(&p);
}

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

TEST(large_output_streams_through_small_buffer)
{
    struct pair p;
    if (pair_open(&p, 5) != 0)
        SKIP("socketpair");
    size_t n = 3 * 1024 * 1024 + 17;
    char *src = malloc(n), *dst = malloc(n + 1);
    CHECK(src != NULL && dst != NULL);
    if (src == NULL || dst == NULL) {
        free(src);
        free(dst);
        pair_close(&p);
        return;
    }
    for (size_t i = 0; i < n; i++)
        src[i] = (char)(i * 7 + i / 251);
    struct reader r = { p.peer, dst, n + 1, 0 };
    pthread_t t;
    CHECK(pthread_create(&t, NULL, reader_main, &r) == 0);
    for (size_t off = 0; off < n; off += 100000)
        netio_write(&p.io, src + off, n - off < 100000 ? n - off : 100000);
    /* memory does not grow with the reply */
    CHECK(p.io.out_cap <= NETIO_OUT_CHUNK);
    CHECK(p.io.bytes_out > 0);
    CHECK_EQ(netio_flush(&p.io), 0);
    CHECK_EQ(p.io.bytes_out, n);
    shutdown(p.fd, SHUT_WR);
    pthread_join(t, NULL);
    CHECK_EQ(r.got, n);
    CHECK(r.got == n && memcmp(src, dst, n) == 0);
    free(src);
    free(dst);
    pair_close(&p);
}

TEST(write_errors_are_sticky)
{
    struct pair p;
    if (pair_open(&p, 2) != 0)
        SKIP("socketpair");
    close(p.peer);
    p.peer = -1;
    netio_write(&p.io, "+OK\r\n", 5);
    CHECK_EQ(netio_flush(&p.io), -1);
    CHECK(p.io.write_failed);
    netio_write(&p.io, "+OK\r\n", 5);
    CHECK_EQ(p.io.out_len, 0);
    CHECK_EQ(netio_flush(&p.io), -1);
    pair_close(&p);
}

/* ---- multi-line writer ---- */

static char mlw_out[1 << 16];

/* Runs data through mlw_data in the given chunk lengths (the rest as one
 * more chunk), then mlw_end; returns the bytes that reached the peer. */
static size_t mlw_run(struct pair *p, const char *data, size_t len, const size_t *chunks,
                      size_t nchunks, uint64_t *lines_left, size_t *consumed)
{
    struct mlwriter w;
    mlw_begin(&w, &p->io);
    size_t off = 0, used = 0;
    for (size_t i = 0; i <= nchunks && off <= len; i++) {
        size_t take = i < nchunks ? chunks[i] : len - off;
        if (take > len - off)
            take = len - off;
        used += mlw_data(&w, data + off, take, lines_left);
        off += take;
    }
    mlw_end(&w);
    if (consumed)
        *consumed = used;
    if (netio_flush(&p->io) != 0)
        return (size_t)-1;
    return peer_drain(p, mlw_out, sizeof mlw_out);
}

static void check_mlw(struct pair *p, const char *in, const char *want, int lineno)
{
    size_t n = mlw_run(p, in, strlen(in), NULL, 0, NULL, NULL);
    tl_check_mem(__FILE__, lineno, mlw_out, n, want, strlen(want));
    /* and byte by byte */
    size_t ones[512];
    size_t len = strlen(in);
    for (size_t i = 0; i < len && i < 512; i++)
        ones[i] = 1;
    n = mlw_run(p, in, len, ones, len < 512 ? len : 512, NULL, NULL);
    tl_check_mem(__FILE__, lineno, mlw_out, n, want, strlen(want));
}
#define CHECK_MLW(p, in, want) check_mlw((p), (in), (want), __LINE__)

TEST(mlw_converts_lf_and_keeps_crlf)
{
    struct pair p;
    if (pair_open(&p, 5) != 0)
        SKIP("socketpair");
    CHECK_MLW(&p, "a\nb\n", "a\r\nb\r\n.\r\n");
    CHECK_MLW(&p, "a\r\nb\r\n", "a\r\nb\r\n.\r\n");
    CHECK_MLW(&p, "a\r\nb\nc\r\n", "a\r\nb\r\nc\r\n.\r\n");
    CHECK_MLW(&p, "\n\n", "\r\n\r\n.\r\n");
    CHECK_MLW(&p, "", ".\r\n");
    CHECK_MLW(&p, "x\ry\n", "x\ry\r\n.\r\n");
    pair_close(&p);
}

TEST(mlw_dot_stuffing)
{
    struct pair p;
    if (pair_open(&p, 5) != 0)
        SKIP("socketpair");
    CHECK_MLW(&p, ".\n", "..\r\n.\r\n");
    CHECK_MLW(&p, ".x\n..\nx.y\n.", "..x\r\n...\r\nx.y\r\n..\r\n.\r\n");
    CHECK_MLW(&p, "a\r\n.\r\nb\r\n", "a\r\n..\r\nb\r\n.\r\n");
    CHECK_MLW(&p, " .a\n", " .a\r\n.\r\n");
    pair_close(&p);
}

TEST(mlw_unterminated_last_line)
{
    struct pair p;
    if (pair_open(&p, 5) != 0)
        SKIP("socketpair");
    CHECK_MLW(&p, "abc", "abc\r\n.\r\n");
    CHECK_MLW(&p, "a\nabc", "a\r\nabc\r\n.\r\n");
    CHECK_MLW(&p, ".", "..\r\n.\r\n");
    pair_close(&p);
}

TEST(mlw_chunk_splits)
{
    struct pair p;
    if (pair_open(&p, 5) != 0)
        SKIP("socketpair");
    size_t n;
    /* split between CR and LF: not doubled */
    const size_t s1[] = { 3 };
    n = mlw_run(&p, "ab\r\ncd\n", 7, s1, 1, NULL, NULL);
    CHECK_MEM(mlw_out, n, "ab\r\ncd\r\n.\r\n", 11);
    /* a chunk that is only the CR, then only the LF */
    const size_t s1b[] = { 2, 1, 1 };
    n = mlw_run(&p, "ab\r\ncd\n", 7, s1b, 3, NULL, NULL);
    CHECK_MEM(mlw_out, n, "ab\r\ncd\r\n.\r\n", 11);
    /* '.' at the start of a chunk that is a line start: stuffed */
    const size_t s2[] = { 3 };
    n = mlw_run(&p, "ab\n.c\n", 6, s2, 1, NULL, NULL);
    CHECK_MEM(mlw_out, n, "ab\r\n..c\r\n.\r\n", 12);
    /* '.' at the start of a chunk that is not a line start: not stuffed */
    const size_t s3[] = { 2 };
    n = mlw_run(&p, "ab.c\n", 5, s3, 1, NULL, NULL);
    CHECK_MEM(mlw_out, n, "ab.c\r\n.\r\n", 9);
    /* CR at the end of one chunk, something other than LF next */
    const size_t s4[] = { 2 };
    n = mlw_run(&p, "a\rb\n", 4, s4, 1, NULL, NULL);
    CHECK_MEM(mlw_out, n, "a\rb\r\n.\r\n", 8);
    /* a CRLF-ended chunk, then a LF-only chunk */
    const size_t s5[] = { 3 };
    n = mlw_run(&p, "a\r\n\n", 4, s5, 1, NULL, NULL);
    CHECK_MEM(mlw_out, n, "a\r\n\r\n.\r\n", 8);
    /* empty chunks change nothing */
    const size_t s6[] = { 0, 2, 0, 0, 1 };
    n = mlw_run(&p, "ab\n.c\n", 6, s6, 5, NULL, NULL);
    CHECK_MEM(mlw_out, n, "ab\r\n..c\r\n.\r\n", 12);

    /* every single split of a tricky string gives the unsplit output */
    const char *in = ".a\r\n\r\n.\n\r.b\nc\r\r\n..\r";
    size_t len = strlen(in);
    char want[256];
    size_t wn = mlw_run(&p, in, len, NULL, 0, NULL, NULL);
    memcpy(want, mlw_out, wn);
    static const char expect[] = "..a\r\n\r\n..\r\n\r.b\r\nc\r\r\n...\r\r\n.\r\n";
    CHECK_MEM(want, wn, expect, sizeof expect - 1);
    for (size_t a = 0; a <= len; a++) {
        n = mlw_run(&p, in, len, &a, 1, NULL, NULL);
        CHECK_MEM(mlw_out, n, want, wn);
        for (size_t b = 0; a + b <= len; b++) {
            size_t two[2] = { a, b };
            n = mlw_run(&p, in, len, two, 2, NULL, NULL);
            CHECK_MEM(mlw_out, n, want, wn);
        }
    }
    pair_close(&p);
}

/* RFC 1939 section 3 as a model of the multi-line writer: every line end
 * is CR LF (a CR already before the LF is kept), a line that begins with
 * '.' gets another, an unterminated last line is ended, then ".\r\n". */
static size_t mlw_model(const char *in, size_t len, char *out)
{
    size_t o = 0;
    int line_start = 1;
    for (size_t i = 0; i < len; i++) {
        if (line_start && in[i] == '.')
            out[o++] = '.';
        if (in[i] == '\n' && !(i > 0 && in[i - 1] == '\r'))
            out[o++] = '\r';
        out[o++] = in[i];
        line_start = in[i] == '\n';
    }
    if (!line_start) {
        out[o++] = '\r';
        out[o++] = '\n';
    }
    memcpy(out + o, ".\r\n", 3);
    return o + 3;
}

/* Mail-like text: lines of 0 to 3 * line_max bytes, some starting with
 * '.', some ending in CR LF, a few bare CRs; line_max 0 gives runs of
 * the rarer bytes alone. */
static void mlw_random_text(char *buf, size_t len, unsigned line_max)
{
    static const char rare[] = ".\r\n";
    size_t i = 0;
    while (i < len) {
        if (line_max == 0) {
            buf[i++] = rare[tl_rand() % 3];
            continue;
        }
        size_t n = tl_rand() % (3 * line_max + 1);
        if (tl_rand() % 4 == 0 && i < len)
            buf[i++] = '.';
        for (size_t k = 0; k < n && i < len; k++)
            buf[i++] = tl_rand() % 50 == 0 ? '\r' : (char)('a' + tl_rand() % 26);
        if (tl_rand() % 3 == 0 && i < len)
            buf[i++] = '\r';
        if (i < len)
            buf[i++] = '\n';
    }
}

/* RETR (no line limit) and TOP with a limit above the line count both
 * give the model's bytes, for text cut into chunks anywhere. */
TEST(mlw_matches_the_model_on_random_text)
{
    struct pair p;
    if (pair_open(&p, 5) != 0)
        SKIP("socketpair");
    enum { MAX_IN = 3000 };
    static char in[MAX_IN], want[3 * MAX_IN + 8];
    static const unsigned line_max[] = { 0, 2, 20, 80, 400 };
    for (int round = 0; round < 400; round++) {
        size_t len = tl_rand() % MAX_IN;
        mlw_random_text(in, len, line_max[round % 5]);
        size_t wn = mlw_model(in, len, want);
        size_t chunks[8];
        size_t nchunks = round % 3 == 0 ? 0 : 1 + tl_rand() % 7;
        for (size_t c = 0; c < nchunks; c++)
            chunks[c] = tl_rand() % (len / 2 + 2);
        size_t n = mlw_run(&p, in, len, chunks, nchunks, NULL, NULL);
        CHECK_MEM(mlw_out, n, want, wn);
        uint64_t left = len + 1, used;
        n = mlw_run(&p, in, len, chunks, nchunks, &left, &used);
        CHECK_MEM(mlw_out, n, want, wn);
        CHECK_EQ(used, len);
    }
    pair_close(&p);
}

/* A reply far bigger than the output buffer: the writer flushes as it
 * goes and loses nothing at the buffer's edges. */
TEST(mlw_streams_a_big_message_through_the_buffer)
{
    struct pair p;
    if (pair_open(&p, 5) != 0)
        SKIP("socketpair");
    size_t len = 1500 * 1000 + 7;
    char *in = malloc(len), *want = malloc(2 * len + 8), *got = malloc(2 * len + 8);
    CHECK(in != NULL && want != NULL && got != NULL);
    if (in == NULL || want == NULL || got == NULL) {
        free(in);
        free(want);
        free(got);
        pair_close(&p);
        return;
    }
    mlw_random_text(in, len, 76);
    size_t wn = mlw_model(in, len, want);
    struct reader r = { p.peer, got, 2 * len + 8, 0 };
    pthread_t t;
    CHECK(pthread_create(&t, NULL, reader_main, &r) == 0);
    struct mlwriter w;
    mlw_begin(&w, &p.io);
    for (size_t off = 0; off < len; off += 128 * 1024)
        mlw_data(&w, in + off, len - off < 128 * 1024 ? len - off : 128 * 1024, NULL);
    mlw_end(&w);
    CHECK_EQ(netio_flush(&p.io), 0);
    shutdown(p.fd, SHUT_WR);        /* a short reply ends the reader too */
    pthread_join(t, NULL);
    CHECK_MEM(got, r.got, want, wn);
    free(in);
    free(want);
    free(got);
    pair_close(&p);
}

TEST(mlw_lines_left_limits_output)
{
    struct pair p;
    if (pair_open(&p, 5) != 0)
        SKIP("socketpair");
    const char *body = "b1\r\n.b2\nb3\nb4";
    size_t len = strlen(body), used;
    uint64_t left;

    left = 2;
    size_t n = mlw_run(&p, body, len, NULL, 0, &left, &used);
    CHECK_MEM(mlw_out, n, "b1\r\n..b2\r\n.\r\n", 13);
    CHECK_EQ(left, 0);
    CHECK_EQ(used, 8);

    left = 0;
    n = mlw_run(&p, body, len, NULL, 0, &left, &used);
    CHECK_MEM(mlw_out, n, ".\r\n", 3);
    CHECK_EQ(used, 0);
    CHECK_EQ(left, 0);

    left = 3;
    n = mlw_run(&p, body, len, NULL, 0, &left, &used);
    CHECK_MEM(mlw_out, n, "b1\r\n..b2\r\nb3\r\n.\r\n", 17);
    CHECK_EQ(used, 11);

    /* more lines than there are: all, unterminated last line included */
    left = 10;
    n = mlw_run(&p, body, len, NULL, 0, &left, &used);
    CHECK_MEM(mlw_out, n, "b1\r\n..b2\r\nb3\r\nb4\r\n.\r\n", 21);
    CHECK_EQ(used, len);
    CHECK_EQ(left, 7);

    /* the count carries across chunks, also when a CRLF is split */
    const size_t splits[] = { 3, 1, 2, 3 };
    left = 2;
    n = mlw_run(&p, body, len, splits, 4, &left, &used);
    CHECK_MEM(mlw_out, n, "b1\r\n..b2\r\n.\r\n", 13);
    CHECK_EQ(used, 8);
    CHECK_EQ(left, 0);
    pair_close(&p);
}

TEST(wire_size_counts_crlf)
{
    CHECK_EQ(wire_size("", 0), 0);
    CHECK_EQ(wire_size("a\nb\n", 4), 6);
    CHECK_EQ(wire_size("a\r\nb\r\n", 6), 6);
    CHECK_EQ(wire_size("a\nb\r\n", 5), 6);
    CHECK_EQ(wire_size("abc", 3), 5);
    CHECK_EQ(wire_size("a\nabc", 5), 8);
    CHECK_EQ(wire_size("\n", 1), 2);
    CHECK_EQ(wire_size("\r\n", 2), 2);
    CHECK_EQ(wire_size("\n\n\n", 3), 6);
    CHECK_EQ(wire_size("abc\r", 4), 6);
    CHECK_EQ(wire_size("\r\r\n", 3), 3);
    CHECK_EQ(wire_size(".\n..\n", 5), 7);      /* dot-stuffing not counted */
    CHECK_EQ(wire_size("\0\n", 2), 3);
}

static uint32_t rng_state;
static uint32_t rng(void)
{
    rng_state = rng_state * 1103515245u + 12345u;
    return rng_state >> 8;
}

TEST(wire_size_matches_mlw_output_for_random_data)
{
    struct pair p;
    if (pair_open(&p, 5) != 0)
        SKIP("socketpair");
    static const char alphabet[] = { '\n', '\n', '\r', '\r', '.', '.', 'a', 'F', '\0', (char)0xff };
    char data[400];
    rng_state = 20240101;
    int bad = 0;
    for (int iter = 0; iter < 3000 && bad < 5; iter++) {
        size_t len = rng() % sizeof data;
        for (size_t i = 0; i < len; i++)
            data[i] = alphabet[rng() % sizeof alphabet];
        size_t stuffed = 0;
        for (size_t i = 0; i < len; i++)
            stuffed += data[i] == '.' && (i == 0 || data[i - 1] == '\n');
        size_t chunks[8];
        size_t nchunks = rng() % 8;
        for (size_t c = 0; c < nchunks; c++)
            chunks[c] = rng() % (len / 2 + 2);
        size_t used = 0;
        size_t n = mlw_run(&p, data, len, chunks, nchunks, NULL, &used);
        uint64_t ws = wire_size(data, len);
        int ok = used == len && n != (size_t)-1 && n == ws + stuffed + 3;
        /* the output is well-formed: every LF has its CR, ends in CRLF.CRLF */
        for (size_t i = 0; ok && i < n; i++)
            if (mlw_out[i] == '\n' && (i == 0 || mlw_out[i - 1] != '\r'))
                ok = 0;
        if (ok && n >= 3)
            ok = memcmp(mlw_out + n - 3, ".\r\n", 3) == 0 &&
                 (n == 3 || (n >= 5 && memcmp(mlw_out + n - 5, "\r\n", 2) == 0));
        if (!ok) {
            bad++;
            printf("  iteration %d: len %zu, wire_size %llu, stuffed %zu, emitted %zu\n", iter,
                   len, (unsigned long long)ws, stuffed, n);
            CHECK(ok);
        }
    }
    pair_close(&p);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    RUN(reads_crlf_and_bare_lf_lines);
    RUN(pipelined_lines_come_one_by_one);
    RUN(line_of_253_chars_is_accepted);
    RUN(line_of_254_chars_is_too_long_and_next_line_is_intact);
    RUN(over_long_line_rest_is_discarded);
    RUN(over_long_line_arriving_in_pieces);
    RUN(eof_and_partial_last_line);
    RUN(timeout_is_bounded);
    RUN(stop_flag_interrupts_read);
    RUN(nul_inside_a_line_is_kept);
    RUN(output_is_buffered_until_flush);
    RUN(large_output_streams_through_small_buffer);
    RUN(write_errors_are_sticky);
    RUN(mlw_converts_lf_and_keeps_crlf);
    RUN(mlw_dot_stuffing);
    RUN(mlw_unterminated_last_line);
    RUN(mlw_chunk_splits);
    RUN(mlw_matches_the_model_on_random_text);
    RUN(mlw_streams_a_big_message_through_the_buffer);
    RUN(mlw_lines_left_limits_output);
    RUN(wire_size_counts_crlf);
    RUN(wire_size_matches_mlw_output_for_random_data);
    return test_report();
}

/* netio.c - bounded line input, buffered output, the multi-line writer. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "netio.h"
#include "util.h"

#define NETIO_OUT_BUF (64 * 1024)

static int set_nonblocking(int fd)
{
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
        return -1;
    return 0;
}

int netio_init(struct netio *io, int rfd, int wfd, unsigned timeout_secs)
{
    memset(io, 0, sizeof *io);
    io->rfd = rfd;
    io->wfd = wfd;
    io->timeout_secs = timeout_secs;
    io->out_cap = NETIO_OUT_BUF;
    io->out = malloc(io->out_cap);
    if (io->out == NULL)
        return log_errno("netio: allocating the output buffer");
    /* Non-blocking, with poll() before every read and write, so that a
     * client that stops reading cannot hold us past the timeout. */
    if (set_nonblocking(rfd) != 0 || set_nonblocking(wfd) != 0) {
        free(io->out);
        io->out = NULL;
        return log_errno("netio: O_NONBLOCK");
    }
    return 0;
}

void netio_free(struct netio *io)
{
    free(io->out);
    io->out = NULL;
}

/* Waits until fd is ready for events; NETIO_OK, TIMEOUT, INTERRUPTED, ERROR. */
static enum netio_status wait_fd(struct netio *io, int fd, short events)
{
    int64_t deadline = now_ms() + (int64_t)io->timeout_secs * 1000;
    for (;;) {
        if (io->stop_flag && *io->stop_flag)
            return NETIO_INTERRUPTED;
        int64_t now = now_ms();
        if (io->expires_ms && now >= io->expires_ms)
            return NETIO_EXPIRED;
        int64_t left = deadline - now;
        if (left <= 0)
            return NETIO_TIMEOUT;
        if (io->expires_ms && io->expires_ms - now < left)
            left = io->expires_ms - now;
        struct pollfd pfd = { .fd = fd, .events = events };
        int n = poll(&pfd, 1, left > 60000 ? 60000 : (int)left);
        if (n > 0)
            return NETIO_OK;
        if (n < 0 && errno != EINTR)
            return NETIO_ERROR;
    }
}

/*
 * A client that fetches message after message sends its next command a
 * few tens of microseconds after our reply.  Sleeping in poll() for it
 * costs two context switches and a cross-CPU wake-up each time, which on
 * a virtual machine is most of a small message's round trip; so after a
 * reply we keep asking for a little while before we sleep.  A client that
 * keeps us waiting longer stops the spinning for the next SPIN_COOLDOWN
 * waits: an idle session costs nothing.
 */
#define SPIN_US 60
#define SPIN_COOLDOWN 32

static int spin_for_input(struct netio *io)
{
    if (io->spin_cooldown > 0) {
        io->spin_cooldown--;
        return 0;
    }
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        struct pollfd pfd = { .fd = io->rfd, .events = POLLIN };
        if (poll(&pfd, 1, 0) > 0)
            return 1;
        clock_gettime(CLOCK_MONOTONIC, &t);
    } while ((t.tv_sec - t0.tv_sec) * 1000000L + (t.tv_nsec - t0.tv_nsec) / 1000 < SPIN_US);
    io->spin_cooldown = SPIN_COOLDOWN;
    return 0;
}

static enum netio_status fill(struct netio *io)
{
    for (;;) {
        ssize_t n = read(io->rfd, io->in + io->in_end, sizeof io->in - io->in_end);
        if (n > 0) {
            io->in_end += (size_t)n;
            return NETIO_OK;
        }
        if (n == 0)
            return NETIO_EOF;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return NETIO_ERROR;
        if (spin_for_input(io))
            continue;
        enum netio_status st = wait_fd(io, io->rfd, POLLIN);
        if (st != NETIO_OK)
            return st;
    }
}

enum netio_status netio_read_line(struct netio *io, char *line, size_t size, size_t *len)
{
    return netio_read_line_max(io, line, size, len, NETIO_MAX_LINE);
}

enum netio_status netio_read_line_max(struct netio *io, char *line, size_t size, size_t *len,
                                      size_t max_octets)
{
    for (;;) {
        char *start = io->in + io->in_start;
        size_t avail = io->in_end - io->in_start;
        char *nl = memchr(start, '\n', avail);
        if (nl != NULL) {
            size_t content = (size_t)(nl - start);
            io->in_start += content + 1;
            if (content > 0 && start[content - 1] == '\r')
                content--;
            /* RFC 2449 section 4: 255 octets including the CRLF. */
            if (io->discarding || content + 2 > max_octets || content >= size) {
                io->discarding = 0;
                return NETIO_TOO_LONG;
            }
            memcpy(line, start, content);
            line[content] = '\0';
            *len = content;
            return NETIO_OK;
        }
        if (avail > max_octets || io->discarding) {
            /* No end in sight: drop what we have, keep dropping to LF. */
            io->discarding = 1;
            avail = 0;
            io->in_start = io->in_end;
        }
        memmove(io->in, io->in + io->in_start, avail);
        io->in_start = 0;
        io->in_end = avail;
        enum netio_status st = fill(io);
        if (st != NETIO_OK)
            return st;
    }
}

int netio_line_pending(const struct netio *io)
{
    return memchr(io->in + io->in_start, '\n', io->in_end - io->in_start) != NULL;
}

const char *netio_pending(const struct netio *io, size_t *len)
{
    *len = io->in_end - io->in_start;
    return io->in + io->in_start;
}

int netio_preload(struct netio *io, const char *data, size_t len)
{
    size_t have = io->in_end - io->in_start;
    if (len + have > sizeof io->in)
        return -1;
    memmove(io->in + len, io->in + io->in_start, have);
    memcpy(io->in, data, len);
    io->in_start = 0;
    io->in_end = len + have;
    return 0;
}

int netio_flush(struct netio *io)
{
    size_t done = 0;
    while (!io->write_failed && done < io->out_len) {
        ssize_t n = write(io->wfd, io->out + done, io->out_len - done);
        if (n > 0) {
            done += (size_t)n;
            io->bytes_out += (uint64_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) &&
            wait_fd(io, io->wfd, POLLOUT) == NETIO_OK)
            continue;
        io->write_failed = 1;
    }
    io->out_len = 0;
    return io->write_failed ? -1 : 0;
}

void netio_write(struct netio *io, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0 && !io->write_failed) {
        if (io->out_len == io->out_cap && netio_flush(io) != 0)
            return;
        size_t take = io->out_cap - io->out_len;
        if (take > len)
            take = len;
        memcpy(io->out + io->out_len, p, take);
        io->out_len += take;
        p += take;
        len -= take;
    }
}

void netio_printf(struct netio *io, const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    netio_write(io, text, (size_t)n < sizeof text ? (size_t)n : sizeof text - 1);
}

void mlw_begin(struct mlwriter *w, struct netio *io)
{
    w->io = io;
    w->at_line_start = 1;
    w->prev_cr = 0;
}

size_t mlw_data(struct mlwriter *w, const char *data, size_t len, uint64_t *lines_left)
{
    const char *p = data, *end = data + len;
    while (p < end) {
        if (lines_left && *lines_left == 0)
            break;
        if (w->at_line_start && *p == '.')
            netio_write(w->io, ".", 1);     /* RFC 1939 section 3 byte-stuffing */
        w->at_line_start = 0;
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (nl == NULL) {
            netio_write(w->io, p, (size_t)(end - p));
            w->prev_cr = end[-1] == '\r';
            p = end;
            break;
        }
        if (nl > p) {
            netio_write(w->io, p, (size_t)(nl - p));
            w->prev_cr = nl[-1] == '\r';
        }
        netio_write(w->io, &"\r\n"[w->prev_cr], 2 - (size_t)w->prev_cr);
        w->prev_cr = 0;
        w->at_line_start = 1;
        p = nl + 1;
        if (lines_left)
            (*lines_left)--;
    }
    return (size_t)(p - data);
}

void mlw_end(struct mlwriter *w)
{
    if (!w->at_line_start)
        netio_write(w->io, "\r\n", 2);
    netio_write(w->io, ".\r\n", 3);
    w->at_line_start = 1;
    w->prev_cr = 0;
}

/*
 * Counting line ends runs over every byte of the spool at scan time, so
 * it is written with the compiler's vector extensions (16 bytes at a
 * time, SSE2 on x86-64, NEON on arm64): each compare gives 0 or -1 per
 * byte, summed into byte counters that are folded before they overflow.
 */
typedef signed char vbytes __attribute__((vector_size(16)));
#define VLEN 16
#define FOLD_EVERY 255

static uint64_t fold(vbytes acc)
{
    uint64_t sum = 0;
    for (int k = 0; k < VLEN; k++)
        sum += (unsigned char)(-acc[k]);
    return sum;
}

/* Bytes equal to a, and (with b >= 0) positions where b follows a. */
static void count_bytes(const unsigned char *p, size_t len, char a, int b, uint64_t *n_a,
                        uint64_t *n_ab)
{
    const vbytes va = (vbytes){ 0 } + a, vb = (vbytes){ 0 } + (signed char)b;
    uint64_t total_a = 0, total_ab = 0;
    size_t i = 0;
    while (len - i > VLEN) {        /* > so that p[i + 1 .. i + VLEN] exists */
        vbytes acc_a = { 0 }, acc_ab = { 0 };
        for (int round = 0; round < FOLD_EVERY && len - i > VLEN; round++, i += VLEN) {
            vbytes x, y;
            memcpy(&x, p + i, VLEN);
            vbytes is_a = (vbytes)(x == va);
            acc_a += is_a;
            if (b >= 0) {
                memcpy(&y, p + i + 1, VLEN);
                acc_ab += is_a & (vbytes)(y == vb);
            }
        }
        total_a += fold(acc_a);
        total_ab += fold(acc_ab);
    }
    for (; i < len; i++) {
        total_a += p[i] == (unsigned char)a;
        total_ab += b >= 0 && i + 1 < len && p[i] == (unsigned char)a &&
                    p[i + 1] == (unsigned char)b;
    }
    *n_a = total_a;
    *n_ab = total_ab;
}

uint64_t wire_size(const char *data, size_t len)
{
    const unsigned char *p = (const unsigned char *)data;
    uint64_t lf = 0, crlf = 0, unused;
    count_bytes(p, len, '\n', -1, &lf, &unused);
    if (len > 0 && memchr(p, '\r', len) != NULL)
        count_bytes(p, len, '\r', '\n', &unused, &crlf);
    uint64_t size = len + lf - crlf;
    if (len > 0 && p[len - 1] != '\n')
        size += 2;
    return size;
}

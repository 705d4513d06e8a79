/*
 * netio.h - one client connection's bytes: a bounded line reader and a
 * buffered writer, both with the inactivity timeout, plus the multi-line
 * writer that every RETR/TOP/LIST/UIDL/CAPA reply goes through.
 *
 * Input: lines end in CRLF or a bare LF (telnet and nc users).  A line
 * whose text is longer than NETIO_MAX_LINE - 2 octets (RFC 2449 section
 * 4: 255 octets including the CRLF; a bare LF is measured as if it were
 * CRLF, so both kinds of client get the same limit) is reported as
 * NETIO_TOO_LONG once, and the rest of it up to the
 * next LF is discarded without being buffered.  Bytes the client sent
 * ahead (PIPELINING) stay in the buffer for the next call.
 *
 * Output: replies are buffered and sent by netio_flush(), which the
 * session calls when no further complete command is buffered, so a
 * pipelined batch is answered in few segments and a single reply goes out
 * in one write (no Nagle/delayed-ACK stall).  Large multi-line replies
 * are flushed in NETIO_OUT_CHUNK blocks, so memory never grows with a
 * reply.  Write errors are sticky: later writes are dropped and
 * netio_flush() keeps failing, so handlers need not check every call.
 */
#ifndef MBOXPOP3D_NETIO_H
#define MBOXPOP3D_NETIO_H

#include <stddef.h>
#include <stdint.h>
#include <signal.h>
#include <sys/types.h>
#include "log.h"

#define NETIO_MAX_LINE 255          /* octets, including CRLF */
#define NETIO_MAX_SASL_LINE 1024    /* an AUTH response line (RFC 5034 section 4) */
#define NETIO_IN_BUF 4096           /* read buffer; pipelined lines wait here */
#define NETIO_OUT_CHUNK (256 * 1024)/* flush threshold for long replies */

enum netio_status {
    NETIO_OK = 0,
    NETIO_TOO_LONG,   /* line over NETIO_MAX_LINE, discarded */
    NETIO_EOF,        /* client closed (a partial last line is dropped) */
    NETIO_TIMEOUT,    /* nothing for timeout_secs */
    NETIO_ERROR,      /* read/write error, errno set */
    NETIO_INTERRUPTED,/* a signal asked us to stop (see stop_flag) */
    NETIO_EXPIRED     /* past expires_ms: the session's time is up */
};

struct netio {
    int rfd, wfd;
    unsigned timeout_secs;
    char in[NETIO_IN_BUF];
    size_t in_start, in_end;
    int discarding;             /* inside an over-long line */
    unsigned spin_cooldown;     /* waits left before spinning again (netio.c) */
    char *out;
    size_t out_len, out_cap;
    int write_failed;           /* sticky */
    uint64_t bytes_out;
    const volatile sig_atomic_t *stop_flag; /* optional: set by a signal handler */
    int64_t expires_ms;         /* optional: now_ms() deadline for everything */
};

int netio_init(struct netio *io, int rfd, int wfd, unsigned timeout_secs);
void netio_free(struct netio *io);

/*
 * Reads the next line into line[] (size > NETIO_MAX_LINE), without its
 * CRLF/LF and NUL-terminated; *len excludes the terminator.  A NUL byte
 * inside the line is kept in *len (callers reject it).
 */
enum netio_status netio_read_line(struct netio *io, char *line, size_t size,
                                  size_t *len);

/* The same with another limit (octets including CRLF, <= NETIO_IN_BUF/2). */
enum netio_status netio_read_line_max(struct netio *io, char *line, size_t size, size_t *len,
                                      size_t max_octets);

/* True if a complete line is already buffered (pipelined input). */
int netio_line_pending(const struct netio *io);

/* Bytes received but not yet consumed as lines (handed on at login). */
const char *netio_pending(const struct netio *io, size_t *len);

/* Puts bytes in front of the input, as if just received (len must fit
 * NETIO_IN_BUF); returns -1 if they do not fit. */
int netio_preload(struct netio *io, const char *data, size_t len);

void netio_write(struct netio *io, const void *buf, size_t len);
void netio_printf(struct netio *io, const char *fmt, ...) PRINTF_LIKE(2, 3);
int netio_flush(struct netio *io);  /* 0, or -1 (sticky) */

/*
 * Multi-line data writer (RFC 1939 section 3): converts bare LF to CRLF,
 * byte-stuffs lines that begin with '.', and ends with CRLF.CRLF (adding
 * the CRLF of an unterminated last line).  Data may arrive in any chunks.
 */
struct mlwriter {
    struct netio *io;
    int at_line_start;   /* next byte begins a line */
    int prev_cr;         /* last byte written was a CR */
};

void mlw_begin(struct mlwriter *w, struct netio *io);

/*
 * Writes up to len bytes.  If *lines_left is not NULL, stops after that
 * many complete lines (decrementing it); returns the bytes consumed.
 */
size_t mlw_data(struct mlwriter *w, const char *data, size_t len,
                uint64_t *lines_left);

/* Ends the current line if needed and writes the terminating ".\r\n". */
void mlw_end(struct mlwriter *w);

/* Octets that data occupies on the wire: bare LF counted as CRLF, plus
 * CRLF for an unterminated last line.  Dot-stuffing is not counted
 * (RFC 1939 sizes are message sizes, not transmission sizes). */
uint64_t wire_size(const char *data, size_t len);

#endif

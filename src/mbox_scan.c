/* mbox_scan.c - the pure part of the mailbox engine: turning the bytes of
 * an mbox into an index (see mailbox.h for the format rules). */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <strings.h>
#include <unistd.h>

#include "mailbox.h"
#include "md5.h"
#include "util.h"

#define FROM_LINE "From "
#define FROM_LEN 5

static int starts_with(const char *p, const char *end, const char *s, size_t n)
{
    return (size_t)(end - p) >= n && memcmp(p, s, n) == 0;
}

static int header_is(const char *line, const char *end, const char *name)
{
    size_t n = strlen(name);
    return (size_t)(end - line) >= n && strncasecmp(line, name, n) == 0;
}

/* What the header scan learns about one message. */
struct header_info {
    uint64_t len;              /* header block, with the blank line */
    unsigned blank_len;        /* 0 (no blank line), 1 (LF) or 2 (CRLF) */
    int has_content_length;
    uint64_t content_length;
    int imap_header, internal_subject;  /* UW-IMAP pseudo-message marks */
    const char *x_uidl;                 /* X-UIDL: value, if usable */
    size_t x_uidl_len;
};

/* An X-UIDL value is used only if it is a valid unique-id by itself. */
static void parse_x_uidl(const char *line, const char *eol, struct header_info *h)
{
    const char *p = line + strlen("X-UIDL:");
    while (p < eol && (*p == ' ' || *p == '\t'))
        p++;
    const char *start = p;
    while (p < eol && (unsigned char)*p > 0x20 && (unsigned char)*p < 0x7f && *p != '.')
        p++;
    const char *end = p;
    while (p < eol && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
        p++;
    size_t n = (size_t)(end - start);
    if (p == eol && n > 0 && n <= UIDL_X_UIDL_MAX && h->x_uidl == NULL) {
        h->x_uidl = start;
        h->x_uidl_len = n;
    }
}

static void parse_content_length(const char *line, const char *eol, struct header_info *h)
{
    const char *p = line + strlen("Content-Length:");
    while (p < eol && (*p == ' ' || *p == '\t'))
        p++;
    const char *digits = p;
    while (p < eol && *p >= '0' && *p <= '9')
        p++;
    const char *after = p;
    while (p < eol && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
        p++;
    uint64_t n;
    if (p == eol && parse_uint(digits, (size_t)(after - digits), UINT64_MAX / 2, &n) == 0) {
        h->has_content_length = 1;
        h->content_length = n;
    }
}

/* first: the file's first message, the only one that can be UW-IMAP's
 * pseudo-message (whose marks are looked for only there). */
static void scan_headers(const char *data, uint64_t start, uint64_t len, int first,
                         struct header_info *h)
{
    memset(h, 0, sizeof *h);
    const char *p = data + start, *end = data + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *eol = nl ? nl + 1 : end;
        if (*p == '\n' || (p[0] == '\r' && p + 1 < end && p[1] == '\n')) {
            h->blank_len = *p == '\n' ? 1 : 2;
            p += h->blank_len;
            break;
        }
        /* The first letter picks the few names that matter (this runs
         * for every header line of every message at each open). */
        switch (*p | 0x20) {
        case 'c':
            if (header_is(p, eol, "Content-Length:"))
                parse_content_length(p, eol, h);
            break;
        case 'x':
            if (header_is(p, eol, "X-UIDL:"))
                parse_x_uidl(p, eol, h);
            else if (first && (header_is(p, eol, "X-IMAP:") || header_is(p, eol, "X-IMAPbase:")))
                h->imap_header = 1;
            break;
        case 's':
            if (first && header_is(p, eol, "Subject:") &&
                memmem(p, (size_t)(eol - p), "FOLDER INTERNAL DATA", 20) != NULL)
                h->internal_subject = 1;
            break;
        default:
            break;
        }
        p = eol;
    }
    h->len = (uint64_t)(p - (data + start));
}

/* Is there a "From " line right after the line end at data[i]?  Returns
 * the offset of that From line, or 0. */
static uint64_t from_after_line_end(const char *data, uint64_t len, uint64_t i)
{
    if (i < len && data[i] == '\n' && starts_with(data + i + 1, data + len, FROM_LINE, FROM_LEN))
        return i + 1;
    if (i + 1 < len && data[i] == '\r' && data[i + 1] == '\n' &&
        starts_with(data + i + 2, data + len, FROM_LINE, FROM_LEN))
        return i + 2;
    return 0;
}

/* Content-Length counts only if it lands exactly on a From line or EOF. */
static int content_length_fits(const char *data, uint64_t len, uint64_t body_off,
                               const struct header_info *h, uint64_t *content_end, uint64_t *next)
{
    if (!h->has_content_length || h->content_length > len - body_off)
        return 0;
    uint64_t end = body_off + h->content_length;
    uint64_t from = from_after_line_end(data, len, end);
    if (from != 0) {
        *content_end = end;
        *next = from;
        return 1;
    }
    /* Landing on a From line that directly follows the body (no blank
     * separator line) is exact too; after a blank line, the length that
     * stops before that line is the exact one. */
    if (end > body_off && data[end - 1] == '\n' && !(end >= 2 && data[end - 2] == '\n') &&
        starts_with(data + end, data + len, FROM_LINE, FROM_LEN)) {
        *content_end = end;
        *next = end;
        return 1;
    }
    if (end == len || (end + 1 == len && data[end] == '\n') ||
        (end + 2 == len && data[end] == '\r' && data[end + 1] == '\n')) {
        *content_end = end;
        *next = len;
        return 1;
    }
    return 0;
}

static int index_grow(struct mbox_index *idx, unsigned flags)
{
    if (idx->count < idx->alloc)
        return 0;
    size_t n = idx->alloc ? idx->alloc * 2 : 64;
    struct msg *m = realloc(idx->msgs, n * sizeof *m);
    if (m == NULL)
        return -1;
    idx->msgs = m;
    if (flags & MBOX_SCAN_X_UIDL) {
        uint32_t *x = realloc(idx->xuidl, n * sizeof *x);
        if (x == NULL)
            return -1;
        idx->xuidl = x;
    }
    idx->alloc = n;
    return 0;
}

static int parse_hex_digest(const char *s, unsigned char out[UIDL_DIGEST_LEN])
{
    for (int i = 0; i < 2 * UIDL_DIGEST_LEN; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    for (int i = 0; i < UIDL_DIGEST_LEN; i++) {
        int hi = s[2 * i] <= '9' ? s[2 * i] - '0' : s[2 * i] - 'a' + 10;
        int lo = s[2 * i + 1] <= '9' ? s[2 * i + 1] - '0' : s[2 * i + 1] - 'a' + 10;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return 1;
}

/* Keeps message i's X-UIDL value; its digest becomes the value's MD5, so
 * duplicates are numbered like any others. */
static int keep_x_uidl(struct mbox_index *idx, size_t i, const struct header_info *h)
{
    idx->xuidl[i] = 0;
    if (h->x_uidl == NULL)
        return 0;
    if (idx->xuidl_len + h->x_uidl_len + 1 > idx->xuidl_cap) {
        size_t cap = idx->xuidl_cap ? idx->xuidl_cap * 2 : 4096;
        while (cap < idx->xuidl_len + h->x_uidl_len + 1)
            cap *= 2;
        if (cap > UINT32_MAX)
            return 0;                    /* absurdly many: fall back to digests */
        char *t = realloc(idx->xuidl_text, cap);
        if (t == NULL)
            return -1;
        idx->xuidl_text = t;
        idx->xuidl_cap = cap;
    }
    memcpy(idx->xuidl_text + idx->xuidl_len, h->x_uidl, h->x_uidl_len);
    idx->xuidl_text[idx->xuidl_len + h->x_uidl_len] = '\0';
    idx->xuidl[i] = (uint32_t)idx->xuidl_len + 1;
    idx->xuidl_len += h->x_uidl_len + 1;
    /* The duplicate key: a value spelled like a digest is that digest. */
    if (h->x_uidl_len == 2 * UIDL_DIGEST_LEN && parse_hex_digest(h->x_uidl, idx->msgs[i].uid))
        return 0;
    struct md5_ctx ctx;
    unsigned char d[16];
    md5_init(&ctx);
    md5_update(&ctx, "X-UIDL\n", 7);
    md5_update(&ctx, h->x_uidl, h->x_uidl_len);
    md5_final(&ctx, d);
    memcpy(idx->msgs[i].uid, d, UIDL_DIGEST_LEN);
    return 0;
}

void mbox_uidl_text(const struct mbox_index *idx, size_t i, char out[UIDL_TEXT_MAX])
{
    const struct msg *m = &idx->msgs[i];
    if (idx->xuidl && idx->xuidl[i]) {
        const char *v = idx->xuidl_text + idx->xuidl[i] - 1;
        uidl_format_x(v, strlen(v), mbox_dup(idx, i), out);
    } else {
        uidl_format(m->uid, mbox_dup(idx, i), out);
    }
}

/* Makes equal digests unique by order of appearance (uidl.h); the
 * numbers take memory only when some digest repeats. */
static int number_duplicates(struct mbox_index *idx)
{
    free(idx->dup);
    idx->dup = NULL;
    if (idx->count < 2)
        return 0;
    size_t slots = 1;
    while (slots < idx->count * 2)
        slots <<= 1;
    uint32_t *table = calloc(slots, sizeof *table);   /* 1-based msg index, 0 empty */
    if (table == NULL || idx->count >= UINT32_MAX)
        goto fail;
    for (size_t i = 0; i < idx->count; i++) {
        const struct msg *m = &idx->msgs[i];
        uint64_t key;
        memcpy(&key, m->uid, sizeof key);
        size_t slot = (size_t)(key * 0x9e3779b97f4a7c15ULL >> 20) & (slots - 1);
        while (table[slot] != 0 && memcmp(idx->msgs[table[slot] - 1].uid, m->uid, UIDL_DIGEST_LEN) != 0)
            slot = (slot + 1) & (slots - 1);
        if (table[slot] != 0) {
            if (idx->dup == NULL) {
                idx->dup = malloc(idx->count * sizeof *idx->dup);
                if (idx->dup == NULL)
                    goto fail;
                for (size_t k = 0; k < idx->count; k++)
                    idx->dup[k] = 1;
            }
            idx->dup[i] = idx->dup[table[slot] - 1] + 1;
        }
        table[slot] = (uint32_t)i + 1;    /* the latest occurrence carries the count */
    }
    free(table);
    return 0;
fail:
    free(table);
    return -1;
}

uint64_t mbox_hash(const char *data, size_t len)
{
    const uint64_t prime = 0x9e3779b97f4a7c15ULL;
    uint64_t h[4] = { 0x243f6a8885a308d3ULL, 0x13198a2e03707344ULL,
                      0xa4093822299f31d0ULL, 0x082efa98ec4e6c89ULL };
    size_t i = 0;
    for (; i + 32 <= len; i += 32)
        for (int k = 0; k < 4; k++) {
            uint64_t w;
            memcpy(&w, data + i + 8 * k, 8);
            h[k] = (h[k] ^ w) * prime;
            h[k] ^= h[k] >> 29;
        }
    for (; i < len; i++)
        h[0] = (h[0] ^ (unsigned char)data[i]) * prime;
    uint64_t out = len;
    for (int k = 0; k < 4; k++) {
        out = (out ^ h[k]) * prime;
        out ^= out >> 32;
    }
    return out;
}

void mbox_index_free(struct mbox_index *idx)
{
    free(idx->msgs);
    free(idx->xuidl);
    free(idx->xuidl_text);
    free(idx->dup);
    memset(idx, 0, sizeof *idx);
}

/* ---- the byte loops ----
 *
 * Opening a big spool is one pass over its bytes, so the two loops that
 * touch every byte are written with the compiler's vector extensions, 32
 * bytes at a time; on x86-64 each is built twice (AVX2 and the SSE2
 * baseline) and the loader picks one for this CPU.
 */
#if defined(__x86_64__) && defined(__has_attribute)
#if __has_attribute(target_clones)
#define VECTOR_CLONES __attribute__((target_clones("avx2", "default")))
#endif
#endif
#ifndef VECTOR_CLONES
#define VECTOR_CLONES
#endif

#define VBYTES 32
typedef unsigned char vbytes __attribute__((vector_size(VBYTES)));
typedef uint64_t vwords __attribute__((vector_size(VBYTES)));
typedef uint32_t vhalves __attribute__((vector_size(VBYTES)));
#define FOLD_EVERY 255      /* byte counters hold up to 255 */

/* Is any byte of a compare result set? */
#define ANY_SET(v) ((((vwords)(v))[0] | ((vwords)(v))[1] | ((vwords)(v))[2] | ((vwords)(v))[3]) != 0)

/* The byte counters' sum (a macro: vector arguments have no stable ABI). */
#define FOLD(acc) fold_bytes((const unsigned char *)&(acc))

static uint64_t fold_bytes(const unsigned char *b)
{
    uint64_t sum = 0;
    for (int k = 0; k < VBYTES; k++)
        sum += b[k];
    return sum;
}

/* Does a message end at i: is data[i] the line end of a blank line
 * (LF or CR LF) followed by a "From " line? */
static int is_boundary(const unsigned char *d, uint64_t len, uint64_t i)
{
    return d[i] == '\n' && len - i >= 1 + FROM_LEN && memcmp(d + i + 1, FROM_LINE, FROM_LEN) == 0 &&
           i >= 1 && (d[i - 1] == '\n' || (i >= 2 && d[i - 1] == '\r' && d[i - 2] == '\n'));
}

/* Line ends at [a, b), by the position of their LF: all of them, and
 * those with a CR before them (wire_size's LF and CR LF counts). */
struct line_ends {
    uint64_t lf, crlf;
};

static void count_one(const unsigned char *d, uint64_t i, struct line_ends *n)
{
    if (d[i] == '\n') {
        n->lf++;
        n->crlf += d[i - 1] == '\r';
    }
}

/*
 * The first message end (is_boundary) at or after from, or len if there
 * is none; the line ends before it are added to *n.  from >= 1, and
 * data[from - 1] must not be a CR that belongs to the counted span (a
 * message's content starts after the LF of its From line).
 */
VECTOR_CLONES
static uint64_t find_end_counting(const unsigned char *d, uint64_t len, uint64_t from,
                                  struct line_ends *n)
{
    const vbytes lf = (vbytes){ 0 } + '\n', cr = (vbytes){ 0 } + '\r', eff = (vbytes){ 0 } + 'F';
    uint64_t i = from;
    while (len - i > VBYTES) {     /* d[i - 1 .. i + VBYTES] can be read */
        vbytes acc_lf = { 0 }, acc_crlf = { 0 };
        int round = 0, candidate = 0;
        for (; round < FOLD_EVERY && len - i > VBYTES; round++, i += VBYTES) {
            vbytes x, before, after;
            memcpy(&x, d + i, VBYTES);
            memcpy(&before, d + i - 1, VBYTES);
            memcpy(&after, d + i + 1, VBYTES);
            vbytes is_lf = (vbytes)(x == lf), cr_before = (vbytes)(before == cr);
            /* A blank line's LF before an F: rare, and checked one by one. */
            if (ANY_SET(is_lf & (vbytes)(after == eff) & ((vbytes)(before == lf) | cr_before))) {
                candidate = 1;
                break;
            }
            acc_lf -= is_lf;
            acc_crlf -= is_lf & cr_before;
        }
        n->lf += FOLD(acc_lf);
        n->crlf += FOLD(acc_crlf);
        if (candidate) {
            for (uint64_t end = i + VBYTES; i < end; i++) {
                if (is_boundary(d, len, i))
                    return i;
                count_one(d, i, n);
            }
        }
    }
    for (; i < len; i++) {
        if (is_boundary(d, len, i))
            return i;
        count_one(d, i, n);
    }
    return len;
}

/*
 * The prefix hash: a sum over the file's 8-byte words (zero-padded at the
 * end) of a keyed mix of each word and its index, so that it can be
 * summed span by span, in any order, by any number of threads, and a
 * change to any word changes its term.  It guards against another
 * program rewriting the spool behind our index, not against an attacker:
 * only the owner or root can write the spool.
 */
#define HASH_MUL 0x9e3779b97f4a7c15ULL
#define HASH_KEY 0x243f6a8885a308d3ULL

/* x plus the low 32 bits of its halves' product, in both halves: what one
 * vector multiply of 32-bit lanes (with the halves swapped) gives. */
static uint64_t word_term(uint64_t w, uint64_t k)
{
    uint64_t x = w ^ (k * HASH_MUL + HASH_KEY);
    uint64_t p = (uint32_t)((uint32_t)x * (uint32_t)(x >> 32));
    return x + (p | p << 32);
}

static uint64_t word_at(const unsigned char *d, uint64_t len, uint64_t k)
{
    uint64_t w = 0, off = 8 * k;
    if (len - off >= 8)
        memcpy(&w, d + off, 8);     /* one load, not a call to memcpy */
    else
        memcpy(&w, d + off, (size_t)(len - off));
    return w;
}

/* The terms of four words from d + 8 * k on, keyed as words k..k + 3 (a
 * macro: a function returning a vector would change the ABI without AVX). */
#define VECTOR_TERMS(d, k, key, out)                                            \
    do {                                                                        \
        vwords w_;                                                              \
        memcpy(&w_, (d) + 8 * (k), VBYTES);                                     \
        vwords x_ = w_ ^ (key);                                                 \
        vhalves h_ = (vhalves)x_;                                               \
        vhalves swapped_ = __builtin_shufflevector(h_, h_, 1, 0, 3, 2, 5, 4, 7, 6); \
        (out) += x_ + (vwords)(h_ * swapped_);                                  \
    } while (0)

/* The terms of the words that start in [a, b).  Called once per message:
 * the vector loop starts where the span does (a term depends only on its
 * word and index, so any grouping gives the same sum), two vectors at a
 * time with their own sums, which runs twice as fast as one (the
 * multiplies overlap); only the last few words are scalar. */
VECTOR_CLONES
static uint64_t hash_span(const unsigned char *d, uint64_t len, uint64_t a, uint64_t b)
{
    uint64_t k = (a + 7) / 8, end = (b + 7) / 8, sum = 0;
    /* whole vectors: words k..k + 3 all start before end and lie in d */
    uint64_t vend = end * 8 <= len ? end : len / 8;
    vwords acc = { 0 }, acc2 = { 0 };
    vwords key = (vwords){ k, k + 1, k + 2, k + 3 } * HASH_MUL + HASH_KEY;
    const vwords step = (vwords){ 0 } + 4 * HASH_MUL;
    for (; k + 8 <= vend; k += 8) {
        VECTOR_TERMS(d, k, key, acc);
        VECTOR_TERMS(d, k + 4, key + step, acc2);
        key += step + step;
    }
    for (; k + 4 <= vend; k += 4) {
        VECTOR_TERMS(d, k, key, acc);
        key += step;
    }
    acc += acc2;
    sum += acc[0] + acc[1] + acc[2] + acc[3];
    for (; k < end; k++)
        sum += word_term(word_at(d, len, k), k);
    return sum;
}

static uint64_t hash_final(uint64_t sum, uint64_t len)
{
    uint64_t h = (sum ^ len) * HASH_MUL;
    h ^= h >> 29;
    h *= HASH_MUL;
    return h ^ (h >> 32);
}

uint64_t mbox_prefix_hash(const char *data, size_t len)
{
    return hash_final(hash_span((const unsigned char *)data, len, 0, len), len);
}

/* ---- one message ---- */

/* A trailing blank line at the end of the file separates, like the one
 * before a From line.  Returns where the content ends. */
static uint64_t content_end_at_eof(const char *data, uint64_t len, uint64_t search_from)
{
    uint64_t end = len;
    if (len >= 2 && data[len - 1] == '\n' && data[len - 2] == '\n')
        end = len - 1;
    else if (len >= 4 && memcmp(data + len - 4, "\r\n\r\n", 4) == 0)
        end = len - 2;
    return end < search_from ? search_from : end;
}

struct scan_state {
    const char *data;
    uint64_t len;
    unsigned flags;
    struct mbox_index *idx;
    uint64_t hash_sum;      /* hash_span() terms of the messages seen */
    char *err;
    size_t errlen;
};

/* Indexes the message whose From line starts at pos; returns where the
 * next one starts (len at the end), or 0 on failure (err set). */
static uint64_t scan_message(struct scan_state *st, uint64_t pos)
{
    const char *data = st->data;
    const unsigned char *d = (const unsigned char *)data;
    uint64_t len = st->len;
    struct mbox_index *idx = st->idx;
    const char *nl = memchr(data + pos, '\n', len - pos);
    uint64_t content_off = nl ? (uint64_t)(nl - data) + 1 : len;
    struct header_info h;
    scan_headers(data, content_off, len, pos == 0, &h);
    uint64_t body_off = content_off + h.len;
    uint64_t content_end, next, size;
    if (content_length_fits(data, len, body_off, &h, &content_end, &next)) {
        size = wire_size(data + content_off, content_end - content_off);
    } else {
        /* No message end can lie inside the header block (it has no blank
         * line), so the search starts at the content: one pass both finds
         * the end and counts the line ends that make the size. */
        struct line_ends n = { 0, 0 };
        uint64_t i = content_off < len ? find_end_counting(d, len, content_off, &n) : len;
        if (i < len) {
            next = i + 1;
            content_end = d[i - 1] == '\n' ? i : i - 1;
        } else {
            next = len;
            content_end = content_end_at_eof(data, len, h.blank_len ? body_off - 1 : body_off);
            for (uint64_t j = content_end; j < len; j++) {   /* the separator's line end */
                if (d[j] == '\n') {
                    n.lf--;
                    n.crlf -= d[j - 1] == '\r';
                }
            }
        }
        if (content_end < content_off)
            content_end = content_off;
        uint64_t clen = content_end - content_off;
        size = clen + n.lf - n.crlf + (clen > 0 && d[content_end - 1] != '\n' ? 2 : 0);
    }
    st->hash_sum += hash_span(d, len, pos, next);
    if (pos == 0 && h.imap_header && h.internal_subject) {
        idx->pseudo_len = next;     /* hidden, and kept on rewrite */
        return next;
    }
    if (index_grow(idx, st->flags) != 0) {
        snprintf(st->err, st->errlen, "out of memory indexing message %zu", idx->count + 1);
        return 0;
    }
    uint64_t content_len = content_end - content_off;
    uint64_t header_len = h.len < content_len ? h.len : content_len;
    if (content_off - pos > UINT32_MAX || header_len > UINT32_MAX) {
        snprintf(st->err, st->errlen, "message at offset %llu has a From line or header block "
                 "of 4 GiB or more", (unsigned long long)pos);
        return 0;
    }
    if (next - content_end > 2 || size >> 60) {     /* cannot happen, see above */
        snprintf(st->err, st->errlen, "message at offset %llu: %llu separator bytes or "
                 "size %llu out of range", (unsigned long long)pos,
                 (unsigned long long)(next - content_end), (unsigned long long)size);
        return 0;
    }
    struct msg *m = &idx->msgs[idx->count++];
    memset(m, 0, sizeof *m);
    m->content_off = content_off;
    m->from_len = (uint32_t)(content_off - pos);
    m->sep_len = (unsigned)(next - content_end);   /* 0-2: scan_message's cases */
    m->header_len = (uint32_t)header_len;
    m->has_blank = h.blank_len != 0 && header_len == h.len;
    m->size = size;
    uidl_digest(data + content_off, header_len - (m->has_blank ? h.blank_len : 0), m->uid);
    if ((st->flags & MBOX_SCAN_X_UIDL) && keep_x_uidl(idx, idx->count - 1, &h) != 0) {
        snprintf(st->err, st->errlen, "out of memory keeping X-UIDL values");
        return 0;
    }
    return next;
}

/* Indexes the messages that start in [first, stop): returns where the
 * message after the last one starts, or 0 on failure. */
static uint64_t scan_messages(struct scan_state *st, uint64_t first, uint64_t stop)
{
    uint64_t pos = first;
    while (pos < st->len && pos < stop) {
        uint64_t next = scan_message(st, pos);
        if (next == 0)
            return 0;
        pos = next;
    }
    return pos;
}

/* ---- in parallel ----
 *
 * A big spool is cut into parts at message ends found from evenly spaced
 * offsets, and each part is indexed by a thread of its own.  The parts
 * must chain: where one part's last message says the next one starts
 * must be where the next part begins.  A Content-Length: that jumps over
 * a cut breaks the chain, and then the whole file is scanned in one go.
 */
#define PARALLEL_MIN_BYTES (32u << 20)
#define PARALLEL_PART_BYTES (16u << 20)
#define MAX_PARTS 4

struct scan_part {
    struct scan_state st;
    struct mbox_index idx;
    unsigned number;        /* 0 for the first part */
    uint64_t cut, stop;     /* the part's bytes: [cut, stop) */
    uint64_t first, end;    /* its first message; where its last one ends */
    int failed;
    char err[160];
};

/* A part holds the messages whose From lines start in [cut, stop); the
 * first part starts at 0, the others at the first message end found from
 * one byte before their cut.  A part with none is empty (first == stop).
 * The search stays inside the part, so a file of a few huge messages is
 * not read twice. */
static void scan_part_body(void *arg)
{
    struct scan_part *p = arg;
    if (p->number > 0) {
        struct line_ends unused = { 0, 0 };
        uint64_t limit = p->stop + 1 + FROM_LEN < p->st.len ? p->stop + 1 + FROM_LEN : p->st.len;
        uint64_t from = p->cut > 1 ? p->cut - 1 : 1;    /* find_end_counting's from >= 1 */
        uint64_t i = find_end_counting((const unsigned char *)p->st.data, limit, from, &unused);
        p->first = i < p->stop ? i + 1 : p->stop;
    }
    if (p->first >= p->stop) {
        p->end = p->first;
        return;
    }
    p->end = scan_messages(&p->st, p->first, p->stop);
    p->failed = p->end == 0;
}

static void *scan_part_thread(void *arg)
{
    struct scan_part *p = arg;
    if (mbox_guard_call(scan_part_body, p) != 0) {
        p->failed = 1;
        snprintf(p->err, sizeof p->err, "the file shrank while being read");
    }
    return NULL;
}

static unsigned tuned_parts;                 /* 0: one per CPU */
static uint64_t tuned_min = PARALLEL_MIN_BYTES;

void mbox_scan_tune(unsigned parts, size_t min_bytes)
{
    tuned_parts = parts > MAX_PARTS ? MAX_PARTS : parts;
    tuned_min = min_bytes;
}

static unsigned parts_for(uint64_t len, unsigned flags)
{
    /* X-UIDL values are kept in one text buffer: one part. */
    if ((flags & MBOX_SCAN_X_UIDL) || len < tuned_min)
        return 1;
    if (tuned_parts > 0)
        return tuned_parts;
    static long cpus;
    if (cpus == 0) {
        cpus = sysconf(_SC_NPROCESSORS_ONLN);
        if (cpus < 1)
            cpus = 1;
    }
    uint64_t n = len / PARALLEL_PART_BYTES;
    if (n > (uint64_t)cpus)
        n = (uint64_t)cpus;
    return n > MAX_PARTS ? MAX_PARTS : (unsigned)n;
}

/* Joins the parts' indexes into idx; 1 if they chain, 0 if not, -1 if
 * out of memory. */
static int join_parts(struct scan_part *parts, unsigned n, struct mbox_index *idx,
                      uint64_t *hash_sum)
{
    size_t total = 0;
    uint64_t chain = 0;             /* where the next non-empty part must start */
    for (unsigned t = 0; t < n; t++) {
        if (parts[t].first >= parts[t].stop && t > 0)
            continue;
        if (parts[t].first != chain)
            return 0;
        chain = parts[t].end;
        total += parts[t].idx.count;
    }
    if (chain != parts[0].st.len)
        return 0;
    *idx = parts[0].idx;            /* part 0 carries pseudo_len */
    memset(&parts[0].idx, 0, sizeof parts[0].idx);
    if (total > idx->alloc) {
        struct msg *m = realloc(idx->msgs, total * sizeof *m);
        if (m == NULL)
            return -1;
        idx->msgs = m;
        idx->alloc = total;
    }
    for (unsigned t = 1; t < n; t++) {
        if (parts[t].idx.count > 0)
            memcpy(idx->msgs + idx->count, parts[t].idx.msgs,
                   parts[t].idx.count * sizeof *idx->msgs);
        idx->count += parts[t].idx.count;
    }
    *hash_sum = 0;
    for (unsigned t = 0; t < n; t++)
        *hash_sum += parts[t].st.hash_sum;
    return 1;
}

/* A scan thread's stack is ours, mapped for it and unmapped after it:
 * glibc keeps the stacks of its own making for later threads, and their
 * pages would stay with an idle session for as long as it lasts. */
#define THREAD_STACK (256u * 1024)
#define STACK_GUARD 4096u

static int start_thread(pthread_t *thread, void **stack, struct scan_part *part)
{
    *stack = NULL;
    void *map = mmap(NULL, THREAD_STACK, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (map == MAP_FAILED)
        return 0;
    pthread_attr_t attr;
    int ok = mprotect(map, STACK_GUARD, PROT_NONE) == 0 && pthread_attr_init(&attr) == 0;
    if (ok) {
        ok = pthread_attr_setstack(&attr, (char *)map + STACK_GUARD,
                                   THREAD_STACK - STACK_GUARD) == 0 &&
             pthread_create(thread, &attr, scan_part_thread, part) == 0;
        pthread_attr_destroy(&attr);
    }
    if (!ok) {
        munmap(map, THREAD_STACK);
        return 0;
    }
    *stack = map;
    return 1;
}

/* 1: idx built in parallel; 0: do it in one go; -1: failed (err set). */
static int scan_parallel(const char *data, size_t len, unsigned flags, struct mbox_index *idx,
                         uint64_t *hash_sum, char *err, size_t errlen)
{
    unsigned n = parts_for(len, flags);
    if (n < 2)
        return 0;
    struct scan_part parts[MAX_PARTS];
    pthread_t threads[MAX_PARTS];
    int started[MAX_PARTS] = { 0 };
    memset(parts, 0, sizeof parts);
    for (unsigned t = 0; t < n; t++) {
        struct scan_part *p = &parts[t];
        p->st = (struct scan_state){ .data = data, .len = len, .flags = flags, .idx = &p->idx,
                                     .err = p->err, .errlen = sizeof p->err };
        p->number = t;
        p->cut = len / n * t;
        p->stop = t + 1 < n ? len / n * (t + 1) : len;
    }
    void *stacks[MAX_PARTS] = { NULL };
    for (unsigned t = 1; t < n; t++)
        started[t] = start_thread(&threads[t], &stacks[t], &parts[t]);
    scan_part_body(&parts[0]);     /* the caller's SIGBUS guard covers this one */
    for (unsigned t = 1; t < n; t++) {
        if (started[t])
            pthread_join(threads[t], NULL);
        else
            scan_part_thread(&parts[t]);
        if (stacks[t])
            munmap(stacks[t], THREAD_STACK);
    }
    int rc = 1;
    for (unsigned t = 0; t < n && rc == 1; t++) {
        if (parts[t].failed) {
            snprintf(err, errlen, "%s", parts[t].err);
            rc = -1;
        }
    }
    if (rc == 1) {
        rc = join_parts(parts, n, idx, hash_sum);
        if (rc < 0)
            snprintf(err, errlen, "out of memory joining the index");
    }
    for (unsigned t = 0; t < n; t++)
        mbox_index_free(&parts[t].idx);
    return rc;
}

int mbox_scan(const char *data, size_t len, struct mbox_index *idx, char *err, size_t errlen)
{
    return mbox_scan_opts(data, len, 0, idx, err, errlen);
}

int mbox_scan_opts(const char *data, size_t len, unsigned flags, struct mbox_index *idx,
                   char *err, size_t errlen)
{
    mbox_index_free(idx);
    idx->scanned_size = len;
    idx->prefix_hash = hash_final(0, 0);
    if (len == 0)
        return 0;
    if (!starts_with(data, data + len, FROM_LINE, FROM_LEN)) {
        snprintf(err, errlen, "not an mbox: the file does not start with a \"From \" line");
        return -1;
    }
    uint64_t hash_sum = 0;
    int rc = scan_parallel(data, len, flags, idx, &hash_sum, err, errlen);
    if (rc < 0) {
        mbox_index_free(idx);
        return -1;
    }
    if (rc == 0) {
        struct scan_state st = { .data = data, .len = len, .flags = flags, .idx = idx,
                                 .err = err, .errlen = errlen };
        if (scan_messages(&st, 0, len) == 0)
            return -1;
        hash_sum = st.hash_sum;
    }
    idx->scanned_size = len;
    idx->prefix_hash = hash_final(hash_sum, len);
    if (number_duplicates(idx) != 0) {
        snprintf(err, errlen, "out of memory numbering duplicate messages");
        return -1;
    }
    return 0;
}

/* ---- SIGBUS ----
 * Reading a mapping of a file that another program truncates raises
 * SIGBUS in the thread that touched the missing page; each guarded call
 * has its own jump point, per thread. */
static _Thread_local sigjmp_buf *guard_jump;

void mbox_guard_sigbus(int sig)
{
    if (guard_jump != NULL)
        siglongjmp(*guard_jump, 1);
    signal(sig, SIG_DFL);
    raise(sig);
}

int mbox_guard_call(void (*fn)(void *), void *arg)
{
    sigjmp_buf jump;
    sigjmp_buf *volatile outer = guard_jump;
    if (sigsetjmp(jump, 1) != 0) {
        guard_jump = outer;
        return -1;
    }
    guard_jump = &jump;
    fn(arg);
    guard_jump = outer;
    return 0;
}

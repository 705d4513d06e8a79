/* ref_scan.h - the mbox scanner as it was before the single-pass,
 * multi-threaded one (mbox_scan.c): a slow, plain reference that the
 * differential tests (test_mbox_scan.c, fuzz_mbox.c) hold the fast one to.
 * Include it in one test file only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mailbox.h"
#include "md5.h"
#include "util.h"

/* The index as the reference builds it (the old struct msg). */
struct ref_msg {
    uint64_t from_off, content_off, content_len, header_len, size;
    uint32_t dup;
    unsigned char deleted, has_blank;
    unsigned char uid[UIDL_DIGEST_LEN];
};

struct ref_index {
    struct ref_msg *msgs;
    size_t count, alloc;
    uint32_t *xuidl;
    char *xuidl_text;
    size_t xuidl_len, xuidl_cap;
    uint64_t pseudo_len, scanned_size;
};

#define FROM_LINE "From "
#define FROM_LEN 5

static int ref_starts_with(const char *p, const char *end, const char *s, size_t n)
{
    return (size_t)(end - p) >= n && memcmp(p, s, n) == 0;
}

static int ref_header_is(const char *line, const char *end, const char *name)
{
    size_t n = strlen(name);
    return (size_t)(end - line) >= n && strncasecmp(line, name, n) == 0;
}

/* What the header scan learns about one message. */
struct ref_header_info {
    uint64_t len;              /* header block, with the blank line */
    unsigned blank_len;        /* 0 (no blank line), 1 (LF) or 2 (CRLF) */
    int has_content_length;
    uint64_t content_length;
    int imap_header, internal_subject;  /* UW-IMAP pseudo-message marks */
    const char *x_uidl;                 /* X-UIDL: value, if usable */
    size_t x_uidl_len;
};

/* An X-UIDL value is used only if it is a valid unique-id by itself. */
static void ref_parse_x_uidl(const char *line, const char *eol, struct ref_header_info *h)
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

static void ref_parse_content_length(const char *line, const char *eol, struct ref_header_info *h)
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

static void ref_scan_headers(const char *data, uint64_t start, uint64_t len, struct ref_header_info *h)
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
        if (ref_header_is(p, eol, "Content-Length:"))
            ref_parse_content_length(p, eol, h);
        else if (ref_header_is(p, eol, "X-UIDL:"))
            ref_parse_x_uidl(p, eol, h);
        else if (ref_header_is(p, eol, "X-IMAP:") || ref_header_is(p, eol, "X-IMAPbase:"))
            h->imap_header = 1;
        else if (ref_header_is(p, eol, "Subject:") &&
                 memmem(p, (size_t)(eol - p), "FOLDER INTERNAL DATA", 20) != NULL)
            h->internal_subject = 1;
        p = eol;
    }
    h->len = (uint64_t)(p - (data + start));
}

/* Is there a "From " line right after the line end at data[i]?  Returns
 * the offset of that From line, or 0. */
static uint64_t ref_from_after_line_end(const char *data, uint64_t len, uint64_t i)
{
    if (i < len && data[i] == '\n' && ref_starts_with(data + i + 1, data + len, FROM_LINE, FROM_LEN))
        return i + 1;
    if (i + 1 < len && data[i] == '\r' && data[i + 1] == '\n' &&
        ref_starts_with(data + i + 2, data + len, FROM_LINE, FROM_LEN))
        return i + 2;
    return 0;
}

/*
 * Finds where the message whose body starts at `from` ends: the next
 * "From " line that follows a blank line.  *content_end is where the
 * blank separator line begins, *next the next From line (both len at EOF,
 * where one trailing blank line is also a separator).
 */
static void ref_find_message_end(const char *data, uint64_t len, uint64_t from,
                             uint64_t *content_end, uint64_t *next)
{
    uint64_t s = from;
    while (s < len) {
        const char *hit = memmem(data + s, (size_t)(len - s), "\nFrom ", 6);
        if (hit == NULL)
            break;
        uint64_t i = (uint64_t)(hit - data);
        if (i >= 1 && data[i - 1] == '\n') {
            *content_end = i;
            *next = i + 1;
            return;
        }
        if (i >= 2 && data[i - 1] == '\r' && data[i - 2] == '\n') {
            *content_end = i - 1;
            *next = i + 1;
            return;
        }
        s = i + 1;
    }
    *next = len;
    *content_end = len;
    if (len >= 2 && data[len - 1] == '\n' && data[len - 2] == '\n')
        *content_end = len - 1;
    else if (len >= 4 && memcmp(data + len - 4, "\r\n\r\n", 4) == 0)
        *content_end = len - 2;
    if (*content_end < from)
        *content_end = from;
}

/* Content-Length counts only if it lands exactly on a From line or EOF. */
static int ref_content_length_fits(const char *data, uint64_t len, uint64_t body_off,
                               const struct ref_header_info *h, uint64_t *content_end, uint64_t *next)
{
    if (!h->has_content_length || h->content_length > len - body_off)
        return 0;
    uint64_t end = body_off + h->content_length;
    uint64_t from = ref_from_after_line_end(data, len, end);
    if (from != 0) {
        *content_end = end;
        *next = from;
        return 1;
    }
    /* Landing on a From line that directly follows the body (no blank
     * separator line) is exact too; after a blank line, the length that
     * stops before that line is the exact one. */
    if (end > body_off && data[end - 1] == '\n' && !(end >= 2 && data[end - 2] == '\n') &&
        ref_starts_with(data + end, data + len, FROM_LINE, FROM_LEN)) {
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

static int ref_index_grow(struct ref_index *idx, unsigned flags)
{
    if (idx->count < idx->alloc)
        return 0;
    size_t n = idx->alloc ? idx->alloc * 2 : 64;
    struct ref_msg *m = realloc(idx->msgs, n * sizeof *m);
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

static int ref_parse_hex_digest(const char *s, unsigned char out[UIDL_DIGEST_LEN])
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
static int ref_keep_x_uidl(struct ref_index *idx, size_t i, const struct ref_header_info *h)
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
    if (h->x_uidl_len == 2 * UIDL_DIGEST_LEN && ref_parse_hex_digest(h->x_uidl, idx->msgs[i].uid))
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


/* Makes equal digests unique by order of appearance (uidl.h). */
static int ref_number_duplicates(struct ref_index *idx)
{
    if (idx->count < 2)
        return 0;
    size_t slots = 1;
    while (slots < idx->count * 2)
        slots <<= 1;
    size_t *table = malloc(slots * sizeof *table);   /* 1-based msg index, 0 empty */
    if (table == NULL)
        return -1;
    memset(table, 0, slots * sizeof *table);
    for (size_t i = 0; i < idx->count; i++) {
        struct ref_msg *m = &idx->msgs[i];
        uint64_t key;
        memcpy(&key, m->uid, sizeof key);
        size_t slot = (size_t)(key * 0x9e3779b97f4a7c15ULL >> 20) & (slots - 1);
        while (table[slot] != 0 && memcmp(idx->msgs[table[slot] - 1].uid, m->uid, UIDL_DIGEST_LEN) != 0)
            slot = (slot + 1) & (slots - 1);
        if (table[slot] != 0)
            m->dup = idx->msgs[table[slot] - 1].dup + 1;
        table[slot] = i + 1;    /* the latest occurrence carries the count */
    }
    free(table);
    return 0;
}


static void ref_index_free(struct ref_index *idx)
{
    free(idx->msgs);
    free(idx->xuidl);
    free(idx->xuidl_text);
    memset(idx, 0, sizeof *idx);
}


static int ref_scan_opts(const char *data, size_t len, unsigned flags, struct ref_index *idx,
                   char *err, size_t errlen)
{
    ref_index_free(idx);
    idx->scanned_size = len;
    
    if (len == 0)
        return 0;
    if (!ref_starts_with(data, data + len, FROM_LINE, FROM_LEN)) {
        snprintf(err, errlen, "not an mbox: the file does not start with a \"From \" line");
        return -1;
    }
    uint64_t pos = 0;
    while (pos < len) {
        const char *nl = memchr(data + pos, '\n', len - pos);
        uint64_t content_off = nl ? (uint64_t)(nl - data) + 1 : len;
        struct ref_header_info h;
        ref_scan_headers(data, content_off, len, &h);
        uint64_t body_off = content_off + h.len;
        uint64_t content_end, next;
        if (!ref_content_length_fits(data, len, body_off, &h, &content_end, &next))
            ref_find_message_end(data, len, h.blank_len ? body_off - 1 : body_off, &content_end, &next);
        if (pos == 0 && h.imap_header && h.internal_subject) {
            idx->pseudo_len = next;     /* hidden, and kept on rewrite */
            pos = next;
            continue;
        }
        if (ref_index_grow(idx, flags) != 0) {
            snprintf(err, errlen, "out of memory indexing message %zu", idx->count + 1);
            return -1;
        }
        struct ref_msg *m = &idx->msgs[idx->count++];
        memset(m, 0, sizeof *m);
        m->from_off = pos;
        m->content_off = content_off;
        m->content_len = content_end - content_off;
        m->header_len = h.len < m->content_len ? h.len : m->content_len;
        m->has_blank = h.blank_len != 0 && m->header_len == h.len;
        m->size = wire_size(data + content_off, m->content_len);
        m->dup = 1;
        uidl_digest(data + content_off, m->header_len - (m->has_blank ? h.blank_len : 0), m->uid);
        if ((flags & MBOX_SCAN_X_UIDL) && ref_keep_x_uidl(idx, idx->count - 1, &h) != 0) {
            snprintf(err, errlen, "out of memory keeping X-UIDL values");
            return -1;
        }
        pos = next;
    }
    if (ref_number_duplicates(idx) != 0) {
        snprintf(err, errlen, "out of memory numbering duplicate messages");
        return -1;
    }
    return 0;
}

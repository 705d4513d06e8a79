/* uidl.c - popa3d-compatible unique-ids; the algorithm is in uidl.h. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "md5.h"
#include "uidl.h"

static int has_name(const char *line, size_t len, const char *name)
{
    size_t n = strlen(name);
    return len >= n && strncasecmp(line, name, n) == 0;
}

/* Which header lines popa3d hashes ("fixed": no reader rewrites them). */
static int is_fixed_header(const char *line, size_t len, int *received_seen)
{
    switch (line[0] | 0x20) {       /* the names below start with these */
    case 'r': case 'd': case 'x': case 'm':
        break;
    default:
        return 0;
    }
    if (has_name(line, len, "Received:"))
        return (*received_seen)++ == 0;
    /* popa3d picks fields by a switch on the first byte whose cases are
     * D d M m R r and only an upper-case X: "x-delivery-id:" is not counted. */
    if (has_name(line, len, "Delivered-To:") ||
        (line[0] == 'X' && has_name(line, len, "X-Delivery-ID:")))
        return 1;
    if (!*received_seen && (has_name(line, len, "Date:") || has_name(line, len, "Message-ID:")))
        return 1;
    return 0;
}

/* Headers that mail readers add or rewrite (mboxcheck.py's list): left out
 * of the fallback digest so that they cannot change a UIDL. */
static int is_volatile_header(const char *line, size_t len)
{
    static const char *const names[] = { "Status:", "X-Status:", "X-Keywords:", "X-UID:",
                                         "X-IMAP:", "X-IMAPbase:", "X-UIDL:",
                                         "Content-Length:", "Lines:" };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (has_name(line, len, names[i]))
            return 1;
    return 0;
}

/* The fallback: every header line but the volatile ones. */
static void digest_stable_headers(struct md5_ctx *ctx, const char *headers, size_t len)
{
    const char *p = headers, *end = headers + len;
    int skip = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t line_len = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
        if (*p != ' ' && *p != '\t')
            skip = is_volatile_header(p, line_len);
        if (!skip)
            md5_update(ctx, p, line_len);
        p += line_len;
    }
}

void uidl_digest(const char *headers, size_t len, unsigned char digest[UIDL_DIGEST_LEN])
{
    struct md5_ctx ctx;
    md5_init(&ctx);
    int received_seen = 0, fixed = 0, any_fixed = 0;
    const char *p = headers, *end = headers + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t line_len = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
        int continuation = *p == ' ' || *p == '\t';
        if (!continuation)
            fixed = is_fixed_header(p, line_len, &received_seen);
        if (fixed) {
            md5_update(&ctx, p, line_len);
            any_fixed = 1;
        }
        p += line_len;
    }
    if (!any_fixed)                 /* popa3d would hash nothing here */
        digest_stable_headers(&ctx, headers, len);
    unsigned char full[16];
    md5_final(&ctx, full);
    static const int order[UIDL_DIGEST_LEN] = { 3, 2, 1, 0, 7, 6, 5, 4 };
    for (int i = 0; i < UIDL_DIGEST_LEN; i++)
        digest[i] = full[order[i]];
}

void uidl_format(const unsigned char digest[UIDL_DIGEST_LEN], unsigned dup,
                 char out[UIDL_TEXT_MAX])
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < UIDL_DIGEST_LEN; i++) {
        out[2 * i] = hex[digest[i] >> 4];
        out[2 * i + 1] = hex[digest[i] & 15];
    }
    out[2 * UIDL_DIGEST_LEN] = '\0';
    if (dup > 1)
        snprintf(out + 2 * UIDL_DIGEST_LEN, UIDL_TEXT_MAX - 2 * UIDL_DIGEST_LEN, ".%u", dup);
}

void uidl_format_x(const char *value, size_t len, unsigned dup, char out[UIDL_TEXT_MAX])
{
    if (len > UIDL_X_UIDL_MAX)
        len = UIDL_X_UIDL_MAX;
    memcpy(out, value, len);
    out[len] = '\0';
    if (dup > 1)
        snprintf(out + len, UIDL_TEXT_MAX - len, ".%u", dup);
}

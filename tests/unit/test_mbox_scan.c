/* Unit tests: mbox_scan(), the pure indexer of an mbox (mailbox.h).
 * Offsets are derived from the fixtures in the test, not hard-coded. */
#include <stdlib.h>

#include "testlib.h"
#include "mailbox.h"
#include "netio.h"
#include "uidl.h"

static char err[256];

static int scan(const char *data, size_t len, struct mbox_index *idx)
{
    err[0] = '\0';   /* idx: zeroed by the caller, or an earlier index */
    return mbox_scan(data, len, idx, err, sizeof err);
}

/* Offset of the n-th (0-based) occurrence of needle in hay. */
static size_t find_nth(const char *hay, size_t hay_len, const char *needle, int n)
{
    size_t nl = strlen(needle);
    for (size_t i = 0; i + nl <= hay_len; i++)
        if (memcmp(hay + i, needle, nl) == 0 && n-- == 0)
            return i;
    return (size_t)-1;
}

/* Offset just after the first '\n' at or after off. */
static size_t after_line(const char *s, size_t len, size_t off)
{
    const char *nl = memchr(s + off, '\n', len - off);
    return nl ? (size_t)(nl - s) + 1 : len;
}

/* Expected layout of one message. */
struct want {
    size_t from_off, content_off, content_len, header_len;
    int has_blank;
};

static void check_msg(const char *data, size_t len, const struct mbox_index *idx, size_t i,
                      const struct want *w, int line)
{
    if (i >= idx->count) {
        tl_current_failed = 1;
        printf("  %s:%d: %s: no message %zu (count %zu)\n", __FILE__, line, tl_current, i,
               idx->count);
        return;
    }
    const struct msg *m = &idx->msgs[i];
    int ok = msg_from_off(m) == w->from_off && m->content_off == w->content_off &&
             msg_content_len(idx, i) == w->content_len && m->header_len == w->header_len &&
             m->has_blank == w->has_blank && !m->deleted;
    uint64_t ws = m->content_off + msg_content_len(idx, i) <= len
                      ? wire_size(data + m->content_off, (size_t)msg_content_len(idx, i)) : 0;
    if (m->size != ws)
        ok = 0;
    if (!ok) {
        tl_current_failed = 1;
        printf("  %s:%d: %s: message %zu: from_off %llu/%zu content_off %llu/%zu "
               "content_len %llu/%zu header_len %llu/%zu has_blank %d/%d size %llu/%llu "
               "(got/want)\n",
               __FILE__, line, tl_current, i, (unsigned long long)msg_from_off(m), w->from_off,
               (unsigned long long)m->content_off, w->content_off,
               (unsigned long long)msg_content_len(idx, i), w->content_len,
               (unsigned long long)m->header_len, w->header_len, m->has_blank, w->has_blank,
               (unsigned long long)m->size, (unsigned long long)ws);
    }
}
#define CHECK_MSG(data, len, idx, i, ...) \
    do { struct want w_ = __VA_ARGS__; check_msg((data), (len), (idx), (i), &w_, __LINE__); } while (0)

/* The content of message i. */
#define CONTENT(data, idx, i) ((data) + (idx).msgs[i].content_off), ((size_t)msg_content_len(&(idx), i))
#define CHECK_CONTENT(data, idx, i, want, want_len)                                   \
    tl_check_mem(__FILE__, __LINE__, (data) + (idx).msgs[i].content_off,             \
                 (size_t)msg_content_len(&(idx), i), (want), (want_len))

/* Every message: size is the wire size of its content, spans are ordered. */
static void check_invariants(const char *data, size_t len, const struct mbox_index *idx, int line)
{
    uint64_t prev_end = idx->pseudo_len;
    for (size_t i = 0; i < idx->count; i++) {
        const struct msg *m = &idx->msgs[i];
        int ok = msg_from_off(m) >= prev_end && m->content_off > msg_from_off(m) &&
                 m->content_off + msg_content_len(idx, i) <= len && m->header_len <= msg_content_len(idx, i) &&
                 memcmp(data + msg_from_off(m), "From ", 5) == 0 &&
                 m->size == wire_size(data + m->content_off, (size_t)msg_content_len(idx, i)) &&
                 mbox_dup(idx, i) >= 1;
        if (!ok) {
            tl_current_failed = 1;
            printf("  %s:%d: %s: invariants broken for message %zu\n", __FILE__, line, tl_current,
                   i);
        }
        prev_end = m->content_off + msg_content_len(idx, i);
    }
    if (idx->scanned_size != len) {
        tl_current_failed = 1;
        printf("  %s:%d: %s: scanned_size %llu, expected %zu\n", __FILE__, line, tl_current,
               (unsigned long long)idx->scanned_size, len);
    }
}
#define CHECK_INVARIANTS(data, len, idx) check_invariants((data), (len), (idx), __LINE__)

#define FROM1 "From alice@example.org Mon Jan  1 00:00:00 2024\n"
#define FROM2 "From bob@example.org Tue Jan  2 00:00:00 2024\n"
#define FROM3 "From carol@example.org Wed Jan  3 00:00:00 2024\n"

TEST(empty_file_has_no_messages)
{
    struct mbox_index idx = { 0 };
    CHECK_EQ(scan("", 0, &idx), 0);
    CHECK_EQ(idx.count, 0);
    CHECK_EQ(idx.pseudo_len, 0);
    CHECK_EQ(idx.scanned_size, 0);
    mbox_index_free(&idx);
}

TEST(not_starting_with_from_is_an_error)
{
    static const char *bad[] = {
        "Subject: hi\n\nbody\n",
        "\nFrom a@b Mon Jan  1 00:00:00 2024\n\n",
        "from a@b Mon Jan  1 00:00:00 2024\n\n",
        "From:a@b\n\n",
        "Fro",
        ">From a@b\n",
        " From a@b\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct mbox_index idx = { 0 };
        CHECK_EQ(scan(bad[i], strlen(bad[i]), &idx), -1);
        CHECK(err[0] != '\0');
        mbox_index_free(&idx);
    }
}

TEST(one_message)
{
    const char *d = FROM1 "Received: from x\nSubject: one\n\nbody line\n";
    size_t len = strlen(d);
    struct mbox_index idx = { 0 };
    CHECK_EQ(scan(d, len, &idx), 0);
    CHECK_EQ(idx.count, 1);
    size_t co = strlen(FROM1);
    CHECK_MSG(d, len, &idx, 0, { 0, co, len - co, find_nth(d, len, "body", 0) - co, 1 });
    CHECK_EQ(mbox_dup(&idx, 0), 1);
    CHECK_EQ(idx.msgs[0].size, len - co + 4);   /* 4 LFs become CRLF */
    CHECK_INVARIANTS(d, len, &idx);
    mbox_index_free(&idx);
}

TEST(several_messages)
{
    const char *m1 = FROM1 "Subject: 1\n\nb1\n\n";
    const char *m2 = FROM2 "Subject: 2\n\nb2\nmore\n\n";
    const char *m3 = FROM3 "Subject: 3\n\nb3\n";
    char d[512];
    snprintf(d, sizeof d, "%s%s%s", m1, m2, m3);
    size_t len = strlen(d), l1 = strlen(m1), l2 = strlen(m2), l3 = strlen(m3);
    struct mbox_index idx = { 0 };
    CHECK_EQ(scan(d, len, &idx), 0);
    CHECK_EQ(idx.count, 3);
    /* the separator blank line is not content */
    CHECK_MSG(d, len, &idx, 0, { 0, strlen(FROM1), l1 - strlen(FROM1) - 1, strlen("Subject: 1\n\n"), 1 });
    CHECK_MSG(d, len, &idx, 1, { l1, l1 + strlen(FROM2), l2 - strlen(FROM2) - 1, strlen("Subject: 2\n\n"), 1 });
    CHECK_MSG(d, len, &idx, 2, { l1 + l2, l1 + l2 + strlen(FROM3), l3 - strlen(FROM3), strlen("Subject: 3\n\n"), 1 });
    CHECK_CONTENT(d, idx, 1, "Subject: 2\n\nb2\nmore\n", 20);
    CHECK_INVARIANTS(d, len, &idx);
    mbox_index_free(&idx);
}

TEST(quoted_from_lines_are_content)
{
    const char *d = FROM1 "Subject: q\n\n>From me\n\n>From you\n>>From them\n";
    size_t len = strlen(d);
    struct mbox_index idx = { 0 };
    CHECK_EQ(scan(d, len, &idx), 0);
    CHECK_EQ(idx.count, 1);
    CHECK_CONTENT(d, idx, 0, d + strlen(FROM1), len - strlen(FROM1));
    CHECK_INVARIANTS(d, len, &idx);
    mbox_index_free(&idx);
}

TEST(from_without_blank_line_before_does_not_split)
{
    const char *d = FROM1 "Subject: x\n\nline\nFrom me to you\nend\n";
    size_t len = strlen(d);
    struct mbox_index idx = { 0 };
    CHECK_EQ(scan(d, len, &idx), 0);
    CHECK_EQ(idx.count, 1);
    CHECK_EQ(msg_content_len(&idx, 0), len - strlen(FROM1));
    mbox_index_free(&idx);

    /* CRLF variant */
    const char *c = "From a\r\nSubject: x\r\n\r\nline\r\nFrom me\r\n";
    CHECK_EQ(scan(c, strlen(c), &idx), 0);
    CHECK_EQ(idx.count, 1);
    mbox_index_free(&idx);

    /* a header line that begins with "From " does not split either */
    const char *h = FROM1 "Subject: x\nFrom someone\n\nbody\n";
    CHECK_EQ(scan(h, strlen(h), &idx), 0);
    CHECK_EQ(idx.count, 1);
    mbox_index_free(&idx);
}

TEST(from_after_blank_line_splits)
{
    const char *d = FROM1 "Subject: x\n\nline\n\nFrom me to you\nend\n";
    size_t len = strlen(d);
    struct mbox_index idx = { 0 };
    CHECK_EQ(scan(d, len, &idx), 0);
    CHECK_EQ(idx.count, 2);
    size_t f2 = find_nth(d, len, "From me", 0);
    CHECK_EQ(msg_from_off(&idx.msgs[1]), f2);
    CHECK_EQ(idx.msgs[1].content_off, f2 + strlen("From me to you\n"));
    CHECK_CONTENT(d, idx, 0, "Subject: x\n\nline\n", 17);
    /* "end\n": no blank line at all, so it is all header */
    CHECK_MSG(d, len, &idx, 1, { f2, f2 + strlen("From me to you\n"), strlen("end\n"), strlen("end\n"), 0 });
    CHECK_INVARIANTS(d, len, &idx);
    mbox_index_free(&idx);
}

TEST(crlf_spool)
{
    const char *m1 = "From a@b Mon Jan  1 00:00:00 2024\r\nSubject: 1\r\nReceived: r1\r\n\r\nb1\r\n\r\n";
    const char *m2 = "From c@d Mon Jan  1 00:00:00 2024\r\nSubject: 2\r\n\r\nb2\r\n\r\n";
    char d[512];
    snprintf(d, sizeof d, "%s%s", m1, m2);
    size_t len = strlen(d), l1 = strlen(m1), l2 = strlen(m2);
    struct mbox_index idx = { 0 };
    CHECK_EQ(scan(d, len, &idx), 0);
    CHECK_EQ(idx.count, 2);
    size_t f1 = after_line(d, len, 0), f2 = after_line(d, len, l1);
    CHECK_MSG(d, len, &idx, 0, { 0, f1, l1 - f1 - 2, strlen("Subject: 1\r\nReceived: r1\r\n\r\n"), 1 });
    CHECK_MSG(d, len, &idx, 1, { l1, f2, l1 + l2 - f2 - 2, strlen("Subject: 2\r\n\r\n"), 1 });
    CHECK_CONTENT(d, idx, 1, "Subject: 2\r\n\r\nb2\r\n", 18);
    CHECK_EQ(idx.msgs[1].size, 18);
    /* the UIDL hashes the CRLF header lines */
    unsigned char u[UIDL_DIGEST_LEN];
    uidl_digest("Subject: 1\r\nReceived: r1\r\n", 26, u);
    CHECK_MEM(idx.msgs[0].uid, UIDL_DIGEST_LEN, u, UIDL_DIGEST_LEN);
    CHECK_INVARIANTS(d, len, &idx);
    mbox_index_free(&idx);
}

TEST(last_message_without_final_newline)
{
    const char *d = FROM1 "Subject: x\n\nfirst\n\n" FROM2 "Subject: y\n\nbody";
    size_t len = strlen(d);
    struct mbox_index idx = { 0 };
    CHECK_EQ(scan(d, len, &idx), 0);
    CHECK_EQ(idx.count, 2);
    size_t f2 = find_nth(d, len, FROM2, 0), co = f2 + strlen(FROM2);
    CHECK_MSG(d, len, &idx, 1, { f2, co, len - co, strlen("Subject: y\n\n"), 1 });
    /* 2 LFs as CRLF, +2 for the CRLF the unterminated line gets */
    CHECK_EQ(idx.msgs[1].size, (len - co) + 2 + 2);
    /* only headers, no newline at all */
    const char *h = FROM1 "Subject: x";
    CHECK_EQ(scan(h, strlen(h), &idx), 0);
    CHECK_EQ(idx.count, 1);
    CHECK_MSG(h, strlen(h), &idx, 0, { 0, strlen(FROM1), strlen("Subject: x"), strlen("Subject: x"), 0 });
    CHECK_EQ(idx.msgs[0].size, 12);
    /* a From line alone */
    const char *f = "From a";
    CHECK_EQ(scan(f, strlen(f), &idx), 0);
    CHECK_EQ(idx.count, 1);
    CHECK_EQ(msg_content_len(&idx, 0), 0);
    CHECK_EQ(idx.msgs[0].size, 0);
    mbox_index_free(&idx);
}

TEST(trailing_blank_separator_is_stripped)
{
    const char *d = FROM1 "Subject: x\n\nbody\n\n";
    size_t len = strlen(d), co = strlen(FROM1);
    struct mbox_index idx = { 0 };
    CHECK_EQ(scan(d, len, &idx), 0);
    CHECK_EQ(idx.count, 1);
    CHECK_MSG(d, len, &idx, 0, { 0, co, len - co - 1, strlen("Subject: x\n\n"), 1 });
    /* only one blank line is a separator; a second one is content */
    const char *d2 = FROM1 "Subject: x\n\nbody\n\n\n";
    CHECK_EQ(scan(d2, strlen(d2), &idx), 0);
    CHECK_EQ(msg_content_len(&idx, 0), strlen(d2) - co - 1);
    /* CRLF */
    const char *d3 = "From a\r\nSubject: x\r\n\r\nbody\r\n\r\n";
    CHECK_EQ(scan(d3, strlen(d3), &idx), 0);
    CHECK_CONTENT(d3, idx, 0, "Subject: x\r\n\r\nbody\r\n", 20);
    mbox_index_free(&idx);
}

TEST(eight_bit_and_nul_bytes)
{
    static const char d[] = FROM1 "Subject: \xe9t\xe9\n\nA\0B\xff\x80\n\0\n\n" FROM2 "S: 2\n\n\0\n";
    size_t len = sizeof d - 1;
    struct mbox_index idx = { 0 };
    CHECK_EQ(scan(d, len, &idx), 0);
    CHECK_EQ(idx.count, 2);
    size_t co = strlen(FROM1);
    static const char c1[] = "Subject: \xe9t\xe9\n\nA\0B\xff\x80\n\0\n";
    CHECK_CONTENT(d, idx, 0, c1, sizeof c1 - 1);
    CHECK_EQ(idx.msgs[0].content_off, co);
    CHECK_EQ(idx.msgs[0].size, sizeof c1 - 1 + 4);
    CHECK_CONTENT(d, idx, 1, "S: 2\n\n\0\n", 8);
    CHECK_INVARIANTS(d, len, &idx);
    mbox_index_free(&idx);
}

TEST(very_long_line)
{
    size_t big = 100 * 1024;
    const char *head = FROM1 "Subject: big\n\n";
    const char *tail = "\n\n" FROM2 "Subject: after\n\nz\n";
    size_t len = strlen(head) + big + strlen(tail);
    char *d = malloc(len + 1);
    CHECK(d != NULL);
    if (d == NULL)
        return;
    strcpy(d, head);
    memset(d + strlen(head), 'x', big);
    strcpy(d + strlen(head) + big, tail);
    struct mbox_index idx = { 0 };
    CHECK_EQ(scan(d, len, &idx), 0);
    CHECK_EQ(idx.count, 2);
    size_t co = strlen(FROM1);
    CHECK_MSG(d, len, &idx, 0, { 0, co, strlen("Subject: big\n\n") + big + 1, strlen("Subject: big\n\n"), 1 });
    CHECK_EQ(msg_from_off(&idx.msgs[1]), strlen(head) + big + 2);
    CHECK_INVARIANTS(d, len, &idx);
    mbox_index_free(&idx);
    free(d);
}

#define PSEUDO_BODY                                                               \
    "Date: Mon, 01 Jan 2024 00:00:00 +0000\n"                                     \
    "From: Mail System Internal Data <MAILER-DAEMON@example.org>\n"               \
    "Subject: DON'T DELETE THIS MESSAGE -- FOLDER INTERNAL DATA\n"                \
    "Message-ID: <1704067200@example.org>\n"                                      \
    "%s\n"                                                                        \
    "Status: RO\n"                                                                \
    "\n"                                                                          \
    "This text is part of the internal format of your mail folder, and is not\n" \
    "a real message.  It is created automatically by the mail system software.\n" \
    "If deleted, important folder data will be lost, and it will be re-created\n" \
    "with the data reset to initial values.\n"                                    \
    "\n"

static void check_pseudo_hidden(const char *imap_header, int line)
{
    char p[1024], d[2048];
    snprintf(p, sizeof p, "From MAILER-DAEMON Mon Jan  1 00:00:00 2024\n" PSEUDO_BODY, imap_header);
    const char *m1 = FROM1 "Subject: real 1\n\nb1\n\n";
    const char *m2 = FROM2 "Subject: real 2\n\nb2\n";
    snprintf(d, sizeof d, "%s%s%s", p, m1, m2);
    size_t len = strlen(d), lp = strlen(p), l1 = strlen(m1);
    struct mbox_index idx = { 0 };
    CHECK_EQ(scan(d, len, &idx), 0);
    if (idx.count != 2 || idx.pseudo_len != lp) {
        tl_current_failed = 1;
        printf("  %s:%d: %s: with %s: count %zu (want 2), pseudo_len %llu (want %zu)\n",
               __FILE__, line, tl_current, imap_header, idx.count,
               (unsigned long long)idx.pseudo_len, lp);
    } else {
        CHECK_MSG(d, len, &idx, 0, { lp, lp + strlen(FROM1), l1 - strlen(FROM1) - 1, strlen("Subject: real 1\n\n"), 1 });
        CHECK_EQ(msg_from_off(&idx.msgs[1]), lp + l1);
    }
    CHECK_INVARIANTS(d, len, &idx);
    mbox_index_free(&idx);
}

TEST(uw_imap_pseudo_message_is_hidden)
{
    check_pseudo_hidden("X-IMAP: 1704067200 0000000002", __LINE__);
    check_pseudo_hidden("X-IMAPbase: 1704067200 0000000002", __LINE__);
    check_pseudo_hidden("x-imap: 1704067200 0000000002", __LINE__);
}

TEST(pseudo_message_only_when_first_and_marked)
{
    char p[1024], d[2048];
    struct mbox_index idx = { 0 };
    /* not first: an ordinary message */
    snprintf(p, sizeof p, "From MAILER-DAEMON Mon Jan  1 00:00:00 2024\n" PSEUDO_BODY,
             "X-IMAP: 1 2");
    snprintf(d, sizeof d, "%s%s", FROM1 "Subject: real\n\nb\n\n", p);
    CHECK_EQ(scan(d, strlen(d), &idx), 0);
    CHECK_EQ(idx.count, 2);
    CHECK_EQ(idx.pseudo_len, 0);
    /* no X-IMAP header: an ordinary message */
    snprintf(d, sizeof d, "From MAILER-DAEMON Mon Jan  1 00:00:00 2024\n" PSEUDO_BODY,
             "X-Other: 1 2");
    CHECK_EQ(scan(d, strlen(d), &idx), 0);
    CHECK_EQ(idx.count, 1);
    CHECK_EQ(idx.pseudo_len, 0);
    /* X-IMAP but an ordinary subject */
    const char *o = FROM1 "X-IMAP: 1 2\nSubject: hello\n\nbody\n";
    CHECK_EQ(scan(o, strlen(o), &idx), 0);
    CHECK_EQ(idx.count, 1);
    CHECK_EQ(idx.pseudo_len, 0);
    /* the marker words in the body do not count */
    const char *b = FROM1 "X-IMAP: 1 2\nSubject: hello\n\nFOLDER INTERNAL DATA\n";
    CHECK_EQ(scan(b, strlen(b), &idx), 0);
    CHECK_EQ(idx.count, 1);
    mbox_index_free(&idx);
}

TEST(pseudo_message_alone)
{
    char d[1024];
    snprintf(d, sizeof d, "From MAILER-DAEMON Mon Jan  1 00:00:00 2024\n" PSEUDO_BODY,
             "X-IMAP: 1 0");
    struct mbox_index idx = { 0 };
    CHECK_EQ(scan(d, strlen(d), &idx), 0);
    CHECK_EQ(idx.count, 0);
    CHECK_EQ(idx.pseudo_len, strlen(d));
    mbox_index_free(&idx);
}

TEST(content_length_that_fits_keeps_from_lines_in_body)
{
    const char *body = "line1\n\nFrom inside the body\n";
    char m1[256], d[512];
    snprintf(m1, sizeof m1, FROM1 "Subject: cl\nContent-Length: %zu\n\n%s\n", strlen(body), body);
    snprintf(d, sizeof d, "%s" FROM2 "Subject: next\n\nb2\n", m1);
    size_t len = strlen(d), l1 = strlen(m1), co = strlen(FROM1);
    struct mbox_index idx = { 0 };
    CHECK_EQ(scan(d, len, &idx), 0);
    CHECK_EQ(idx.count, 2);
    size_t hl = find_nth(d, len, "line1", 0) - co;
    CHECK_MSG(d, len, &idx, 0, { 0, co, l1 - co - 1, hl, 1 });
    CHECK_EQ(msg_from_off(&idx.msgs[1]), l1);
    CHECK_INVARIANTS(d, len, &idx);
    mbox_index_free(&idx);

    /* landing exactly on EOF, with and without the trailing separator */
    char e[512];
    snprintf(e, sizeof e, FROM1 "Content-Length: %zu\n\n%s", strlen(body), body);
    CHECK_EQ(scan(e, strlen(e), &idx), 0);
    CHECK_EQ(idx.count, 1);
    CHECK_EQ(msg_content_len(&idx, 0), strlen(e) - co);
    snprintf(e, sizeof e, FROM1 "Content-Length: %zu\n\n%s\n", strlen(body), body);
    CHECK_EQ(scan(e, strlen(e), &idx), 0);
    CHECK_EQ(idx.count, 1);
    CHECK_EQ(msg_content_len(&idx, 0), strlen(e) - co - 1);
    /* CRLF spool: Content-Length counts the CRs */
    const char *cbody = "l1\r\n\r\nFrom x\r\n";
    snprintf(e, sizeof e, "From a\r\nContent-Length: %zu\r\n\r\n%s\r\nFrom b\r\n\r\nz\r\n",
             strlen(cbody), cbody);
    CHECK_EQ(scan(e, strlen(e), &idx), 0);
    CHECK_EQ(idx.count, 2);
    mbox_index_free(&idx);
}

TEST(wrong_content_length_is_ignored)
{
    const char *body = "line1\n\nFrom inside the body\n";
    static const size_t wrong[] = { 0, 5, 6, 7, 20, 27, 29, 1000, 99999999 };
    for (size_t k = 0; k < sizeof wrong / sizeof wrong[0]; k++) {
        char d[512];
        snprintf(d, sizeof d, FROM1 "Content-Length: %zu\n\n%s\n" FROM2 "Subject: next\n\nb2\n",
                 wrong[k], body);
        size_t len = strlen(d);
        struct mbox_index idx = { 0 };
        CHECK_EQ(scan(d, len, &idx), 0);
        /* split at both blank-line From lines, as without the header */
        if (idx.count != 3) {
            tl_current_failed = 1;
            printf("  Content-Length %zu: count %zu, want 3\n", wrong[k], idx.count);
        }
        CHECK_INVARIANTS(d, len, &idx);
        mbox_index_free(&idx);
    }
    /* a malformed value is ignored too */
    const char *d = FROM1 "Content-Length: 12abc\n\nx\n\n" FROM2 "\nb\n";
    struct mbox_index idx = { 0 };
    CHECK_EQ(scan(d, strlen(d), &idx), 0);
    CHECK_EQ(idx.count, 2);
    mbox_index_free(&idx);
}

/* mail.local-style spools may have no blank line before the next From
 * line; an exact Content-Length still tells where the body ends. */
TEST(content_length_landing_on_from_without_blank_line)
{
    const char *body = "text\n\nFrom inside\nend\n";   /* 24 bytes */
    char d[512];
    snprintf(d, sizeof d, FROM1 "Content-Length: %zu\n\n%s" FROM2 "\nb2\n", strlen(body), body);
    struct mbox_index idx = { 0 };
    CHECK_EQ(scan(d, strlen(d), &idx), 0);
    CHECK_EQ(idx.count, 2);
    if (idx.count == 2) {
        const struct msg *m = &idx.msgs[0];
        CHECK_MEM(d + m->content_off + m->header_len, msg_content_len(&idx, 0) - m->header_len, body,
                  strlen(body));
        CHECK(memcmp(d + msg_from_off(&idx.msgs[1]), FROM2, strlen(FROM2)) == 0);
    }
    mbox_index_free(&idx);
}

TEST(header_len_and_has_blank)
{
    struct mbox_index idx = { 0 };
    size_t co = strlen(FROM1);
    /* headers, blank line, body */
    const char *a = FROM1 "A: 1\nB: 2\n\nbody\n";
    CHECK_EQ(scan(a, strlen(a), &idx), 0);
    CHECK_MSG(a, strlen(a), &idx, 0, { 0, co, strlen(a) - co, strlen("A: 1\nB: 2\n\n"), 1 });
    /* headers and a blank line, no body, mid-file */
    const char *b = FROM1 "A: 1\n\n\n" FROM2 "B: 2\n\nx\n";
    CHECK_EQ(scan(b, strlen(b), &idx), 0);
    CHECK_EQ(idx.count, 2);
    CHECK_MSG(b, strlen(b), &idx, 0, { 0, co, strlen("A: 1\n\n"), strlen("A: 1\n\n"), 1 });
    /* headers only, the following blank line is the separator */
    const char *c = FROM1 "A: 1\n\n" FROM2 "B: 2\n\nx\n";
    CHECK_EQ(scan(c, strlen(c), &idx), 0);
    CHECK_EQ(idx.count, 2);
    CHECK_MSG(c, strlen(c), &idx, 0, { 0, co, strlen("A: 1\n"), strlen("A: 1\n"), 0 });
    /* headers only at EOF, with and without the trailing blank line */
    const char *e = FROM1 "A: 1\nB: 2\n";
    CHECK_EQ(scan(e, strlen(e), &idx), 0);
    CHECK_MSG(e, strlen(e), &idx, 0, { 0, co, strlen("A: 1\nB: 2\n"), strlen("A: 1\nB: 2\n"), 0 });
    const char *f = FROM1 "A: 1\nB: 2\n\n";
    CHECK_EQ(scan(f, strlen(f), &idx), 0);
    CHECK_MSG(f, strlen(f), &idx, 0, { 0, co, strlen("A: 1\nB: 2\n"), strlen("A: 1\nB: 2\n"), 0 });
    /* no headers at all: the blank line is the header block */
    const char *g = FROM1 "\nbody\n";
    CHECK_EQ(scan(g, strlen(g), &idx), 0);
    CHECK_MSG(g, strlen(g), &idx, 0, { 0, co, strlen("\nbody\n"), 1, 1 });
    /* empty message between two others */
    const char *h = FROM1 "\n" FROM2 "A: 1\n\nx\n";
    CHECK_EQ(scan(h, strlen(h), &idx), 0);
    CHECK_EQ(idx.count, 2);
    CHECK_MSG(h, strlen(h), &idx, 0, { 0, co, 0, 0, 0 });
    /* CRLF, blank line then body */
    const char *k = "From a\r\nA: 1\r\n\r\nbody\r\n";
    CHECK_EQ(scan(k, strlen(k), &idx), 0);
    CHECK_MSG(k, strlen(k), &idx, 0, { 0, strlen("From a\r\n"), strlen(k) - strlen("From a\r\n"), strlen("A: 1\r\n\r\n"), 1 });
    mbox_index_free(&idx);
}

TEST(size_is_wire_size_of_content)
{
    const char *d = FROM1 "A: 1\r\nB: 2\n\n.dot\r\nmixed\n\n" FROM2 "\n\n\n\n" FROM3 "x\ry\n";
    size_t len = strlen(d);
    struct mbox_index idx = { 0 };
    CHECK_EQ(scan(d, len, &idx), 0);
    CHECK_EQ(idx.count, 3);
    for (size_t i = 0; i < idx.count; i++)
        CHECK_EQ(idx.msgs[i].size, wire_size(CONTENT(d, idx, i)));
    CHECK_EQ(idx.msgs[0].size, strlen("A: 1\r\nB: 2\r\n\r\n.dot\r\nmixed\r\n"));
    CHECK_INVARIANTS(d, len, &idx);
    mbox_index_free(&idx);
}

TEST(duplicates_are_numbered)
{
    const char *dup = FROM1 "Received: from x by y\nMessage-ID: <d@x>\nSubject: dup\n\nsame\n\n";
    const char *other = FROM2 "Received: from z\nSubject: other\n\nelse\n\n";
    char d[1024];
    snprintf(d, sizeof d, "%s%s%s%s", dup, dup, other, dup);
    size_t len = strlen(d);
    struct mbox_index idx = { 0 };
    CHECK_EQ(scan(d, len, &idx), 0);
    CHECK_EQ(idx.count, 4);
    if (idx.count != 4) {
        mbox_index_free(&idx);
        return;
    }
    CHECK_EQ(mbox_dup(&idx, 0), 1);
    CHECK_EQ(mbox_dup(&idx, 1), 2);
    CHECK_EQ(mbox_dup(&idx, 2), 1);
    CHECK_EQ(mbox_dup(&idx, 3), 3);
    CHECK_MEM(idx.msgs[0].uid, UIDL_DIGEST_LEN, idx.msgs[1].uid, UIDL_DIGEST_LEN);
    CHECK_MEM(idx.msgs[0].uid, UIDL_DIGEST_LEN, idx.msgs[3].uid, UIDL_DIGEST_LEN);
    CHECK(memcmp(idx.msgs[0].uid, idx.msgs[2].uid, UIDL_DIGEST_LEN) != 0);
    char t[4][UIDL_TEXT_MAX];
    for (size_t i = 0; i < 4; i++)
        uidl_format(idx.msgs[i].uid, mbox_dup(&idx, i), t[i]);
    for (size_t i = 0; i < 4; i++)
        for (size_t j = i + 1; j < 4; j++)
            CHECK(strcmp(t[i], t[j]) != 0);
    CHECK(strlen(t[0]) == 16);
    CHECK(strncmp(t[1], t[0], 16) == 0 && strcmp(t[1] + 16, ".2") == 0);
    CHECK(strncmp(t[3], t[0], 16) == 0 && strcmp(t[3] + 16, ".3") == 0);
    /* the digest is that of the header block */
    unsigned char u[UIDL_DIGEST_LEN];
    const char *h = "Received: from x by y\nMessage-ID: <d@x>\nSubject: dup\n";
    uidl_digest(h, strlen(h), u);
    CHECK_MEM(idx.msgs[0].uid, UIDL_DIGEST_LEN, u, UIDL_DIGEST_LEN);
    mbox_index_free(&idx);
}

TEST(many_duplicates)
{
    const char *one = FROM1 "Subject: same\n\nx\n\n";
    size_t l = strlen(one), n = 300;
    char *d = malloc(l * n + 1);
    CHECK(d != NULL);
    if (d == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        memcpy(d + i * l, one, l);
    struct mbox_index idx = { 0 };
    CHECK_EQ(scan(d, l * n, &idx), 0);
    CHECK_EQ(idx.count, n);
    for (size_t i = 0; i < idx.count; i++)
        CHECK_EQ(mbox_dup(&idx, i), i + 1);
    mbox_index_free(&idx);
    free(d);
}

TEST(status_header_does_not_change_uidl)
{
    const char *a = FROM1 "Received: from mx by host\nDate: Mon, 1 Jan 2024\nSubject: s\n\nbody\n\n";
    const char *b = FROM2 "Received: from mx by host\nDate: Mon, 1 Jan 2024\nSubject: s\nStatus: RO\nX-Status: A\n\nbody\n";
    char d[1024];
    snprintf(d, sizeof d, "%s%s", a, b);
    struct mbox_index idx = { 0 };
    CHECK_EQ(scan(d, strlen(d), &idx), 0);
    CHECK_EQ(idx.count, 2);
    CHECK_MEM(idx.msgs[0].uid, UIDL_DIGEST_LEN, idx.msgs[1].uid, UIDL_DIGEST_LEN);
    CHECK_EQ(mbox_dup(&idx, 1), 2);
    /* scanned alone, each gets the same digest */
    struct mbox_index ia = { 0 }, ib = { 0 };
    CHECK_EQ(scan(a, strlen(a), &ia), 0);
    CHECK_EQ(scan(b, strlen(b), &ib), 0);
    CHECK(ia.count == 1 && ib.count == 1 &&
          memcmp(ia.msgs[0].uid, ib.msgs[0].uid, UIDL_DIGEST_LEN) == 0);
    mbox_index_free(&ia);
    mbox_index_free(&ib);
    mbox_index_free(&idx);
}

TEST(uidl_stable_when_earlier_message_removed)
{
    const char *m1 = FROM1 "Received: one\n\nb1\n\n";
    const char *m2 = FROM2 "Received: two\nStatus: O\n\nb2\n\n";
    const char *m3 = FROM3 "Subject: no fixed headers\n\nb3\n";
    char all[1024], rest[1024];
    snprintf(all, sizeof all, "%s%s%s", m1, m2, m3);
    snprintf(rest, sizeof rest, "%s%s", m2, m3);
    struct mbox_index a = { 0 }, b = { 0 };
    CHECK_EQ(scan(all, strlen(all), &a), 0);
    CHECK_EQ(scan(rest, strlen(rest), &b), 0);
    CHECK(a.count == 3 && b.count == 2);
    if (a.count == 3 && b.count == 2) {
        for (size_t i = 0; i < 2; i++) {
            char ta[UIDL_TEXT_MAX], tb[UIDL_TEXT_MAX];
            uidl_format(a.msgs[i + 1].uid, mbox_dup(&a, i + 1), ta);
            uidl_format(b.msgs[i].uid, mbox_dup(&b, i), tb);
            CHECK(strcmp(ta, tb) == 0);
        }
        CHECK_EQ(b.msgs[0].size, a.msgs[1].size);
    }
    mbox_index_free(&a);
    mbox_index_free(&b);
}

TEST(rescan_frees_previous_index)
{
    const char *d = FROM1 "A: 1\n\nx\n\n" FROM2 "A: 2\n\ny\n";
    struct mbox_index idx = { 0 };
    CHECK_EQ(scan(d, strlen(d), &idx), 0);
    CHECK_EQ(idx.count, 2);
    /* scanning again into the same index replaces it (ASan checks leaks) */
    CHECK_EQ(mbox_scan(d, strlen(d), &idx, err, sizeof err), 0);
    CHECK_EQ(idx.count, 2);
    CHECK_EQ(mbox_scan("", 0, &idx, err, sizeof err), 0);
    CHECK_EQ(idx.count, 0);
    mbox_index_free(&idx);
    /* the prefix hash tells contents apart */
    CHECK(mbox_hash("abc", 3) != mbox_hash("abd", 3));
    CHECK(mbox_hash("abc", 3) == mbox_hash("abc", 3));
    CHECK(mbox_hash("", 0) != mbox_hash("\0", 1));
}

/* ---- uidl_source = x-uidl (MBOX_SCAN_X_UIDL) ---- */

static int scan_x(const char *data, size_t len, struct mbox_index *idx)
{
    err[0] = '\0';
    return mbox_scan_opts(data, len, MBOX_SCAN_X_UIDL, idx, err, sizeof err);
}

static void check_uidl_text(const struct mbox_index *idx, size_t i, const char *want, int line)
{
    char out[UIDL_TEXT_MAX];
    memset(out, 'Z', sizeof out);
    mbox_uidl_text(idx, i, out);
    if (strcmp(out, want) != 0) {
        tl_current_failed = 1;
        printf("  %s:%d: %s: message %zu UIDL \"%s\", expected \"%s\"\n", __FILE__, line,
               tl_current, i, out, want);
    }
}
#define CHECK_UIDL_TEXT(idx, i, want) check_uidl_text((idx), (i), (want), __LINE__)

/* The digest-based text of a header block, as without X-UIDL. */
static void digest_text(const char *headers, unsigned dup, char out[UIDL_TEXT_MAX])
{
    unsigned char d[UIDL_DIGEST_LEN];
    uidl_digest(headers, strlen(headers), d);
    uidl_format(d, dup, out);
}

TEST(x_uidl_header_is_the_unique_id)
{
    static const char long58[] = "0123456789012345678901234567890123456789012345678901234567";
    static const char long59[] = "01234567890123456789012345678901234567890123456789012345678";
    char d[2048];
    snprintf(d, sizeof d,
             FROM1 "Received: r1\nX-UIDL: 4c2a8d0f3b1e\n\nb\n\n"            /* 0: taken */
             FROM1 "Received: r2\nx-uidl:\t<abc@def>  \n\nb\n\n"           /* 1: any case, trimmed */
             FROM1 "Received: r3\nX-UIDL: two words\n\nb\n\n"             /* 2: invalid */
             FROM1 "Received: r4\nX-UIDL:\n\nb\n\n"                       /* 3: empty */
             FROM1 "Received: r5\nX-UIDL: %s\n\nb\n\n"                    /* 4: 58: taken */
             FROM1 "Received: r6\nX-UIDL: %s\n\nb\n\n"                    /* 5: 59: too long */
             FROM1 "Received: r7\nX-UIDL: first\nX-UIDL: second\n\nb\n\n" /* 6: the first */
             FROM1 "Received: r8\nX-UIDL: 4c2a8d0f3b1e\n\nb\n\n"            /* 7: dup of 0 */
             FROM1 "Received: r9\nSubject: none\n\nb\n\n"                 /* 8: no header */
             FROM1 "Received: r10\nX-UIDL: bad\x01" "ctl\n\nb\n\n"        /* 9: control byte */
             "From x\r\nReceived: r11\r\nX-UIDL: crlf-id\r\n\r\nb\r\n", /* 10: CRLF */
             long58, long59);
    size_t len = strlen(d);
    struct mbox_index idx = { 0 };
    CHECK_EQ(scan_x(d, len, &idx), 0);
    CHECK_EQ(idx.count, 11);
    if (idx.count == 11) {
        char t[UIDL_TEXT_MAX];
        CHECK_UIDL_TEXT(&idx, 0, "4c2a8d0f3b1e");
        CHECK_UIDL_TEXT(&idx, 1, "<abc@def>");
        digest_text("Received: r3\nX-UIDL: two words\n", 1, t);
        CHECK_UIDL_TEXT(&idx, 2, t);
        digest_text("Received: r4\nX-UIDL:\n", 1, t);
        CHECK_UIDL_TEXT(&idx, 3, t);
        CHECK_UIDL_TEXT(&idx, 4, long58);
        char h6[200];
        snprintf(h6, sizeof h6, "Received: r6\nX-UIDL: %s\n", long59);
        digest_text(h6, 1, t);
        CHECK_UIDL_TEXT(&idx, 5, t);
        CHECK_UIDL_TEXT(&idx, 6, "first");
        CHECK_UIDL_TEXT(&idx, 7, "4c2a8d0f3b1e.2");
        digest_text("Received: r9\nSubject: none\n", 1, t);
        CHECK_UIDL_TEXT(&idx, 8, t);
        digest_text("Received: r10\nX-UIDL: bad\x01" "ctl\n", 1, t);
        CHECK_UIDL_TEXT(&idx, 9, t);
        CHECK_UIDL_TEXT(&idx, 10, "crlf-id");
    }
    CHECK_INVARIANTS(d, len, &idx);
    mbox_index_free(&idx);

    /* without the flag, X-UIDL: is an ordinary header */
    CHECK_EQ(scan(d, len, &idx), 0);
    if (idx.count == 11) {
        char t[UIDL_TEXT_MAX];
        digest_text("Received: r1\nX-UIDL: 4c2a8d0f3b1e\n", 1, t);
        CHECK_UIDL_TEXT(&idx, 0, t);
    }
    mbox_index_free(&idx);
}

/* RFC 1939 section 7: a unique-id is unique within the maildrop.  With
 * X-UIDL values (which come from the message, possibly from its sender)
 * next to digests and ".N" suffixes, no two texts may be equal. */
TEST(uidl_texts_are_unique_within_mailbox)
{
    char t0[UIDL_TEXT_MAX];
    digest_text("Received: plain\n", 1, t0);
    char d[2048];
    snprintf(d, sizeof d,
             FROM1 "Received: plain\n\nb\n\n"             /* digest text t0 */
             FROM1 "Received: x\nX-UIDL: %s\n\nb\n\n"      /* the same text as X-UIDL */
             FROM1 "Received: y\nX-UIDL: abc\n\nb\n\n"
             FROM1 "Received: z\nX-UIDL: abc\n\nb\n\n"     /* "abc.2" */
             FROM1 "Received: w\nX-UIDL: abc.2\n\nb\n\n"   /* "abc.2" again? */
             FROM1 "Received: plain\n\nb\n\n"             /* t0 + ".2" */
             FROM1 "Received: v\nX-UIDL: %s.2\n\nb\n\n",   /* that again? */
             t0, t0);
    struct mbox_index idx = { 0 };
    CHECK_EQ(scan_x(d, strlen(d), &idx), 0);
    CHECK_EQ(idx.count, 7);
    char texts[16][UIDL_TEXT_MAX];
    for (size_t i = 0; i < idx.count && i < 16; i++)
        mbox_uidl_text(&idx, i, texts[i]);
    for (size_t i = 0; i < idx.count && i < 16; i++)
        for (size_t j = i + 1; j < idx.count && j < 16; j++)
            if (strcmp(texts[i], texts[j]) == 0) {
                tl_current_failed = 1;
                printf("  messages %zu and %zu share the UIDL \"%s\"\n", i + 1, j + 1,
                       texts[i]);
            }
    /* every text is a valid unique-id: 1..70 characters 0x21..0x7e */
    for (size_t i = 0; i < idx.count && i < 16; i++) {
        size_t n = strlen(texts[i]);
        CHECK(n >= 1 && n <= 70);
        for (size_t k = 0; k < n; k++)
            CHECK(texts[i][k] > 0x20 && texts[i][k] < 0x7f);
    }
    mbox_index_free(&idx);
}

int main(void)
{
    RUN(empty_file_has_no_messages);
    RUN(not_starting_with_from_is_an_error);
    RUN(one_message);
    RUN(several_messages);
    RUN(quoted_from_lines_are_content);
    RUN(from_without_blank_line_before_does_not_split);
    RUN(from_after_blank_line_splits);
    RUN(crlf_spool);
    RUN(last_message_without_final_newline);
    RUN(trailing_blank_separator_is_stripped);
    RUN(eight_bit_and_nul_bytes);
    RUN(very_long_line);
    RUN(uw_imap_pseudo_message_is_hidden);
    RUN(pseudo_message_only_when_first_and_marked);
    RUN(pseudo_message_alone);
    RUN(content_length_that_fits_keeps_from_lines_in_body);
    RUN(wrong_content_length_is_ignored);
    RUN(content_length_landing_on_from_without_blank_line);
    RUN(header_len_and_has_blank);
    RUN(size_is_wire_size_of_content);
    RUN(duplicates_are_numbered);
    RUN(many_duplicates);
    RUN(status_header_does_not_change_uidl);
    RUN(uidl_stable_when_earlier_message_removed);
    RUN(rescan_frees_previous_index);
    RUN(x_uidl_header_is_the_unique_id);
    RUN(uidl_texts_are_unique_within_mailbox);
    return test_report();
}

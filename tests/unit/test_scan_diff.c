/* Unit tests: the single-pass, multi-threaded mbox_scan() against the
 * plain scanner it replaced (ref_scan.h), on random spools built from the
 * shapes that matter (blank lines, From lines in bodies, CR LF, bare CR,
 * Content-Length right and wrong, X-UIDL, the UW-IMAP pseudo-message,
 * long lines), cut into parts at every place a thread could start. */
#include <stdlib.h>

#include "testlib.h"
#include "ref_scan.h"

/* A byte buffer that grows. */
struct buf {
    char *p;
    size_t len, cap;
};

static void put(struct buf *b, const char *s, size_t n)
{
    if (n == 0)
        return;
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        if (b->p == NULL)
            abort();
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void puts_(struct buf *b, const char *s)
{
    put(b, s, strlen(s));
}

static uint64_t rng_state;

static unsigned rnd(unsigned n)
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (unsigned)(rng_state >> 33) % n;
}

static void body_line(struct buf *b, const char *eol)
{
    static const char *const lines[] = {
        "", "From the desk of someone", ">From quoted", ".", "..dot", "F", "Fr", "From",
        "plain text that is long enough to fill a vector or two of bytes, and more", "\r",
        "tab\there", "8-bit \xc3\xa9 \xff\x80", "NUL \0 byte", "From x@y Mon Jan  1 00:00:00 2024",
    };
    const char *l = lines[rnd(sizeof lines / sizeof lines[0])];
    put(b, l, l == lines[12] ? 11 : strlen(l));
    puts_(b, eol);
}

/* One random message (From line, headers, body, maybe a separator). */
static void message(struct buf *b, int first)
{
    const char *eol = rnd(6) == 0 ? "\r\n" : "\n";
    puts_(b, "From sender@example.org Mon Jan  1 00:00:00 2024");
    puts_(b, eol);
    struct buf body = { 0 };
    unsigned nbody = rnd(12);
    for (unsigned i = 0; i < nbody; i++)
        body_line(&body, rnd(8) == 0 ? "\r\n" : eol);
    static const char *const headers[] = {
        "Received: from a by b", "Date: Mon, 1 Jan 2024", "Message-ID: <x@y>",
        "Delivered-To: u@h", "X-Delivery-ID: 42", "Subject: hello", "X-UIDL: abc123",
        "X-UIDL: 0123456789abcdef0123456789abcdef", "Status: RO", " continued", "\tcontinued",
        "Content-Length: 3", "Subject: DON'T DELETE THIS MESSAGE -- FOLDER INTERNAL DATA",
        "X-IMAP: 1 2",
    };
    unsigned nhead = rnd(6);
    for (unsigned i = 0; i < nhead; i++) {
        const char *h = headers[rnd(sizeof headers / sizeof headers[0])];
        if (!first && (h == headers[12] || h == headers[13]))
            h = headers[0];
        puts_(b, h);
        puts_(b, eol);
    }
    switch (rnd(5)) {
    case 0: {       /* a Content-Length that fits, or is off by a little */
        char cl[64];
        snprintf(cl, sizeof cl, "Content-Length: %zu", body.len + (rnd(3) == 0 ? rnd(3) : 0));
        puts_(b, cl);
        puts_(b, eol);
        break;
    }
    case 1:
        break;      /* no blank line after the headers */
    default:
        break;
    }
    if (rnd(5) != 1)
        puts_(b, eol);
    if (body.len)
        put(b, body.p, body.len);
    free(body.p);
    if (rnd(4) != 0)
        puts_(b, eol);  /* the separator */
}

static void random_spool(struct buf *b, unsigned nmsg)
{
    b->len = 0;
    for (unsigned i = 0; i < nmsg; i++)
        message(b, i == 0);
    if (rnd(4) == 0 && b->len > 0)
        b->len--;       /* no final newline */
}

/* The index must be the reference's, field by field. */
static int same_index(const char *data, size_t len, unsigned flags)
{
    struct ref_index want = { 0 };
    struct mbox_index got = { 0 };
    char e1[160] = "", e2[160] = "";
    int r1 = ref_scan_opts(data, len, flags, &want, e1, sizeof e1);
    int r2 = mbox_scan_opts(data, len, flags, &got, e2, sizeof e2);
    int same = r1 == r2 && (r1 != 0 || strcmp(e1, e2) == 0);
    if (same && r1 == 0) {
        same = want.count == got.count && want.pseudo_len == got.pseudo_len &&
               got.scanned_size == len && got.prefix_hash == mbox_prefix_hash(data, len);
        for (size_t i = 0; same && i < got.count; i++) {
            const struct ref_msg *w = &want.msgs[i];
            const struct msg *g = &got.msgs[i];
            char tw[UIDL_TEXT_MAX], tg[UIDL_TEXT_MAX];
            if (flags & MBOX_SCAN_X_UIDL) {
                if (want.xuidl[i])
                    uidl_format_x(want.xuidl_text + want.xuidl[i] - 1,
                                  strlen(want.xuidl_text + want.xuidl[i] - 1), w->dup, tw);
                else
                    uidl_format(w->uid, w->dup, tw);
            } else {
                uidl_format(w->uid, w->dup, tw);
            }
            mbox_uidl_text(&got, i, tg);
            same = w->from_off == msg_from_off(g) && w->content_off == g->content_off &&
                   w->content_len == msg_content_len(&got, i) && w->header_len == g->header_len &&
                   w->size == g->size && w->has_blank == g->has_blank && strcmp(tw, tg) == 0;
            if (!same)
                printf("  message %zu of %zu differs (from_off %llu)\n", i, got.count,
                       (unsigned long long)w->from_off);
        }
    } else if (!same) {
        printf("  results differ: %d \"%s\" vs %d \"%s\"\n", r1, e1, r2, e2);
    }
    ref_index_free(&want);
    mbox_index_free(&got);
    return same;
}

TEST(random_spools_match_the_reference)
{
    struct buf b = { 0 };
    rng_state = 1;
    int bad = 0;
    for (int round = 0; round < 3000 && bad < 3; round++) {
        random_spool(&b, 1 + rnd(6));
        if (!same_index(b.p, b.len, 0) || !same_index(b.p, b.len, MBOX_SCAN_X_UIDL)) {
            bad++;
            printf("  round %d: %zu bytes\n", round, b.len);
        }
    }
    CHECK_EQ(bad, 0);
    free(b.p);
}

/* Every number of parts, with no minimum size: each cut lands somewhere
 * else in each random spool, in headers, bodies and Content-Length
 * bodies that a cut can fall into. */
TEST(parts_cut_anywhere_match_the_reference)
{
    struct buf b = { 0 };
    rng_state = 2;
    int bad = 0;
    for (unsigned parts = 2; parts <= 4; parts++) {
        mbox_scan_tune(parts, 0);
        for (int round = 0; round < 2000 && bad < 3; round++) {
            random_spool(&b, 1 + rnd(12));
            if (!same_index(b.p, b.len, 0)) {
                bad++;
                printf("  %u parts, round %d: %zu bytes\n", parts, round, b.len);
            }
        }
    }
    mbox_scan_tune(0, 32u << 20);
    CHECK_EQ(bad, 0);
    free(b.p);
}

/* A Content-Length body holding unquoted From lines across the middle,
 * where a 2-part cut falls: the parts do not chain and the scan must fall
 * back to one pass. */
TEST(content_length_across_a_cut_falls_back)
{
    struct buf b = { 0 };
    rng_state = 3;
    while (b.len < (1u << 20))
        message(&b, b.len == 0);
    struct buf body = { 0 };
    while (body.len < (256u << 10))
        puts_(&body, "\nFrom inside@body Mon Jan  1 00:00:00 2024\nline\n");
    char cl[64];
    snprintf(cl, sizeof cl, "Content-Length: %zu\n\n", body.len);
    size_t big_start = b.len;
    puts_(&b, "From big@example.org Mon Jan  1 00:00:00 2024\nSubject: big\n");
    puts_(&b, cl);
    put(&b, body.p, body.len);
    puts_(&b, "\n");
    size_t big_len = b.len - big_start;
    while (b.len < big_start + big_len + (1u << 20))
        message(&b, 0);
    size_t big_end = big_start + body.len;
    CHECK(b.len / 2 > big_start && b.len / 2 < big_end);   /* the cut is in it */
    mbox_scan_tune(2, 0);
    CHECK(same_index(b.p, b.len, 0));
    mbox_scan_tune(4, 0);
    CHECK(same_index(b.p, b.len, 0));
    mbox_scan_tune(0, 32u << 20);
    free(body.p);
    free(b.p);
}

TEST(prefix_hash_sees_every_byte)
{
    char data[300];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (char)('a' + i % 26);
    uint64_t h = mbox_prefix_hash(data, sizeof data);
    for (size_t i = 0; i < sizeof data; i++) {
        data[i] ^= 1;
        CHECK(mbox_prefix_hash(data, sizeof data) != h);
        data[i] ^= 1;
    }
    CHECK(mbox_prefix_hash(data, sizeof data - 1) != h);
    CHECK(mbox_prefix_hash("", 0) != mbox_prefix_hash("\0", 1));
    /* Swapping two words changes it too (each word is keyed by place). */
    char swapped[300];
    memcpy(swapped, data, sizeof data);
    memcpy(swapped, data + 8, 8);
    memcpy(swapped + 8, data, 8);
    CHECK(mbox_prefix_hash(swapped, sizeof swapped) != h);
}

int main(void)
{
    RUN(random_spools_match_the_reference);
    RUN(parts_cut_anywhere_match_the_reference);
    RUN(content_length_across_a_cut_falls_back);
    RUN(prefix_hash_sees_every_byte);
    return test_report();
}

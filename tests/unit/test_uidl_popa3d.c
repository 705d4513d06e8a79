/*
 * Unit tests: our UIDLs against the real popa3d 1.0.3's, byte for byte.
 *
 * tests/fixtures/uidl/NAME.mbox are small mailboxes; NAME.expected holds,
 * per message, "N UIDL SIZE" as the Debian popa3d 1.0.3 binary answered
 * UIDL and LIST for that mailbox (made by tests/tools/popa3d-uidls.sh,
 * which must be re-run, as root, whenever a fixture changes; "#" lines
 * are comments).  make runs the tests from the top of the source tree, so
 * the fixtures are found by the relative path FIXTURE_DIR.
 *
 * Every fixture is one test.  A UIDL must equal popa3d's exactly, except
 * for the two deliberate differences documented in uidl.h, checked
 * separately:
 *   - popa3d hashes no bytes at all for a message without any of the
 *     counted header fields (its UIDL is then MD5("") = d98c1dd404b2008f
 *     for every such message); we digest the header block instead, so
 *     ours must differ from that, be unique in the mailbox, and be the
 *     same with the message alone in a mailbox;
 *   - popa3d gives identical messages the same UIDL; we print the n-th
 *     occurrence with the suffix ".n", so ours must be popa3d's + ".n".
 *   - spools with CRLF line ends (crlf_fixtures[]): popa3d takes only
 *     "\n" for a blank line, so it misreads them (07: all messages as
 *     one; 15: body lines hashed as headers); uidl.h documents this, and
 *     for these fixtures ours are only checked to be unique and stable.
 * LIST sizes must be equal too, except where size_quirks[] lists one of
 * popa3d's own miscounts.  Where popa3d's message split differs from ours
 * (it sees another number of messages) nothing can be compared: that
 * fails, with both lists shown.
 *
 * What popa3d 1.0.3 hashes, as its binary shows (mailbox.c, disassembled,
 * and every fixture): lines end at LF only; the header block ends at the
 * first empty line ("\n" alone: a "\r\n" line is not empty to it); each
 * header line is picked by a switch on its first byte, with cases D d M m
 * R r X only, then compared case-insensitively with "Delivered-To:",
 * "Date:", "Message-ID:", "Received:" or "X-Delivery-ID:" (so a field
 * spelled "x-delivery-id:" is never counted); continuation lines follow
 * their field.
 */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>

#include "testlib.h"
#include "mailbox.h"
#include "uidl.h"

#define FIXTURE_DIR "tests/fixtures/uidl"
#define POPA3D_NOTHING_HASHED "d98c1dd404b2008f"   /* MD5 of no bytes */

/* Fixture pairs that must give identical UIDL lists: the same mailbox
 * before and after a mail reader added Status:/X-Status:/X-UID: etc. */
static const char *const same_uidls[][2] = {
    { "09-status-new", "10-status-read" },
};

/* Deliberate difference 3: popa3d misreads CRLF blank lines. */
static const char *const crlf_fixtures[] = { "07-crlf", "15-crlf-blank-line" };

static int is_crlf_fixture(const char *name)
{
    for (size_t i = 0; i < sizeof crlf_fixtures / sizeof crlf_fixtures[0]; i++)
        if (strcmp(name, crlf_fixtures[i]) == 0)
            return 1;
    return 0;
}

struct expected {
    unsigned long n;
    char uidl[72];
    unsigned long long size;
};

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (buf == NULL)
            break;
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap)
            break;
        char *bigger = realloc(buf, cap * 2);
        if (bigger == NULL) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = bigger;
        cap *= 2;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

/* Reads NAME.expected; returns the number of entries, or -1 (printed). */
static long load_expected(const char *path, struct expected **out)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        printf("  cannot open %s: %s (run tests/tools/popa3d-uidls.sh as root)\n", path,
               strerror(errno));
        return -1;
    }
    struct expected *e = NULL;
    long count = 0, alloc = 0;
    char line[256];
    int lineno = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        lineno++;
        if (line[0] == '#' || line[0] == '\n')
            continue;
        if (count == alloc) {
            alloc = alloc ? alloc * 2 : 16;
            struct expected *bigger = realloc(e, (size_t)alloc * sizeof *e);
            if (bigger == NULL)
                break;
            e = bigger;
        }
        struct expected *x = &e[count];
        if (sscanf(line, "%lu %71s %llu", &x->n, x->uidl, &x->size) != 3 ||
            x->n != (unsigned long)count + 1) {
            printf("  %s:%d: malformed line: %s", path, lineno, line);
            free(e);
            fclose(f);
            return -1;
        }
        count++;
    }
    fclose(f);
    *out = e;
    return count;
}

/* Our UIDLs of a mailbox, as printed; NULL (and a failure) on error. */
static char (*our_uidls(const char *data, size_t len, struct mbox_index *idx))[UIDL_TEXT_MAX]
{
    char err[256] = "";
    if (mbox_scan(data, len, idx, err, sizeof err) != 0) {
        tl_current_failed = 1;
        printf("  %s: mbox_scan failed: %s\n", tl_current, err);
        return NULL;
    }
    char (*u)[UIDL_TEXT_MAX] = calloc(idx->count + 1, sizeof *u);
    if (u == NULL) {
        tl_current_failed = 1;
        return NULL;
    }
    for (size_t i = 0; i < idx->count; i++)
        uidl_format(idx->msgs[i].uid, mbox_dup(idx, i), u[i]);
    return u;
}

/* The header block of message m (without the blank line that ends it). */
static void header_block(const char *data, const struct msg *m, const char **p, size_t *n)
{
    *p = data + m->content_off;
    *n = (size_t)m->header_len;
    if (m->has_blank)
        *n -= (*n >= 2 && (*p)[*n - 2] == '\r') ? 2 : 1;
}

/*
 * Where popa3d's LIST size is not the number of octets it sends, or it
 * sends what is not in the spool, and ours is the exact count of what we
 * send (RFC 1939 section 5).  Found by comparing popa3d's LIST with its
 * own RETR output (see tests/tools/popa3d-uidls.sh for the setup):
 */
#define QUIRK_SEPARATOR "popa3d keeps the blank line after a header block with no body " \
    "(it is the separator before the next From line) and sends it"
#define QUIRK_CRLF "popa3d turns each CR LF of the spool into CR CR LF on the wire"
#define QUIRK_NO_EOL "popa3d appends CR LF to an unterminated last line but counts 1 octet"
static const struct size_quirk {
    const char *fixture;
    size_t msg;             /* 1-based */
    long long delta;        /* popa3d's LIST size - ours */
    const char *why;
} size_quirks[] = {
    { "14-size-edges", 1, +2, QUIRK_SEPARATOR },
    { "14-size-edges", 3, +1, QUIRK_CRLF },
    { "14-size-edges", 4, -1, QUIRK_NO_EOL },
    { "15-crlf-blank-line", 1, +1, QUIRK_CRLF },
};

static const struct size_quirk *size_quirk(const char *fixture, size_t msg)
{
    for (size_t i = 0; i < sizeof size_quirks / sizeof size_quirks[0]; i++)
        if (size_quirks[i].msg == msg && strcmp(size_quirks[i].fixture, fixture) == 0)
            return &size_quirks[i];
    return NULL;
}

static int sizes_differ;    /* LIST sizes that differ by a listed quirk */

static void check_fixture(const char *name)
{
    char path[512];
    size_t len;
    snprintf(path, sizeof path, FIXTURE_DIR "/%s.mbox", name);
    char *data = slurp(path, &len);
    struct expected *e = NULL;
    snprintf(path, sizeof path, FIXTURE_DIR "/%s.expected", name);
    long ne = load_expected(path, &e);
    struct mbox_index idx = { 0 }, again = { 0 };
    char (*u)[UIDL_TEXT_MAX] = NULL, (*u2)[UIDL_TEXT_MAX] = NULL;
    CHECK(data != NULL);
    CHECK(ne >= 0);
    if (data == NULL || ne < 0)
        goto out;
    u = our_uidls(data, len, &idx);
    u2 = our_uidls(data, len, &again);
    if (u == NULL || u2 == NULL)
        goto out;
    if (is_crlf_fixture(name)) {
        printf("  note: %s: CRLF spool, popa3d misreads it; ours checked for uniqueness and "
               "stability only\n", name);
        for (size_t i = 0; i < idx.count; i++) {
            for (size_t j = 0; j < i; j++)
                if (strcmp(u[j], u[i]) == 0) {
                    tl_current_failed = 1;
                    printf("  %s: messages %zu and %zu share %s\n", name, j + 1, i + 1, u[i]);
                }
            if (strcmp(u[i], u2[i]) != 0)
                tl_current_failed = 1;
        }
        CHECK(idx.count >= 2);
        goto out;
    }

    if ((size_t)ne != idx.count) {
        tl_current_failed = 1;
        printf("  %s: popa3d sees %ld messages, we see %zu; no UIDL can be compared\n",
               name, ne, idx.count);
        for (size_t i = 0; i < idx.count || i < (size_t)ne; i++)
            printf("    %3zu  popa3d %-18s %8llu   ours %-20s %8llu\n", i + 1,
                   i < (size_t)ne ? e[i].uidl : "-", i < (size_t)ne ? e[i].size : 0ULL,
                   i < idx.count ? u[i] : "-",
                   i < idx.count ? (unsigned long long)idx.msgs[i].size : 0ULL);
        goto out;
    }

    for (size_t i = 0; i < idx.count; i++) {
        const struct msg *m = &idx.msgs[i];
        unsigned seen = 1;          /* occurrence of popa3d's UIDL so far */
        for (size_t j = 0; j < i; j++)
            seen += strcmp(e[j].uidl, e[i].uidl) == 0;
        if (strcmp(e[i].uidl, POPA3D_NOTHING_HASHED) == 0) {
            /* Deliberate difference 1: we digest the header block instead
             * (uidl.h says which of its lines); ours must not be popa3d's
             * empty digest, and must not depend on the other messages. */
            if (strncmp(u[i], POPA3D_NOTHING_HASHED, 16) == 0) {
                tl_current_failed = 1;
                printf("  %s: message %zu: ours is popa3d's empty digest %s\n", name, i + 1,
                       u[i]);
            }
            struct mbox_index alone = { 0 };
            char (*ua)[UIDL_TEXT_MAX] = our_uidls(data + msg_from_off(m),
                (size_t)(i + 1 < idx.count ? msg_from_off(&idx.msgs[i + 1]) : len) - msg_from_off(m),
                &alone);
            if (ua != NULL && (alone.count != 1 || strncmp(ua[0], u[i], 16) != 0)) {
                tl_current_failed = 1;
                printf("  %s: message %zu alone in a mailbox: %s, in this one %s\n", name,
                       i + 1, alone.count ? ua[0] : "(none)", u[i]);
            }
            free(ua);
            mbox_index_free(&alone);
        } else if (seen > 1) {
            /* Deliberate difference 2: the n-th copy gets ".n". */
            char want[UIDL_TEXT_MAX + 16];
            snprintf(want, sizeof want, "%s.%u", e[i].uidl, seen);
            if (strcmp(u[i], want) != 0) {
                tl_current_failed = 1;
                printf("  %s: message %zu (copy %u of popa3d's %s): ours %s, want %s\n",
                       name, i + 1, seen, e[i].uidl, u[i], want);
            }
        } else if (strcmp(u[i], e[i].uidl) != 0) {
            tl_current_failed = 1;
            const char *p;
            size_t n;
            header_block(data, m, &p, &n);
            printf("  %s: message %zu: UIDL %s, popa3d %s; header block:\n    \"",
                   name, i + 1, u[i], e[i].uidl);
            tl_print_escaped(p, n);
            printf("\"\n");
        }
        /* Unique within the mailbox, and the same on every scan. */
        for (size_t j = 0; j < i; j++)
            if (strcmp(u[j], u[i]) == 0) {
                tl_current_failed = 1;
                printf("  %s: messages %zu and %zu share the UIDL %s\n", name, j + 1, i + 1,
                       u[i]);
            }
        if (strcmp(u[i], u2[i]) != 0) {
            tl_current_failed = 1;
            printf("  %s: message %zu: UIDL %s, then %s on a rescan\n", name, i + 1, u[i],
                   u2[i]);
        }
        const struct size_quirk *q = size_quirk(name, i + 1);
        long long delta = (long long)e[i].size - (long long)m->size;
        if (q != NULL && delta == q->delta) {
            sizes_differ++;
            printf("  note: %s: message %zu: LIST size %llu, popa3d %llu: %s\n", name, i + 1,
                   (unsigned long long)m->size, e[i].size, q->why);
        } else if (delta != 0 || q != NULL) {
            tl_current_failed = 1;
            printf("  %s: message %zu: LIST size %llu, popa3d %llu%s\n", name, i + 1,
                   (unsigned long long)m->size, e[i].size,
                   q ? " (not the listed popa3d quirk)" : "");
        }
    }
out:
    free(u);
    free(u2);
    mbox_index_free(&idx);
    mbox_index_free(&again);
    free(e);
    free(data);
}

/* The UIDL list of a fixture, one string, for the cross-fixture checks. */
static char *uidl_list(const char *name)
{
    char path[512];
    size_t len;
    snprintf(path, sizeof path, FIXTURE_DIR "/%s.mbox", name);
    char *data = slurp(path, &len);
    if (data == NULL)
        return NULL;
    struct mbox_index idx = { 0 };
    char (*u)[UIDL_TEXT_MAX] = our_uidls(data, len, &idx);
    char *list = u ? calloc(idx.count + 1, UIDL_TEXT_MAX + 1) : NULL;
    for (size_t i = 0; list != NULL && i < idx.count; i++) {
        strcat(list, u[i]);
        strcat(list, " ");
    }
    free(u);
    mbox_index_free(&idx);
    free(data);
    return list;
}

TEST(status_headers_do_not_change_uidls)
{
    for (size_t i = 0; i < sizeof same_uidls / sizeof same_uidls[0]; i++) {
        char *a = uidl_list(same_uidls[i][0]), *b = uidl_list(same_uidls[i][1]);
        CHECK(a != NULL && b != NULL);
        if (a != NULL && b != NULL) {
            CHECK(a[0] != '\0');
            CHECK_MEM(b, strlen(b), a, strlen(a));
        }
        free(a);
        free(b);
    }
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(void)
{
    DIR *d = opendir(FIXTURE_DIR);
    if (d == NULL) {
        printf("FAIL fixtures: cannot open %s: %s (tests run from the top of the "
               "source tree)\n", FIXTURE_DIR, strerror(errno));
        tl_failed++;
        return test_report();
    }
    char **names = NULL;
    size_t count = 0;
    struct dirent *ent;
    while ((ent = readdir(d)) != NULL) {
        size_t n = strlen(ent->d_name);
        if (n <= 5 || strcmp(ent->d_name + n - 5, ".mbox") != 0)
            continue;
        char **bigger = realloc(names, (count + 1) * sizeof *names);
        if (bigger == NULL)
            break;
        names = bigger;
        names[count] = strndup(ent->d_name, n - 5);
        if (names[count] != NULL)
            count++;
    }
    closedir(d);
    if (count == 0) {
        printf("FAIL fixtures: no *.mbox in %s\n", FIXTURE_DIR);
        tl_failed++;
    }
    qsort(names, count, sizeof *names, by_name);
    for (size_t i = 0; i < count; i++) {
        /* RUN(), with the fixture's name as the test's. */
        tl_current = names[i];
        tl_current_failed = tl_current_skipped = 0;
        check_fixture(names[i]);
        if (tl_current_failed)
            tl_failed++;
        else
            tl_passed++;
        printf("%s %s\n", tl_current_failed ? "FAIL" : "ok  ", names[i]);
        free(names[i]);
    }
    free(names);
    RUN(status_headers_do_not_change_uidls);
    if (sizes_differ)
        printf("note: %d LIST sizes differ from popa3d's by its known quirks\n", sizes_differ);
    return test_report();
}

/*
 * testlib.h - the smallest test framework that does the job (Dovecot's
 * test_begin/test_assert idea): a test is a function, CHECK records a
 * failure with file:line and goes on, and the run ends with one line
 *     RESULT passed=N failed=M skipped=K
 * counted in tests, which tests/run-tests.sh adds up.
 *
 *     TEST(parses_digits) { CHECK(parse_uint("12", 2, 99, &n) == 0); }
 *     int main(void) { RUN(parses_digits); return test_report(); }
 */
#ifndef MBOXPOP3D_TESTLIB_H
#define MBOXPOP3D_TESTLIB_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tl_passed, tl_failed, tl_skipped, tl_current_failed, tl_current_skipped;
static const char *tl_current;

#define TEST(name) static void name(void)

#define RUN(name)                                                         \
    do {                                                                  \
        tl_current = #name;                                               \
        tl_current_failed = tl_current_skipped = 0;                       \
        name();                                                           \
        if (tl_current_skipped)                                           \
            tl_skipped++;                                                 \
        else if (tl_current_failed)                                       \
            tl_failed++;                                                  \
        else                                                              \
            tl_passed++;                                                  \
        printf("%s %s\n", tl_current_skipped ? "skip" :                   \
               tl_current_failed ? "FAIL" : "ok  ", #name);               \
    } while (0)

#define CHECK(cond)                                                       \
    do {                                                                  \
        if (!(cond)) {                                                    \
            tl_current_failed = 1;                                        \
            printf("  %s:%d: %s: CHECK(%s) failed\n", __FILE__, __LINE__, \
                   tl_current, #cond);                                    \
        }                                                                 \
    } while (0)

#define CHECK_EQ(a, b)                                                    \
    do {                                                                  \
        unsigned long long tl_a = (unsigned long long)(a);                \
        unsigned long long tl_b = (unsigned long long)(b);                \
        if (tl_a != tl_b) {                                               \
            tl_current_failed = 1;                                        \
            printf("  %s:%d: %s: %s == %llu, expected %s == %llu\n",      \
                   __FILE__, __LINE__, tl_current, #a, tl_a, #b, tl_b);   \
        }                                                                 \
    } while (0)

/* Byte strings, shown escaped when they differ. */
#define CHECK_MEM(got, got_len, want, want_len)                           \
    tl_check_mem(__FILE__, __LINE__, (got), (got_len), (want), (want_len))

#define SKIP(why)                                                         \
    do {                                                                  \
        tl_current_skipped = 1;                                           \
        printf("  %s: skipped: %s\n", tl_current, (why));                 \
        return;                                                           \
    } while (0)

static inline void tl_print_escaped(const char *p, size_t n)
{
    for (size_t i = 0; i < n && i < 400; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '\n') printf("\\n");
        else if (c == '\r') printf("\\r");
        else if (c < 0x20 || c >= 0x7f) printf("\\x%02x", c);
        else putchar(c);
    }
    if (n > 400) printf("...(%zu bytes)", n);
}

static inline void tl_check_mem(const char *file, int line, const void *got, size_t got_len,
                                const void *want, size_t want_len)
{
    if (got_len == want_len && (got_len == 0 || memcmp(got, want, got_len) == 0))
        return;
    tl_current_failed = 1;
    printf("  %s:%d: %s: bytes differ\n    got:  \"", file, line, tl_current);
    tl_print_escaped(got, got_len);
    printf("\"\n    want: \"");
    tl_print_escaped(want, want_len);
    printf("\"\n");
}

/* A fresh directory for a test program's files: dir (64 bytes) gets
 * /tmp/mboxpop3d-test-NAME.XXXXXX made; 0, or -1 (said why). */
static inline int tl_make_tmpdir(char dir[64], const char *name)
{
    snprintf(dir, 64, "/tmp/mboxpop3d-test-%s.XXXXXX", name);
    if (mkdtemp(dir) != NULL)
        return 0;
    perror("mkdtemp");
    return -1;
}

static inline void tl_remove_tmpdir(const char *dir)
{
    char cmd[96];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        printf("  could not remove %s\n", dir);
}

/* A fixed-seed xorshift generator: the same "random" cases every run. */
static inline uint64_t tl_rand(void)
{
    static uint64_t state = 0x9e3779b97f4a7c15ULL;
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
}

static inline int test_report(void)
{
    printf("RESULT passed=%d failed=%d skipped=%d\n", tl_passed, tl_failed, tl_skipped);
    return tl_failed ? 1 : 0;
}

#endif

/* Unit tests: strict number parsing and the small helpers in util.c. */
#include "testlib.h"
#include "util.h"

TEST(parse_uint_accepts_plain_digits)
{
    uint64_t n = 99;
    CHECK(parse_uint("0", 1, 10, &n) == 0);
    CHECK_EQ(n, 0);
    CHECK(parse_uint("42", 2, 100, &n) == 0);
    CHECK_EQ(n, 42);
    CHECK(parse_uint("007", 3, 100, &n) == 0);
    CHECK_EQ(n, 7);
    CHECK(parse_uint("18446744073709551615", 20, UINT64_MAX, &n) == 0);
    CHECK_EQ(n, UINT64_MAX);
}

TEST(parse_uint_rejects_everything_else)
{
    uint64_t n = 5;
    const char *bad[] = { "", "+1", "-1", " 1", "1 ", "1a", "0x10", "1.0", "١" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(parse_uint(bad[i], strlen(bad[i]), UINT64_MAX, &n) != 0);
    CHECK_EQ(n, 5);   /* untouched on failure */
}

TEST(parse_uint_checks_overflow_and_max)
{
    uint64_t n;
    CHECK(parse_uint("18446744073709551616", 20, UINT64_MAX, &n) != 0);
    CHECK(parse_uint("99999999999999999999999", 23, UINT64_MAX, &n) != 0);
    CHECK(parse_uint("101", 3, 100, &n) != 0);
    CHECK(parse_uint("100", 3, 100, &n) == 0);
    CHECK(parse_uint_str("2147483648", 0x7fffffff, &n) != 0);
}

TEST(parse_uint_respects_length)
{
    uint64_t n;
    CHECK(parse_uint("123xyz", 3, 1000, &n) == 0);
    CHECK_EQ(n, 123);
}

TEST(consttime_equal_compares)
{
    CHECK(consttime_equal("abc", 3, "abc", 3));
    CHECK(!consttime_equal("abc", 3, "abd", 3));
    CHECK(!consttime_equal("abc", 3, "abcd", 4));
    CHECK(consttime_equal("", 0, "", 0));
}

TEST(strlcpy_checked_truncates_and_says_so)
{
    char buf[4];
    CHECK(strlcpy_checked(buf, "abc", sizeof buf) == 0);
    CHECK(strcmp(buf, "abc") == 0);
    CHECK(strlcpy_checked(buf, "abcd", sizeof buf) != 0);
    CHECK(strcmp(buf, "abc") == 0);
}

TEST(base64_decodes_rfc4648_vectors)
{
    static const char *const pairs[][2] = {
        { "", "" }, { "Zg==", "f" }, { "Zm8=", "fo" }, { "Zm9v", "foo" },
        { "Zm9vYg==", "foob" }, { "Zm9vYmE=", "fooba" }, { "Zm9vYmFy", "foobar" },
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        unsigned char out[16];
        size_t n = 99;
        CHECK(base64_decode(pairs[i][0], strlen(pairs[i][0]), out, sizeof out, &n) == 0);
        CHECK_MEM(out, n, pairs[i][1], strlen(pairs[i][1]));
    }
    unsigned char out[8];
    size_t n;
    CHECK(base64_decode("AHVzZXIAcGFzcw==", 16, out, sizeof out, &n) == -1);  /* too long */
    unsigned char big[16];
    CHECK(base64_decode("AHVzZXIAcGFzcw==", 16, big, sizeof big, &n) == 0);
    CHECK_MEM(big, n, "\0user\0pass", 10);
}

TEST(base64_is_strict)
{
    const char *bad[] = { "Zg", "Zg=", "Z===", "Zm9v\n", "Zm 9v", "Zh==", "Zm9=",
                          "=Zm9", "Zg==Zg==", "Zm9v!A==", "-_==" };
    unsigned char out[16];
    size_t n;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (base64_decode(bad[i], strlen(bad[i]), out, sizeof out, &n) != -1) {
            tl_current_failed = 1;
            printf("  accepted \"%s\"\n", bad[i]);
        }
}

int main(void)
{
    RUN(parse_uint_accepts_plain_digits);
    RUN(parse_uint_rejects_everything_else);
    RUN(parse_uint_checks_overflow_and_max);
    RUN(parse_uint_respects_length);
    RUN(consttime_equal_compares);
    RUN(strlcpy_checked_truncates_and_says_so);
    RUN(base64_decodes_rfc4648_vectors);
    RUN(base64_is_strict);
    return test_report();
}

/* Unit tests: RFC 1321 MD5 (md5.h) and the popa3d-style UIDL digest and
 * its text form (uidl.h). */
#include <stdlib.h>

#include "testlib.h"
#include "md5.h"
#include "uidl.h"

static void md5_hex(const void *data, size_t len, char out[33])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char d[16];
    struct md5_ctx ctx;
    md5_init(&ctx);
    md5_update(&ctx, data, len);
    md5_final(&ctx, d);
    for (int i = 0; i < 16; i++) {
        out[2 * i] = hex[d[i] >> 4];
        out[2 * i + 1] = hex[d[i] & 15];
    }
    out[32] = '\0';
}

static void md5_raw(const void *data, size_t len, unsigned char d[16])
{
    struct md5_ctx ctx;
    md5_init(&ctx);
    md5_update(&ctx, data, len);
    md5_final(&ctx, d);
}

/* RFC 1321 appendix A.5 */
static const struct {
    const char *in, *md5;
} rfc1321_suite[] = {
    { "", "d41d8cd98f00b204e9800998ecf8427e" },
    { "a", "0cc175b9c0f1b6a831c399e269772661" },
    { "abc", "900150983cd24fb0d6963f7d28e17f72" },
    { "message digest", "f96b697d7cb7938d525a2f31aaf161d0" },
    { "abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b" },
    { "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
      "d174ab98d277d9f5a5611c2c9f419d9f" },
    { "1234567890123456789012345678901234567890"
      "1234567890123456789012345678901234567890",
      "57edf4a22be3c955ac49da2e2107b67a" },
};

TEST(md5_rfc1321_test_suite)
{
    char hex[33];
    for (size_t i = 0; i < sizeof rfc1321_suite / sizeof rfc1321_suite[0]; i++) {
        md5_hex(rfc1321_suite[i].in, strlen(rfc1321_suite[i].in), hex);
        CHECK_MEM(hex, 32, rfc1321_suite[i].md5, 32);
    }
}

/* Lengths around the padding boundaries (56 mod 64); reference values from
 * an independent implementation (Python hashlib) over n bytes of 'a'. */
TEST(md5_padding_boundaries)
{
    static const struct {
        size_t n;
        const char *md5;
    } v[] = {
        { 55, "ef1772b6dff9a122358552954ad0df65" },
        { 56, "3b0c8ac703f828b04c6c197006d17218" },
        { 57, "652b906d60af96844ebd21b674f35e93" },
        { 63, "b06521f39153d618550606be297466d5" },
        { 64, "014842d480b571495a4a0363793f7367" },
        { 65, "c743a45e0d2e6a95cb859adae0248435" },
        { 119, "8a7bd0732ed6a28ce75f6dabc90e1613" },
        { 120, "5f61c0ccad4cac44c75ff505e1f1e537" },
        { 127, "020406e1d05cdc2aa287641f7ae2cc39" },
        { 128, "e510683b3f5ffe4093d021808bc6ff70" },
        { 129, "b325dc1c6f5e7a2b7cf465b9feab7948" },
    };
    char buf[200], hex[33];
    memset(buf, 'a', sizeof buf);
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        md5_hex(buf, v[i].n, hex);
        CHECK_MEM(hex, 32, v[i].md5, 32);
    }
}

TEST(md5_incremental_split_at_every_offset)
{
    const char *s = rfc1321_suite[6].in;   /* 80 bytes: crosses a block */
    size_t n = strlen(s);
    unsigned char want[16], got[16];
    md5_raw(s, n, want);
    for (size_t a = 0; a <= n; a++) {
        struct md5_ctx ctx;
        md5_init(&ctx);
        md5_update(&ctx, s, a);
        md5_update(&ctx, s + a, n - a);
        md5_final(&ctx, got);
        CHECK_MEM(got, 16, want, 16);
    }
    /* three pieces, including empty updates */
    for (size_t a = 0; a <= n; a += 7)
        for (size_t b = a; b <= n; b += 5) {
            struct md5_ctx ctx;
            md5_init(&ctx);
            md5_update(&ctx, s, a);
            md5_update(&ctx, "", 0);
            md5_update(&ctx, s + a, b - a);
            md5_update(&ctx, s + b, n - b);
            md5_final(&ctx, got);
            CHECK_MEM(got, 16, want, 16);
        }
    /* byte by byte */
    struct md5_ctx ctx;
    md5_init(&ctx);
    for (size_t i = 0; i < n; i++)
        md5_update(&ctx, s + i, 1);
    md5_final(&ctx, got);
    CHECK_MEM(got, 16, want, 16);
}

TEST(md5_one_megabyte_one_shot_vs_chunked)
{
    size_t n = 1 << 20;
    unsigned char *buf = malloc(n);
    CHECK(buf != NULL);
    if (buf == NULL)
        return;
    uint32_t x = 12345;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        buf[i] = (unsigned char)(x >> 16);
    }
    char hex[33];
    md5_hex(buf, n, hex);
    /* reference: Python hashlib over the same generator */
    CHECK_MEM(hex, 32, "5eac8d0ba620099beaec1fec522a6be1", 32);

    unsigned char want[16], got[16];
    md5_raw(buf, n, want);
    static const size_t chunks[] = { 1, 3, 63, 64, 65, 1000, 4096, 65537 };
    for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
        struct md5_ctx ctx;
        md5_init(&ctx);
        for (size_t off = 0; off < n; off += chunks[c]) {
            size_t take = n - off < chunks[c] ? n - off : chunks[c];
            md5_update(&ctx, buf + off, take);
        }
        md5_final(&ctx, got);
        CHECK_MEM(got, 16, want, 16);
    }
    /* irregular chunk sizes */
    struct md5_ctx ctx;
    md5_init(&ctx);
    size_t off = 0, step = 1;
    while (off < n) {
        size_t take = n - off < step ? n - off : step;
        md5_update(&ctx, buf + off, take);
        off += take;
        step = step * 7 % 9973 + 1;
    }
    md5_final(&ctx, got);
    CHECK_MEM(got, 16, want, 16);
    free(buf);
}

/* ---- UIDL ---- */

/* What uidl_digest() must return for the given hashed bytes. */
static void expected_digest(const char *hashed, size_t len, unsigned char out[UIDL_DIGEST_LEN])
{
    unsigned char d[16];
    md5_raw(hashed, len, d);
    static const int order[UIDL_DIGEST_LEN] = { 3, 2, 1, 0, 7, 6, 5, 4 };
    for (int i = 0; i < UIDL_DIGEST_LEN; i++)
        out[i] = d[order[i]];
}

static void check_digest(const char *headers, const char *hashed, int line)
{
    unsigned char got[UIDL_DIGEST_LEN], want[UIDL_DIGEST_LEN];
    memset(got, 0xAA, sizeof got);
    uidl_digest(headers, strlen(headers), got);
    expected_digest(hashed, strlen(hashed), want);
    if (memcmp(got, want, sizeof got) != 0)
        printf("  (digest mismatch for headers at line %d)\n", line);
    CHECK_MEM(got, sizeof got, want, sizeof want);
}
#define CHECK_DIGEST(h, hashed) check_digest((h), (hashed), __LINE__)

TEST(uidl_digest_hashes_fixed_headers_only)
{
    const char *headers =
        "Return-Path: <a@example.org>\n"
        "Date: Mon, 1 Jan 2024 00:00:00 +0000\n"
        "Message-ID: <1@example.org>\n"
        "Subject: Received: not a header name\n"
        "Received: from a.example.org\n"
        "\tby b.example.org; Mon, 1 Jan 2024\n"
        "X-Received: by something\n"
        "Received-SPF: pass\n"
        "Received: from c.example.org\n"
        "\tby d.example.org\n"
        "Delivered-To: u@example.org\n"
        "Date: Tue, 2 Jan 2024 00:00:00 +0000\n"
        "Message-ID: <2@example.org>\n"
        "Status: RO\n"
        "X-Delivery-ID: 42\n"
        " continued\n"
        "Delivered-To: v@example.org\n";
    const char *hashed =
        "Date: Mon, 1 Jan 2024 00:00:00 +0000\n"
        "Message-ID: <1@example.org>\n"
        "Received: from a.example.org\n"
        "\tby b.example.org; Mon, 1 Jan 2024\n"
        "Delivered-To: u@example.org\n"
        "X-Delivery-ID: 42\n"
        " continued\n"
        "Delivered-To: v@example.org\n";
    CHECK_DIGEST(headers, hashed);
}

TEST(uidl_digest_names_case_insensitive)
{
    const char *headers =
        "DATE: x\n"
        "message-id: <m>\n"
        "subject: s\n"
        "RECEIVED: from r\n"
        "  more\n"
        "received: second\n"
        "delivered-to: d\n"
        "x-delivery-id: 7\n"
        "X-DELIVERY-ID: 8\n";
    /* popa3d: any case, except that X-Delivery-ID needs a capital X. */
    const char *hashed =
        "DATE: x\n"
        "message-id: <m>\n"
        "RECEIVED: from r\n"
        "  more\n"
        "delivered-to: d\n"
        "X-DELIVERY-ID: 8\n";
    CHECK_DIGEST(headers, hashed);
}

TEST(uidl_digest_keeps_crlf_line_ends)
{
    CHECK_DIGEST("Subject: a\r\nReceived: from x\r\n\tby y\r\nStatus: O\r\n",
                 "Received: from x\r\n\tby y\r\n");
}

TEST(uidl_digest_without_fixed_headers_hashes_whole_block)
{
    const char *h = "From: a@b\nSubject: hello\nX-Foo: bar\n  baz\n";
    CHECK_DIGEST(h, h);
    CHECK_DIGEST("", "");
    /* Date after a Received is not fixed, but the Received is */
    CHECK_DIGEST("Received: r\nDate: d\n", "Received: r\n");
}

TEST(uidl_digest_ignores_non_fixed_changes)
{
    unsigned char a[UIDL_DIGEST_LEN], b[UIDL_DIGEST_LEN];
    const char *h1 = "Received: from x\nSubject: s\nStatus: RO\nX-Status: A\n";
    const char *h2 = "Received: from x\nSubject: s (edited)\nX-UID: 5\n";
    uidl_digest(h1, strlen(h1), a);
    uidl_digest(h2, strlen(h2), b);
    CHECK_MEM(a, sizeof a, b, sizeof b);
    const char *h3 = "Received: from y\nSubject: s\nStatus: RO\nX-Status: A\n";
    uidl_digest(h3, strlen(h3), b);
    CHECK(memcmp(a, b, sizeof a) != 0);
}

TEST(uidl_format_is_16_lowercase_hex)
{
    unsigned char d[UIDL_DIGEST_LEN] = { 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef };
    char out[UIDL_TEXT_MAX];
    memset(out, 'Z', sizeof out);
    uidl_format(d, 0, out);
    CHECK(strcmp(out, "0123456789abcdef") == 0);
    memset(out, 'Z', sizeof out);
    uidl_format(d, 1, out);
    CHECK(strcmp(out, "0123456789abcdef") == 0);
    uidl_format(d, 2, out);
    CHECK(strcmp(out, "0123456789abcdef.2") == 0);
    uidl_format(d, 17, out);
    CHECK(strcmp(out, "0123456789abcdef.17") == 0);
    uidl_format(d, 4294967295u, out);
    CHECK(strcmp(out, "0123456789abcdef.4294967295") == 0);
    CHECK(strlen(out) < UIDL_TEXT_MAX);

    unsigned char ff[UIDL_DIGEST_LEN];
    memset(ff, 0xff, sizeof ff);
    uidl_format(ff, 1, out);
    CHECK(strcmp(out, "ffffffffffffffff") == 0);
}

TEST(uidl_text_matches_md5_word_order)
{
    /* The digest of "" headers is MD5("") = d41d8cd9 8f00b204 ...; popa3d
     * prints the first two little-endian words: d98c1dd4 04b2008f. */
    unsigned char d[UIDL_DIGEST_LEN];
    char out[UIDL_TEXT_MAX];
    uidl_digest("", 0, d);
    uidl_format(d, 1, out);
    CHECK(strcmp(out, "d98c1dd404b2008f") == 0);
    for (size_t i = 0; i < 16; i++)
        CHECK((out[i] >= '0' && out[i] <= '9') || (out[i] >= 'a' && out[i] <= 'f'));
    uidl_format(d, 2, out);
    CHECK(strcmp(out, "d98c1dd404b2008f.2") == 0);
}

int main(void)
{
    RUN(md5_rfc1321_test_suite);
    RUN(md5_padding_boundaries);
    RUN(md5_incremental_split_at_every_offset);
    RUN(md5_one_megabyte_one_shot_vs_chunked);
    RUN(uidl_digest_hashes_fixed_headers_only);
    RUN(uidl_digest_names_case_insensitive);
    RUN(uidl_digest_keeps_crlf_line_ends);
    RUN(uidl_digest_without_fixed_headers_hashes_whole_block);
    RUN(uidl_digest_ignores_non_fixed_changes);
    RUN(uidl_format_is_16_lowercase_hex);
    RUN(uidl_text_matches_md5_word_order);
    return test_report();
}

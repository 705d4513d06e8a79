/* Unit tests: PROXY protocol v1/v2 headers and trusted-peer CIDR lists. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proxy.h"
#include "testlib.h"

static const char v2sig[] = "\r\n\r\n\0\r\nQUIT\n";

static int parse(const void *buf, size_t len, struct proxy_info *pi)
{
    memset(pi, 0, sizeof *pi);
    return proxy_parse(buf, len, pi);
}

static const char *src_text(const struct proxy_info *pi, char *out, size_t size)
{
    const void *a = pi->src.ss_family == AF_INET
                        ? (const void *)&((const struct sockaddr_in *)&pi->src)->sin_addr
                        : (const void *)&((const struct sockaddr_in6 *)&pi->src)->sin6_addr;
    return inet_ntop(pi->src.ss_family, a, out, (socklen_t)size);
}

TEST(v1_tcp4_and_tcp6)
{
    struct proxy_info pi;
    char text[64];
    const char *h4 = "PROXY TCP4 192.0.2.7 192.0.2.1 56324 110\r\nUSER x\r\n";
    CHECK_EQ(parse(h4, strlen(h4), &pi), strlen(h4) - strlen("USER x\r\n"));
    CHECK(!pi.use_peer);
    CHECK(strcmp(src_text(&pi, text, sizeof text), "192.0.2.7") == 0);
    CHECK_EQ(ntohs(((struct sockaddr_in *)&pi.src)->sin_port), 56324);
    const char *h6 = "PROXY TCP6 2001:db8::7 2001:db8::1 1 110\r\n";
    CHECK_EQ(parse(h6, strlen(h6), &pi), strlen(h6));
    CHECK(strcmp(src_text(&pi, text, sizeof text), "2001:db8::7") == 0);
    const char *unk = "PROXY UNKNOWN\r\n";
    CHECK_EQ(parse(unk, strlen(unk), &pi), strlen(unk));
    CHECK(pi.use_peer);
}

TEST(v1_incomplete_needs_more)
{
    struct proxy_info pi;
    const char *h = "PROXY TCP4 192.0.2.7 192.0.2.1 56324 110\r\n";
    for (size_t n = 1; n < strlen(h); n++)
        CHECK_EQ(parse(h, n, &pi), 0);
}

TEST(v1_invalid)
{
    struct proxy_info pi;
    const char *bad[] = {
        "PROXY TCP4 192.0.2.7 192.0.2.1 56324 110\n",          /* LF alone */
        "PROXY TCP4 192.0.2.7  192.0.2.1 56324 110\r\n",       /* two spaces */
        "PROXY TCP4 192.0.2.7 192.0.2.1 056324 110\r\n",       /* leading zero */
        "PROXY TCP4 192.0.2.7 192.0.2.1 65536 110\r\n",        /* port range */
        "PROXY TCP4 2001:db8::7 192.0.2.1 1 110\r\n",          /* wrong family */
        "PROXY TCP4 192.0.2.7 192.0.2.1 1 110 extra\r\n",
        "PROXY UDP4 192.0.2.7 192.0.2.1 1 110\r\n",
        "USER alice\r\n",
        "proxy TCP4 192.0.2.7 192.0.2.1 1 110\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int r = parse(bad[i], strlen(bad[i]), &pi);
        if (r != -1) {
            tl_current_failed = 1;
            printf("  accepted (%d): %s", r, bad[i]);
        }
    }
    char longline[200];
    memset(longline, 'x', sizeof longline);
    memcpy(longline, "PROXY UNKNOWN ", 14);
    CHECK_EQ(parse(longline, sizeof longline, &pi), (unsigned long long)-1);
}

TEST(v2_tcp4_local_and_limits)
{
    struct proxy_info pi;
    unsigned char h[16 + 12 + 4];
    memcpy(h, v2sig, 12);
    h[12] = 0x21;
    h[13] = 0x11;
    h[14] = 0;
    h[15] = 12;
    unsigned char addrs[12] = { 192, 0, 2, 7, 192, 0, 2, 1, 0xdc, 0x04, 0, 110 };
    memcpy(h + 16, addrs, 12);
    memcpy(h + 28, "QUIT", 4);
    CHECK_EQ(parse(h, sizeof h, &pi), 28);
    char text[64];
    CHECK(!pi.use_peer && strcmp(src_text(&pi, text, sizeof text), "192.0.2.7") == 0);
    for (size_t n = 0; n < 28; n++)
        CHECK_EQ(parse(h, n, &pi), 0);
    h[12] = 0x20;                       /* LOCAL: keep the real peer */
    CHECK_EQ(parse(h, 28, &pi), 28);
    CHECK(pi.use_peer);
    h[12] = 0x31;                       /* version 3 */
    CHECK_EQ(parse(h, 28, &pi), (unsigned long long)-1);
    h[12] = 0x21;
    h[15] = 4;                          /* too short for TCP4 */
    CHECK_EQ(parse(h, 28, &pi), (unsigned long long)-1);
    h[14] = 0xff;                       /* over PROXY_V2_MAX_LEN */
    CHECK_EQ(parse(h, 28, &pi), (unsigned long long)-1);
}

TEST(proxy_read_takes_exactly_the_header)
{
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    const char *msg = "PROXY TCP4 198.51.100.9 192.0.2.1 4000 110\r\nCAPA\r\n";
    CHECK(write(sv[0], msg, strlen(msg)) == (ssize_t)strlen(msg));
    struct proxy_info pi;
    CHECK_EQ(proxy_read(sv[1], 1000, &pi), 0);
    char rest[16] = "";
    CHECK_EQ(read(sv[1], rest, sizeof rest - 1), 6);
    CHECK(strncmp(rest, "CAPA\r\n", 6) == 0);
    /* garbage from a trusted peer is refused; silence times out */
    CHECK(write(sv[0], "HELLO\r\n", 7) == 7);
    CHECK_EQ(proxy_read(sv[1], 1000, &pi), (unsigned long long)-1);
    int sv2[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv2) == 0);
    CHECK_EQ(proxy_read(sv2[1], 200, &pi), (unsigned long long)-1);
    close(sv[0]);
    close(sv[1]);
    close(sv2[0]);
    close(sv2[1]);
}

static struct sockaddr_storage addr(const char *text)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    if (strchr(text, ':')) {
        ss.ss_family = AF_INET6;
        inet_pton(AF_INET6, text, &((struct sockaddr_in6 *)&ss)->sin6_addr);
    } else {
        ss.ss_family = AF_INET;
        inet_pton(AF_INET, text, &((struct sockaddr_in *)&ss)->sin_addr);
    }
    return ss;
}

TEST(cidr_lists)
{
    const char *list = "192.0.2.0/24 10.1.2.3, 2001:db8::/32 ::1/128";
    struct sockaddr_storage a;
    a = addr("192.0.2.200");
    CHECK(cidr_list_match(list, &a));
    a = addr("192.0.3.1");
    CHECK(!cidr_list_match(list, &a));
    a = addr("10.1.2.3");
    CHECK(cidr_list_match(list, &a));
    a = addr("10.1.2.4");
    CHECK(!cidr_list_match(list, &a));
    a = addr("2001:db8:1::5");
    CHECK(cidr_list_match(list, &a));
    a = addr("::1");
    CHECK(cidr_list_match(list, &a));
    a = addr("::ffff:192.0.2.9");         /* v4-mapped counts as IPv4 */
    CHECK(cidr_list_match(list, &a));
    a = addr("127.0.0.1");
    CHECK(!cidr_list_match("", &a));
    CHECK(!cidr_list_match(NULL, &a));
    char err[160];
    CHECK(cidr_list_check(list, err, sizeof err) == 0);
    CHECK(cidr_list_check("192.0.2.0/33", err, sizeof err) != 0);
    CHECK(cidr_list_check("example.org", err, sizeof err) != 0);
    CHECK(cidr_list_check("::1/129", err, sizeof err) != 0);
}

int main(void)
{
    RUN(v1_tcp4_and_tcp6);
    RUN(v1_incomplete_needs_more);
    RUN(v1_invalid);
    RUN(v2_tcp4_local_and_limits);
    RUN(proxy_read_takes_exactly_the_header);
    RUN(cidr_lists);
    return test_report();
}

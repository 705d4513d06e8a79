/* proxy.c - PROXY protocol v1/v2 headers and trusted-peer CIDR lists. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proxy.h"
#include "util.h"

static const unsigned char v2_sig[12] = { 0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                          0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A };

#define V1_MAX 107    /* spec section 2.1: the longest line, with CRLF */

/* A v1 port: decimal, no leading zero, 0..65535. */
static int v1_port(const char *s, uint16_t *out)
{
    uint64_t n;
    if ((s[0] == '0' && s[1] != '\0') || parse_uint_str(s, 65535, &n) != 0)
        return -1;
    *out = (uint16_t)n;
    return 0;
}

static int parse_v1(const unsigned char *buf, size_t len, struct proxy_info *out)
{
    /* The line ends at the first LF, which must follow a CR (section 2.1:
     * "must not tolerate a single CR or LF"). */
    const unsigned char *crlf = NULL;
    for (size_t i = 0; i < len && i < V1_MAX; i++)
        if (buf[i] == '\n') {
            if (i == 0 || buf[i - 1] != '\r')
                return -1;
            crlf = buf + i - 1;
            break;
        }
    if (crlf == NULL)
        return len >= V1_MAX ? -1 : 0;
    char line[V1_MAX + 1];
    size_t n = (size_t)(crlf - buf);
    memcpy(line, buf, n);
    line[n] = '\0';
    if (memchr(line, '\0', n) != NULL || memchr(line, '\r', n) || memchr(line, '\n', n))
        return -1;
    if (strncmp(line, "PROXY UNKNOWN", 13) == 0 && (line[13] == '\0' || line[13] == ' ')) {
        out->use_peer = 1;
        return (int)n + 2;
    }
    /* "PROXY TCP4 SRC DST SPORT DPORT", single spaces only */
    char *f[6];
    int k = 0;
    for (char *p = line; k < 6; k++) {
        f[k] = p;
        char *sp = strchr(p, ' ');
        if (k < 5) {
            if (sp == NULL)
                return -1;
            *sp = '\0';
            p = sp + 1;
        } else if (sp != NULL) {
            return -1;
        }
    }
    if (strcmp(f[0], "PROXY") != 0)
        return -1;
    int family = strcmp(f[1], "TCP4") == 0 ? AF_INET : strcmp(f[1], "TCP6") == 0 ? AF_INET6 : -1;
    uint16_t sport, dport;
    unsigned char dst[16];
    if (family < 0 || v1_port(f[4], &sport) != 0 || v1_port(f[5], &dport) != 0 ||
        inet_pton(family, f[3], dst) != 1)
        return -1;
    memset(&out->src, 0, sizeof out->src);
    if (family == AF_INET) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&out->src;
        if (inet_pton(AF_INET, f[2], &s4->sin_addr) != 1)
            return -1;
        s4->sin_family = AF_INET;
        s4->sin_port = htons(sport);
        out->srclen = sizeof *s4;
    } else {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&out->src;
        if (inet_pton(AF_INET6, f[2], &s6->sin6_addr) != 1)
            return -1;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(sport);
        out->srclen = sizeof *s6;
    }
    out->use_peer = 0;
    return (int)n + 2;
}

static int parse_v2(const unsigned char *buf, size_t len, struct proxy_info *out)
{
    if (len < 16)
        return 0;
    unsigned ver_cmd = buf[12], fam = buf[13];
    size_t alen = (size_t)buf[14] << 8 | buf[15];
    if ((ver_cmd >> 4) != 2 || (ver_cmd & 15) > 1 || alen > PROXY_V2_MAX_LEN)
        return -1;
    if (len < 16 + alen)
        return 0;
    const unsigned char *a = buf + 16;
    memset(&out->src, 0, sizeof out->src);
    out->use_peer = 1;
    if ((ver_cmd & 15) == 0)          /* LOCAL: the proxy's own connection */
        return (int)(16 + alen);
    if (fam == 0x11) {                /* TCP over IPv4 */
        if (alen < 12)
            return -1;
        struct sockaddr_in *s4 = (struct sockaddr_in *)&out->src;
        s4->sin_family = AF_INET;
        memcpy(&s4->sin_addr, a, 4);
        memcpy(&s4->sin_port, a + 8, 2);
        out->srclen = sizeof *s4;
        out->use_peer = 0;
    } else if (fam == 0x21) {         /* TCP over IPv6 */
        if (alen < 36)
            return -1;
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&out->src;
        s6->sin6_family = AF_INET6;
        memcpy(&s6->sin6_addr, a, 16);
        memcpy(&s6->sin6_port, a + 32, 2);
        out->srclen = sizeof *s6;
        out->use_peer = 0;
    }
    /* Other families (UNSPEC, UNIX, UDP): keep the real peer. */
    return (int)(16 + alen);
}

int proxy_parse(const unsigned char *buf, size_t len, struct proxy_info *out)
{
    size_t n = len < sizeof v2_sig ? len : sizeof v2_sig;
    if (memcmp(buf, v2_sig, n) == 0)
        return len < sizeof v2_sig ? 0 : parse_v2(buf, len, out);
    n = len < 6 ? len : 6;
    if (memcmp(buf, "PROXY ", n) == 0)
        return len < 6 ? 0 : parse_v1(buf, len, out);
    return -1;
}

int proxy_read(int fd, int timeout_ms, struct proxy_info *out)
{
    unsigned char buf[PROXY_MAX_HEADER];
    int64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        /* Peek: the bytes after the header are the session's. */
        ssize_t got = recv(fd, buf, sizeof buf, MSG_PEEK | MSG_DONTWAIT);
        if (got == 0)
            return -1;
        if (got > 0) {
            int r = proxy_parse(buf, (size_t)got, out);
            if (r < 0)
                return -1;
            if (r > 0) {
                ssize_t taken;
                while ((taken = recv(fd, buf, (size_t)r, 0)) < 0 && errno == EINTR)
                    ;
                return taken == r ? 0 : -1;
            }
            if ((size_t)got == sizeof buf)
                return -1;
        } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            return -1;
        }
        int64_t left = deadline - now_ms();
        if (left <= 0)
            return -1;
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        /* POLLIN stays set while the partial header waits: sleep a little. */
        if (got > 0) {
            struct timespec ts = { 0, 10 * 1000000L };
            nanosleep(&ts, NULL);
        } else if (poll(&pfd, 1, (int)left) < 0 && errno != EINTR) {
            return -1;
        }
    }
}

/* One "ADDR[/BITS]" word: the network and prefix length. */
static int parse_cidr(const char *word, int *family, unsigned char net[16], unsigned *bits)
{
    char addr[64];
    const char *slash = strchr(word, '/');
    size_t alen = slash ? (size_t)(slash - word) : strlen(word);
    if (alen == 0 || alen >= sizeof addr)
        return -1;
    memcpy(addr, word, alen);
    addr[alen] = '\0';
    *family = strchr(addr, ':') ? AF_INET6 : AF_INET;
    if (inet_pton(*family, addr, net) != 1)
        return -1;
    unsigned max = *family == AF_INET ? 32 : 128;
    uint64_t b = max;
    if (slash && parse_uint_str(slash + 1, max, &b) != 0)
        return -1;
    *bits = (unsigned)b;
    return 0;
}

static int prefix_equal(const unsigned char *a, const unsigned char *b, unsigned bits)
{
    unsigned whole = bits / 8, rest = bits % 8;
    if (memcmp(a, b, whole) != 0)
        return 0;
    if (rest == 0)
        return 1;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (a[whole] & mask) == (b[whole] & mask);
}

int cidr_list_match(const char *list, const struct sockaddr_storage *sa)
{
    if (list == NULL)
        return 0;
    unsigned char addr[16];
    int family = sa->ss_family;
    if (family == AF_INET) {
        memcpy(addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    } else if (family == AF_INET6) {
        const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a6)) {
            family = AF_INET;
            memcpy(addr, a6->s6_addr + 12, 4);
        } else {
            memcpy(addr, a6, 16);
        }
    } else {
        return 0;
    }
    char copy[1024];
    if (strlcpy_checked(copy, list, sizeof copy) != 0)
        return 0;
    for (char *save = NULL, *w = strtok_r(copy, " \t,", &save); w; w = strtok_r(NULL, " \t,", &save)) {
        int f;
        unsigned char net[16];
        unsigned bits;
        if (parse_cidr(w, &f, net, &bits) == 0 && f == family && prefix_equal(addr, net, bits))
            return 1;
    }
    return 0;
}

int cidr_list_check(const char *list, char *err, size_t errlen)
{
    char copy[1024];
    if (strlcpy_checked(copy, list, sizeof copy) != 0) {
        snprintf(err, errlen, "list too long");
        return -1;
    }
    for (char *save = NULL, *w = strtok_r(copy, " \t,", &save); w; w = strtok_r(NULL, " \t,", &save)) {
        int f;
        unsigned char net[16];
        unsigned bits;
        if (parse_cidr(w, &f, net, &bits) != 0) {
            snprintf(err, errlen, "'%s' is not an address or ADDRESS/BITS", w);
            return -1;
        }
    }
    return 0;
}

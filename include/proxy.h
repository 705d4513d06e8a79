/*
 * proxy.h - the HAProxy PROXY protocol, versions 1 and 2
 * (../shared/rfc/proxy-protocol.txt), so that TLS can be terminated in
 * front of us (stunnel, haproxy) while logs and per-address limits see
 * the real client.  A header is accepted only from a peer listed in
 * proxy_trusted; from anyone else the bytes are POP3 like any others.
 *
 * proxy_parse() is pure (unit-tested and fuzzed); proxy_read() takes
 * exactly the header's bytes off the socket and not one byte more, since
 * what follows belongs to the POP3 session.
 */
#ifndef MBOXPOP3D_PROXY_H
#define MBOXPOP3D_PROXY_H

#include <stddef.h>
#include <sys/socket.h>

#define PROXY_V2_MAX_LEN 1024     /* addresses and TLVs we accept */
#define PROXY_MAX_HEADER (16 + PROXY_V2_MAX_LEN)

struct proxy_info {
    int use_peer;                 /* LOCAL / UNKNOWN: keep the real peer */
    struct sockaddr_storage src;  /* the client, when !use_peer */
    socklen_t srclen;
};

/* > 0: a complete valid header of that many bytes; 0: need more bytes;
 * -1: not a valid PROXY header (the connection must be dropped). */
int proxy_parse(const unsigned char *buf, size_t len, struct proxy_info *out);

/* Reads and parses the header from a (blocking or not) socket within
 * timeout_ms.  0, or -1 (invalid, closed, or too slow). */
int proxy_read(int fd, int timeout_ms, struct proxy_info *out);

/* Is sa inside one of the CIDRs of list ("192.0.2.0/24 ::1/128 10.1.2.3")? */
int cidr_list_match(const char *list, const struct sockaddr_storage *sa);

/* Checks a CIDR list's syntax; on error returns -1 with a reason. */
int cidr_list_check(const char *list, char *err, size_t errlen);

#endif

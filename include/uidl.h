/*
 * uidl.h - unique-ids that never change (RFC 1939 section 7, UIDL).
 *
 * The digest is popa3d's, so sites moving from popa3d re-download
 * nothing: MD5 over the complete lines (with their line ends and
 * continuation lines) of the "fixed" header fields only, which no mail
 * reader rewrites: the first Received:, every Delivered-To: and
 * X-Delivery-ID:, and Date: and Message-ID: when they come before the
 * first Received:.  Names compare case-insensitively (but, as in popa3d,
 * X-Delivery-ID: only with a capital X).  Where none of
 * these exist, the whole header block is hashed instead (popa3d would
 * give every such message the same id), less the fields that mail readers
 * add or rewrite (Status, X-Status, X-Keywords, X-UID, X-IMAP,
 * X-IMAPbase, X-UIDL, Content-Length, Lines).
 *
 * Spools with CRLF line ends: a CRLF line ends the header block and
 * separates messages for us; popa3d sees only LF-only blank lines, so it
 * misreads such spools (several messages as one, body lines as headers)
 * and its UIDLs for them cannot be matched.
 *
 * Printed as 16 lower-case hex digits, digest bytes 3,2,1,0,7,6,5,4 (the
 * two little-endian words popa3d prints).  Identical digests in one
 * mailbox (duplicate deliveries) are made unique by order of appearance:
 * the second is printed with the suffix ".2", the third ".3", and so on.
 *
 * With uidl_source = x-uidl, a message's own "X-UIDL:" header (written by
 * qpopper or GNU Mailutils) is its unique-id when it is 1 to
 * UIDL_X_UIDL_MAX printable characters without '.' (so it can never look
 * like a numbered duplicate); the digest serves the rest.  An X-UIDL
 * that looks like one of our digests counts as that digest when
 * duplicates are numbered, so every unique-id stays unique.
 */
#ifndef MBOXPOP3D_UIDL_H
#define MBOXPOP3D_UIDL_H

#include <stddef.h>

#define UIDL_DIGEST_LEN 8
#define UIDL_TEXT_MAX 72   /* RFC 1939: 1-70 characters, plus NUL */
#define UIDL_X_UIDL_MAX 58 /* longest X-UIDL: value we take (room for ".N") */

/* Digest of a header block (the bytes from the first header line up to,
 * not including, the blank line that ends it). */
void uidl_digest(const char *headers, size_t len,
                 unsigned char digest[UIDL_DIGEST_LEN]);

/* Text form; dup is 0 or 1 for the first occurrence, n for the n-th. */
void uidl_format(const unsigned char digest[UIDL_DIGEST_LEN], unsigned dup,
                 char out[UIDL_TEXT_MAX]);

/* The same for an X-UIDL value of len (<= UIDL_X_UIDL_MAX) bytes. */
void uidl_format_x(const char *value, size_t len, unsigned dup, char out[UIDL_TEXT_MAX]);

#endif

/*
 * util.h - small helpers every module needs: strict number parsing,
 * EINTR-safe full reads and writes, bounded string copies.
 */
#ifndef MBOXPOP3D_UTIL_H
#define MBOXPOP3D_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * Parses s[0..len) as an unsigned decimal number: digits only (no sign,
 * no spaces, no empty string), value <= max.  Leading zeros are allowed
 * ("007" is 7), as RFC 1939 numbers are plain digit strings.
 * Returns 0 and sets *out, or -1 if the text is not such a number.
 */
int parse_uint(const char *s, size_t len, uint64_t max, uint64_t *out);

/* Same, for a NUL-terminated string. */
int parse_uint_str(const char *s, uint64_t max, uint64_t *out);

/* write()/pwrite() all of buf, retrying on EINTR and short writes. */
int write_all(int fd, const void *buf, size_t len);
int pwrite_all(int fd, const void *buf, size_t len, off_t offset);

/* pread() exactly len bytes (EINTR and short reads handled); a premature
 * end of file is an error with errno = EIO. */
int pread_exact(int fd, void *buf, size_t len, off_t offset);

/* Copies at most size-1 bytes and terminates; returns -1 if truncated. */
int strlcpy_checked(char *dst, const char *src, size_t size);

/* Overwrites a secret so the compiler cannot drop the store. */
void secure_zero(void *p, size_t len);

/* Compares two byte strings in time that depends only on the lengths. */
int consttime_equal(const void *a, size_t alen, const void *b, size_t blen);

/*
 * Strict base64 (RFC 4648 section 4): the standard alphabet, padding
 * required, no whitespace or other bytes.  Returns 0 and the decoded
 * length, or -1 if the text is not base64 or does not fit outcap.
 */
int base64_decode(const char *in, size_t len, unsigned char *out, size_t outcap,
                  size_t *outlen);

/* Monotonic clock in milliseconds. */
int64_t now_ms(void);

#endif

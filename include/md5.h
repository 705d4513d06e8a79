/*
 * md5.h - RFC 1321 MD5, for UIDLs (and APOP).  Not for anything that
 * needs collision resistance.
 */
#ifndef MBOXPOP3D_MD5_H
#define MBOXPOP3D_MD5_H

#include <stddef.h>
#include <stdint.h>

struct md5_ctx {
    uint32_t state[4];
    uint64_t bytes;
    unsigned char buffer[64];
};

void md5_init(struct md5_ctx *ctx);
void md5_update(struct md5_ctx *ctx, const void *data, size_t len);
void md5_final(struct md5_ctx *ctx, unsigned char digest[16]);

#endif

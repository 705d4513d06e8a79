/* libFuzzer target: the strict base64 decoder (AUTH PLAIN responses),
 * checked against a re-encoding of what it accepts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void encode(const unsigned char *in, size_t n, char *out)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (i + 1 < n ? (unsigned)in[i + 1] << 8 : 0) |
                     (i + 2 < n ? in[i + 2] : 0);
        out[o++] = abc[v >> 18 & 63];
        out[o++] = abc[v >> 12 & 63];
        out[o++] = i + 1 < n ? abc[v >> 6 & 63] : '=';
        out[o++] = i + 2 < n ? abc[v & 63] : '=';
    }
    out[o] = '\0';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *text = malloc(size ? size : 1);
    unsigned char out[3072];
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    size_t n;
    if (base64_decode(text, size, out, sizeof out, &n) == 0) {
        /* Strict: what is accepted is exactly the canonical encoding. */
        char again[4200];
        encode(out, n, again);
        if (strlen(again) != size || memcmp(again, text, size) != 0)
            abort();
    }
    free(text);
    return 0;
}

/* libFuzzer target: the PROXY protocol header parser and CIDR lists. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned char *buf = malloc(size ? size : 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    struct proxy_info pi;
    int r = proxy_parse(buf, size, &pi);
    if (r > (int)size)
        abort();                         /* never claims bytes it was not given */
    if (r > 0 && !pi.use_peer && pi.src.ss_family != 2 && pi.src.ss_family != 10)
        abort();
    /* The same bytes as a CIDR list. */
    char *text = malloc(size + 1);
    if (text) {
        memcpy(text, data, size);
        text[size] = '\0';
        char err[160];
        if (cidr_list_check(text, err, sizeof err) == 0 && r > 0 && !pi.use_peer)
            (void)cidr_list_match(text, &pi.src);
        free(text);
    }
    free(buf);
    return 0;
}

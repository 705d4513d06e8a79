/* libFuzzer target: the config file parser and config_print. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 64 * 1024)
        return 0;
    struct config cfg;
    config_defaults(&cfg);
    char err[512];
    if (config_load_buffer(&cfg, (const char *)data, size, "fuzz", err, sizeof err) == 0) {
        FILE *out = fopen("/dev/null", "w");
        if (out) {
            config_print(&cfg, out);
            fclose(out);
        }
    } else if (strncmp(err, "fuzz", 4) != 0) {
        abort();            /* every error names the file */
    }
    config_free(&cfg);
    return 0;
}

/* libFuzzer target: the mbox scanner, with invariants every index must
 * satisfy, and the multi-line writer over every message it finds. */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mailbox.h"
#include "netio.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_index(const char *buf, size_t size, const struct mbox_index *idx)
{
    uint64_t prev_end = idx->pseudo_len;
    if (idx->pseudo_len > size)
        abort();
    for (size_t i = 0; i < idx->count; i++) {
        const struct msg *m = &idx->msgs[i];
        if (m->from_off < prev_end || m->from_off >= size || memcmp(buf + m->from_off, "From ", 5) != 0)
            abort();
        if (m->content_off <= m->from_off || m->content_off + m->content_len > size)
            abort();
        if (m->header_len > m->content_len || m->dup == 0)
            abort();
        if (m->size != wire_size(buf + m->content_off, m->content_len))
            abort();
        uint64_t next = i + 1 < idx->count ? idx->msgs[i + 1].from_off : size;
        if (m->content_off + m->content_len > next)
            abort();
        prev_end = m->content_off + m->content_len;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size ? size : 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    struct mbox_index idx = { 0 };
    char err[160];
    if (mbox_scan(buf, size, &idx, err, sizeof err) == 0) {
        check_index(buf, size, &idx);
        static int devnull = -1;
        if (devnull < 0)
            devnull = open("/dev/null", O_WRONLY);
        struct netio io;
        if (devnull >= 0 && netio_init(&io, devnull, devnull, 5) == 0) {
            for (size_t i = 0; i < idx.count; i++) {
                struct mlwriter w;
                mlw_begin(&w, &io);
                uint64_t lines = 3;
                const struct msg *m = &idx.msgs[i];
                mlw_data(&w, buf + m->content_off, (size_t)m->content_len, i % 2 ? &lines : NULL);
                mlw_end(&w);
            }
            netio_flush(&io);
            netio_free(&io);
        }
    }
    mbox_index_free(&idx);
    free(buf);
    return 0;
}

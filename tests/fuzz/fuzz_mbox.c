/* libFuzzer target: the mbox scanner, with invariants every index must
 * satisfy, the same index as the plain reference scanner (ref_scan.h)
 * when cut into 1 to 4 parts, and the multi-line writer over every
 * message it finds. */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mailbox.h"
#include "netio.h"
#include "../unit/ref_scan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_index(const char *buf, size_t size, const struct mbox_index *idx)
{
    uint64_t prev_end = idx->pseudo_len;
    if (idx->pseudo_len > size)
        abort();
    for (size_t i = 0; i < idx->count; i++) {
        const struct msg *m = &idx->msgs[i];
        if (msg_from_off(m) < prev_end || msg_from_off(m) >= size || memcmp(buf + msg_from_off(m), "From ", 5) != 0)
            abort();
        if (m->content_off <= msg_from_off(m) || m->content_off + msg_content_len(idx, i) > size)
            abort();
        if (m->header_len > msg_content_len(idx, i) || mbox_dup(idx, i) == 0)
            abort();
        if (m->size != wire_size(buf + m->content_off, msg_content_len(idx, i)))
            abort();
        uint64_t next = i + 1 < idx->count ? msg_from_off(&idx->msgs[i + 1]) : size;
        if (m->content_off + msg_content_len(idx, i) > next)
            abort();
        prev_end = m->content_off + msg_content_len(idx, i);
    }
}

/* The fast scanner must agree with the reference on every field. */
static void check_against_reference(const char *buf, size_t size, const struct mbox_index *idx)
{
    struct ref_index want = { 0 };
    char err[160];
    if (ref_scan_opts(buf, size, 0, &want, err, sizeof err) != 0 || want.count != idx->count ||
        want.pseudo_len != idx->pseudo_len || idx->prefix_hash != mbox_prefix_hash(buf, size))
        abort();
    for (size_t i = 0; i < idx->count; i++) {
        const struct ref_msg *w = &want.msgs[i];
        const struct msg *g = &idx->msgs[i];
        if (w->from_off != msg_from_off(g) || w->content_off != g->content_off ||
            w->content_len != msg_content_len(idx, i) || w->header_len != g->header_len ||
            w->size != g->size || w->has_blank != g->has_blank || w->dup != mbox_dup(idx, i) ||
            memcmp(w->uid, g->uid, sizeof w->uid) != 0)
            abort();
    }
    ref_index_free(&want);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mbox_scan_tune(size ? 1 + data[size - 1] % 4 : 1, 0);
    char *buf = malloc(size ? size : 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    struct mbox_index idx = { 0 };
    char err[160];
    if (mbox_scan(buf, size, &idx, err, sizeof err) == 0) {
        check_index(buf, size, &idx);
        check_against_reference(buf, size, &idx);
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
                mlw_data(&w, buf + m->content_off, (size_t)msg_content_len(&idx, i), i % 2 ? &lines : NULL);
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

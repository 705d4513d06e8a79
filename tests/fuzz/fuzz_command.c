/* libFuzzer target: the command parser (protocol.c) in both states. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "protocol.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    /* An exact-size copy so ASan sees any read past the line. */
    char *line = malloc(size ? size : 1);
    if (line == NULL)
        return 0;
    memcpy(line, data, size);
    for (int state = STATE_AUTHORIZATION; state <= STATE_TRANSACTION; state <<= 1) {
        const struct command *cmd;
        struct command_args args;
        enum parse_result r = command_parse(line, size, (enum pop_state)state, &cmd, &args);
        if (r == PARSE_OK) {
            if (cmd == NULL || !(cmd->states & state))
                abort();
            if ((cmd->rule == ARGS_WORD || cmd->rule == ARGS_REST) &&
                (args.text < line || args.text + args.text_len > line + size || args.text_len == 0))
                abort();
            if ((cmd->rule == ARGS_MSG || cmd->rule == ARGS_MSG_LINES) &&
                (args.number[0] == 0 || args.number[0] > MAX_MESSAGE_NUMBER))
                abort();
        }
        (void)parse_result_text(r);
    }
    free(line);
    return 0;
}

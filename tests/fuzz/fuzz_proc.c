/* SPDX-License-Identifier: Apache-2.0 */
/* The workload attestor's /proc parsers (agent/wl_proc.c, agent/wl_holder.c): stat (its comm
 * field is chosen by the workload), the status Groups: line, pidfd fdinfo, the flags of a
 * workload's fd (the holder proof). Never crash or read out of bounds; results stay in
 * range. The first input byte picks the parser.
 *
 * The fuzz build links only warden-common, so the agent's parser file is compiled in here. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../agent/wl_holder.c"
#include "../../agent/wl_proc.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        gid_t gids[16];
        uint64_t start;
        int64_t pid;
        unsigned long flags;
        size_t n = SIZE_MAX;
        char state = 0, *buf;
        int r;

        if (size < 1 || size > WL_PROC_STATUS_MAX)
                return 0;
        /* An exact-size copy without a NUL: the parsers must honour size. */
        buf = malloc(size - 1 ? size - 1 : 1);
        if (!buf)
                return 0;
        memcpy(buf, data + 1, size - 1);
        switch (data[0] % 4) {
        case 0:
                r = wl_proc_parse_stat(buf, size - 1, &state, &start);
                if (r != 0 && r != -EBADMSG)
                        abort();
                if (r == 0 && !((state >= 'A' && state <= 'Z') || (state >= 'a' && state <= 'z')))
                        abort();
                break;
        case 1:
                r = wl_proc_parse_groups(buf, size - 1, gids, 16, &n);
                if (r != 0 && r != -EBADMSG && r != -E2BIG)
                        abort();
                if (r == 0 && n > 16)
                        abort();
                break;
        case 3:
                r = wl_holder_parse_fdinfo_flags(buf, size - 1, &flags);
                if (r != 0 && r != -EBADMSG)
                        abort();
                break;
        default:
                r = wl_proc_parse_fdinfo_pid(buf, size - 1, &pid);
                if (r != 0 && r != -EBADMSG && r != -ENODATA)
                        abort();
                if (r == 0 && (pid < -1 || pid > INT32_MAX))
                        abort();
                break;
        }
        free(buf);
        return 0;
}

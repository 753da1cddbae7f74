/* SPDX-License-Identifier: Apache-2.0 */
#include "str.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int str_dup_opt(const char *s, char **ret) {
        char *c = NULL;

        if (s) {
                c = strdup(s);
                if (!c)
                        return -ENOMEM;
        }
        *ret = c;
        return 0;
}

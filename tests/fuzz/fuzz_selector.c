/* SPDX-License-Identifier: Apache-2.0 */
/* Selector parser and set: never crash; an accepted selector formats back to the input,
 * re-validates, and behaves as a one-element set. The input is also split on '\n' and
 * fed to a set, which must stay sorted, deduplicated and within its cap. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "selector.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_single(const char *s) {
        Selector sel = {};
        SelectorSet set = {};
        char *text = NULL;

        if (selector_parse(s, &sel, NULL) < 0)
                return;
        if (selector_validate(sel.type, sel.value, NULL) < 0)
                abort();
        if (selector_format(&sel, &text) < 0 || strcmp(text, s) != 0)
                abort();
        if (selector_set_add(&set, sel.type, sel.value) < 0 || set.n != 1)
                abort();
        if (!selector_set_contains(&set, &sel) || !selector_set_is_subset(&set, &set))
                abort();
        selector_set_done(&set);
        selector_done(&sel);
        free(text);
}

static void check_set(char *s) {
        SelectorSet set = {.max = 16};
        char *line, *save = NULL;

        for (line = strtok_r(s, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
                (void) selector_set_add_string(&set, line, NULL);
        if (set.n > 16)
                abort();
        for (size_t i = 1; i < set.n; i++)
                if (selector_compare(&set.items[i - 1], &set.items[i]) >= 0)
                        abort();
        if (set.n > 0 && !selector_set_is_subset(&set, &set))
                abort();
        selector_set_done(&set);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *s;

        if (size > 8192)
                return 0;
        s = malloc(size + 1);
        if (!s)
                return 0;
        memcpy(s, data, size);
        s[size] = '\0';
        check_single(s);
        check_set(s);
        free(s);
        return 0;
}

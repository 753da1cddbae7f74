/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* A program's verb table and its whole main(), after WireGuard's wg.c: a table of
 * {name, function, help} and one dispatcher, shared by warden-agent and warden-server.
 *
 *   static const Verb verbs[] = {
 *           {"run", agent_main, "Run the node agent"},
 *           ...
 *   };
 *   static const VerbTable table = {"warden-agent", WARDEN_AGENT_VERSION, verbs,
 *                                   ELEMENTSOF(verbs), "\nEvery command takes -h.\n"};
 *   int main(int argc, char **argv) {
 *           return verbs_dispatch(&table, argc, argv);
 *   }
 *
 * What every program gets: `PROGRAM` alone prints the usage on stderr (exit 1);
 * `-h`, `-help`, `--help` and `help` print it on stdout (exit 0); `version`, `-version`
 * and `--version` print "PROGRAM VERSION"; `help VERB [WORD...]` runs
 * `VERB [WORD...] -h`; an unknown verb is "Error: unknown command" on stderr (exit 1).
 * Before running a verb the log goes quiet (component "cli", warnings and worse,
 * unless WARDEN_LOG_LEVEL says otherwise); a daemon's `run` verb sets up its own. */

#include <stddef.h>

typedef struct Verb {
        const char *name;
        /* argv[0] is the verb itself; returns the process exit status. */
        int (*fn)(int argc, char **argv);
        const char *help; /* one line for the usage */
} Verb;

typedef struct VerbTable {
        const char *program; /* "warden-agent", in the usage and the messages */
        const char *version;
        const Verb *verbs;
        size_t n_verbs;
        const char *footer;    /* printed after the list of verbs */
        size_t help_max_words; /* `help` takes at most this many words; 0: any number */
} VerbTable;

/* Runs the verb argv[1] names (see above). Returns the process exit status. */
int verbs_dispatch(const VerbTable *t, int argc, char **argv);

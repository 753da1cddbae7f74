/* SPDX-License-Identifier: Apache-2.0 */
/* A client of the attestor tests: connects to the abstract Unix socket NAME, writes one
 * byte, and then, by MODE:
 *   hold               keeps the connection (SOCK_CLOEXEC) until the peer hangs up
 *   exec PROG ARG...   connected without SOCK_CLOEXEC: execs PROG, which inherits it
 *   fork-exec PROG...  connected with SOCK_CLOEXEC: a child keeps the connection (and
 *                      waits for the hang-up) while this process execs PROG
 * Exit codes: 0 after the hang-up, 2 usage, 3 connect, 4 write, 5 exec. */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int connect_abstract(const char *name, int flags) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        size_t n = strlen(name);
        int fd;

        if (n + 1 >= sizeof(sa.sun_path))
                return -1;
        memcpy(sa.sun_path + 1, name, n);
        fd = socket(AF_UNIX, SOCK_STREAM | flags, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *) &sa,
                              (socklen_t) (offsetof(struct sockaddr_un, sun_path) + 1 + n)) < 0)
                return -1;
        return fd;
}

static int hold(int fd) {
        char c = 'r';

        if (write(fd, &c, 1) != 1)
                return 4;
        while (read(fd, &c, 1) > 0)
                ;
        return 0;
}

int main(int argc, char **argv) {
        int fd;

        if (argc < 3)
                return 2;
        if (strcmp(argv[2], "hold") == 0) {
                fd = connect_abstract(argv[1], SOCK_CLOEXEC);
                return fd < 0 ? 3 : hold(fd);
        }
        if (argc < 4)
                return 2;
        if (strcmp(argv[2], "exec") == 0) {
                char c = 'r';

                fd = connect_abstract(argv[1], 0);
                if (fd < 0)
                        return 3;
                if (write(fd, &c, 1) != 1)
                        return 4;
                execv(argv[3], argv + 3);
                return 5;
        }
        if (strcmp(argv[2], "fork-exec") == 0) {
                pid_t pid;

                fd = connect_abstract(argv[1], SOCK_CLOEXEC);
                if (fd < 0)
                        return 3;
                pid = fork();
                if (pid < 0)
                        return 5;
                if (pid == 0)
                        _exit(hold(fd));
                execv(argv[3], argv + 3);
                return 5;
        }
        return 2;
}

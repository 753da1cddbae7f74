/* SPDX-License-Identifier: Apache-2.0 */
#define _GNU_SOURCE
#include "fake_systemd.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-bus.h>

#include "testlib.h"

struct FakeSystemd {
        pid_t daemon;
        char address[PATH_MAX + 16];
        char *unit, *unit_path, *fragment;
        pthread_t thread;
        atomic_bool stop;
        atomic_int calls;
        int ready; /* 1 ok, -1 failed; under lock */
        pthread_mutex_t lock;
        pthread_cond_t cond;
};

static int get_unit(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        FakeSystemd *f = userdata;
        const char *name;
        int r = sd_bus_message_read(m, "s", &name);

        if (r < 0)
                return r;
        if (strcmp(name, f->unit) != 0)
                return sd_bus_error_setf(error, "org.freedesktop.systemd1.NoSuchUnit",
                                         "Unit %s not loaded.", name);
        atomic_fetch_add(&f->calls, 1);
        return sd_bus_reply_method_return(m, "o", f->unit_path);
}

static int get_fragment(sd_bus *bus,
                        const char *path,
                        const char *interface,
                        const char *property,
                        sd_bus_message *reply,
                        void *userdata,
                        sd_bus_error *error) {
        FakeSystemd *f = userdata;

        return sd_bus_message_append(reply, "s", f->fragment);
}

static const sd_bus_vtable manager_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD("GetUnit", "s", "o", get_unit, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

static const sd_bus_vtable unit_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("FragmentPath", "s", get_fragment, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_VTABLE_END,
};

static int serve_setup(FakeSystemd *f, sd_bus **ret) {
        sd_bus *bus = NULL;
        int r;

        r = sd_bus_new(&bus);
        if (r >= 0)
                r = sd_bus_set_address(bus, f->address);
        if (r >= 0)
                r = sd_bus_set_bus_client(bus, 1);
        if (r >= 0)
                r = sd_bus_start(bus);
        if (r >= 0)
                r = sd_bus_add_object_vtable(bus, NULL, "/org/freedesktop/systemd1",
                                             "org.freedesktop.systemd1.Manager", manager_vtable, f);
        if (r >= 0)
                r = sd_bus_add_object_vtable(bus, NULL, f->unit_path,
                                             "org.freedesktop.systemd1.Unit", unit_vtable, f);
        if (r >= 0)
                r = sd_bus_request_name(bus, "org.freedesktop.systemd1", 0);
        if (r < 0) {
                sd_bus_flush_close_unref(bus);
                return r;
        }
        *ret = bus;
        return 0;
}

static void *serve(void *arg) {
        FakeSystemd *f = arg;
        sd_bus *bus = NULL;
        int r = serve_setup(f, &bus);

        pthread_mutex_lock(&f->lock);
        f->ready = r < 0 ? -1 : 1;
        pthread_cond_signal(&f->cond);
        pthread_mutex_unlock(&f->lock);
        while (r >= 0 && !atomic_load(&f->stop)) {
                r = sd_bus_process(bus, NULL);
                if (r == 0)
                        r = sd_bus_wait(bus, 50 * 1000);
        }
        sd_bus_flush_close_unref(bus);
        return NULL;
}

/* Whether the bus accepts connections: its socket file appears at bind(), before listen(),
 * and a client that connects in between is refused. */
static bool bus_accepts(const char *path) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int fd, r;

        if (strlen(path) >= sizeof(sa.sun_path))
                return false;
        strcpy(sa.sun_path, path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return false;
        r = connect(fd, (const struct sockaddr *) &sa, sizeof(sa));
        close(fd);
        return r == 0;
}

static int spawn_daemon(FakeSystemd *f, const char *dir) {
        char conf[PATH_MAX], arg[PATH_MAX + 32], sock[PATH_MAX];
        FILE *c;

        snprintf(sock, sizeof(sock), "%s/bus", dir);
        snprintf(conf, sizeof(conf), "%s/bus.conf", dir);
        c = fopen(conf, "we");
        assert_non_null(c);
        fprintf(c,
                "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration "
                "1.0//EN\"\n"
                " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
                "<busconfig><type>custom</type><listen>unix:path=%s</listen>"
                "<auth>EXTERNAL</auth><policy context=\"default\">"
                "<allow send_destination=\"*\" eavesdrop=\"true\"/><allow eavesdrop=\"true\"/>"
                "<allow own=\"*\"/></policy></busconfig>\n",
                sock);
        fclose(c);
        snprintf(arg, sizeof(arg), "--config-file=%s", conf);
        f->daemon = fork();
        assert_true(f->daemon >= 0);
        if (f->daemon == 0) {
                /* Dies with us even if a failed assertion skips fake_systemd_stop(). */
                int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
                if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || null < 0 || dup2(null, 1) < 0)
                        _exit(126);
                execlp("dbus-daemon", "dbus-daemon", arg, "--nofork", "--nopidfile", (char *) NULL);
                _exit(127);
        }
        for (int i = 0; i < 500; i++) {
                struct timespec ts = {0, 10 * 1000 * 1000};

                if (waitpid(f->daemon, NULL, WNOHANG) == f->daemon) {
                        f->daemon = 0;
                        return -ENOENT; /* not installed, or failed to start */
                }
                if (bus_accepts(sock)) {
                        snprintf(f->address, sizeof(f->address), "unix:path=%s", sock);
                        return 0;
                }
                nanosleep(&ts, NULL);
        }
        return -ETIMEDOUT;
}

int fake_systemd_start(const char *dir, const char *unit, const char *fragment, FakeSystemd **ret) {
        FakeSystemd *f = calloc(1, sizeof(*f));
        int r;

        assert_non_null(f);
        pthread_mutex_init(&f->lock, NULL);
        pthread_cond_init(&f->cond, NULL);
        f->unit = strdup(unit);
        f->fragment = strdup(fragment);
        assert_true(sd_bus_path_encode("/org/freedesktop/systemd1/unit", unit, &f->unit_path) >= 0);
        r = spawn_daemon(f, dir);
        if (r < 0) {
                fake_systemd_stop(f);
                return r;
        }
        assert_int_equal(pthread_create(&f->thread, NULL, serve, f), 0);
        pthread_mutex_lock(&f->lock);
        while (f->ready == 0)
                pthread_cond_wait(&f->cond, &f->lock);
        pthread_mutex_unlock(&f->lock);
        assert_int_equal(f->ready, 1);
        assert_int_equal(setenv("DBUS_SYSTEM_BUS_ADDRESS", f->address, 1), 0);
        *ret = f;
        return 0;
}

int fake_systemd_calls(FakeSystemd *f) {
        return atomic_load(&f->calls);
}

void fake_systemd_stop(FakeSystemd *f) {
        if (!f)
                return;
        if (f->ready != 0) {
                atomic_store(&f->stop, true);
                pthread_join(f->thread, NULL);
        }
        if (f->daemon > 0) {
                kill(f->daemon, SIGTERM);
                waitpid(f->daemon, NULL, 0);
        }
        unsetenv("DBUS_SYSTEM_BUS_ADDRESS");
        pthread_mutex_destroy(&f->lock);
        pthread_cond_destroy(&f->cond);
        free(f->unit);
        free(f->unit_path);
        free(f->fragment);
        free(f);
}

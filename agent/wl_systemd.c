/* SPDX-License-Identifier: Apache-2.0 */
#define _GNU_SOURCE
#include "wl_systemd.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-login.h>

#include "log.h"

#define SYSTEMD_DEST "org.freedesktop.systemd1"
#define SYSTEMD_PATH "/org/freedesktop/systemd1"

struct WlSystemd {
        pthread_mutex_t lock;
        sd_bus *bus; /* under lock */
};

int wl_systemd_new(WlSystemd **ret) {
        WlSystemd *s = calloc(1, sizeof(*s));

        if (!s)
                return -ENOMEM;
        pthread_mutex_init(&s->lock, NULL);
        *ret = s;
        return 0;
}

WlSystemd *wl_systemd_free(WlSystemd *s) {
        if (!s)
                return NULL;
        sd_bus_flush_close_unref(s->bus);
        pthread_mutex_destroy(&s->lock);
        free(s);
        return NULL;
}

static int bus_get(WlSystemd *s, sd_bus **ret) {
        sd_bus *bus = NULL;
        int r;

        if (!s->bus) {
                r = sd_bus_open_system(&bus);
                if (r < 0)
                        return r;
                r = sd_bus_set_method_call_timeout(bus, WL_SYSTEMD_TIMEOUT_USEC);
                if (r < 0) {
                        sd_bus_flush_close_unref(bus);
                        return r;
                }
                s->bus = bus;
        }
        *ret = s->bus;
        return 0;
}

/* GetUnit(unit) → object path → Unit.FragmentPath. Called with the lock held. */
static int fragment_path_locked(WlSystemd *s, const char *unit, char **ret) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *object;
        sd_bus *bus;
        int r;

        r = bus_get(s, &bus);
        if (r < 0)
                return log_debug_errno(r, "No system bus (%m), no systemd:fragment_path");
        r = sd_bus_call_method(bus, SYSTEMD_DEST, SYSTEMD_PATH, SYSTEMD_DEST ".Manager", "GetUnit",
                               &error, &reply, "s", unit);
        if (r >= 0)
                r = sd_bus_message_read(reply, "o", &object);
        if (r >= 0)
                r = sd_bus_get_property_string(bus, SYSTEMD_DEST, object, SYSTEMD_DEST ".Unit",
                                               "FragmentPath", &error, ret);
        if (r < 0) {
                if (sd_bus_error_is_set(&error))
                        log_debug("FragmentPath of %s: %s", unit, strna(error.message));
                else
                        log_debug_errno(r, "FragmentPath of %s: %m", unit);
                if (sd_bus_is_open(bus) <= 0)
                        s->bus = sd_bus_flush_close_unref(s->bus);
        }
        return r;
}

static int add_systemd(SelectorSet *set, const char *key, const char *value) {
        _cleanup_free_ char *v = NULL;
        int r;

        if (asprintf(&v, "%s:%s", key, value) < 0)
                return -ENOMEM;
        r = selector_set_add(set, "systemd", v);
        if (r == -EINVAL) {
                log_debug("systemd:%s value is not a valid selector value, skipping", key);
                return 0;
        }
        return r;
}

int wl_systemd_add_selectors(WlSystemd *s, pid_t pid, SelectorSet *set) {
        _cleanup_free_ char *unit = NULL, *fragment = NULL;
        int r;

        r = sd_pid_get_unit(pid, &unit);
        if (r < 0) {
                log_debug_errno(r, "Process %d is in no systemd unit (%m)", (int) pid);
                return 0;
        }
        r = add_systemd(set, "id", unit);
        if (r < 0)
                return r;

        pthread_mutex_lock(&s->lock);
        r = fragment_path_locked(s, unit, &fragment);
        pthread_mutex_unlock(&s->lock);
        if (r == -ENOMEM)
                return r;
        if (r < 0 || !fragment || fragment[0] == 0)
                return 0;
        return add_systemd(set, "fragment_path", fragment);
}

/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* A stand-in for systemd on a private D-Bus: starts dbus-daemon on a socket in a directory,
 * and a thread that owns org.freedesktop.systemd1 and answers Manager.GetUnit for one unit
 * plus that unit's FragmentPath property. Points $DBUS_SYSTEM_BUS_ADDRESS at it. */

typedef struct FakeSystemd FakeSystemd;

/* Returns 0, or -ENOENT when dbus-daemon isn't installed (the caller skips). */
int fake_systemd_start(const char *dir, const char *unit, const char *fragment, FakeSystemd **ret);
/* GetUnit calls answered for our unit so far. */
int fake_systemd_calls(FakeSystemd *f);
/* Stops the thread and the daemon, unsets $DBUS_SYSTEM_BUS_ADDRESS; accepts NULL. */
void fake_systemd_stop(FakeSystemd *f);

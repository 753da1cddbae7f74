/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The systemd:* selectors of the workload attestor (attest_wl.h):
 *   systemd:id:UNIT             sd_pid_get_unit() (from /proc/<pid>/cgroup)
 *   systemd:fragment_path:PATH  the unit's FragmentPath property, asked of
 *                               org.freedesktop.systemd1 on the system bus
 *                               ($DBUS_SYSTEM_BUS_ADDRESS is honoured)
 * A process outside any unit gets neither. Without a reachable system bus (or when the
 * unit has no fragment, e.g. a transient scope) only systemd:id is added; bus trouble is
 * logged at debug and never fails attestation. The bus connection is opened on first use,
 * kept, and dropped when it breaks; calls are serialised by a lock and time out after
 * WL_SYSTEMD_TIMEOUT_USEC. */

#include <sys/types.h>

#include "cleanup.h"
#include "selector.h"

#define WL_SYSTEMD_TIMEOUT_USEC (1000 * 1000)

typedef struct WlSystemd WlSystemd;

int wl_systemd_new(WlSystemd **ret);
WlSystemd *wl_systemd_free(WlSystemd *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(WlSystemd *, wl_systemd_free)

/* Adds the selectors for pid. Fails only when the set refuses a selector (e.g. -E2BIG) or on
 * -ENOMEM. */
int wl_systemd_add_selectors(WlSystemd *s, pid_t pid, SelectorSet *set);

/* SPDX-License-Identifier: Apache-2.0 */
/* Keeping the in-memory entry index current and fanning changes out to the agents
 * (docs/sync.md).
 *
 * Every datastore write that matters to agents appends an event (ds.h "Change
 * events"). Writers only call server_changes_kick(): a deferred event source then
 * runs once on the main loop, after the writer's reply went out, reads every event
 * since the last one applied, loads the current state of what each names into the
 * index and marks the Sync streams it affects; one flush then sends each marked stream
 * one message. A burst of writes (a bulk create of 1,000 entries) is applied in one
 * pass: each affected agent gets one delta. The same tail will bring other servers'
 * writes in once several servers share a datastore. */
#define _GNU_SOURCE

#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "entry_index.h"
#include "log.h"
#include "node_api.h"
#include "server.h"

#define EVENTS_PER_PAGE 1000
#define USEC_PER_SEC_U 1000000ULL

static int apply_entry_event(Server *s, const char *id) {
        _cleanup_(entry_freep) Entry *old = NULL, *cur = NULL;
        const Entry *was = entry_index_get(s->index, id);
        int r;

        if (was) {
                r = entry_copy(was, &old);
                if (r < 0)
                        return r;
        }
        r = ds_get_entry(s->ds, id, &cur);
        if (r == -ENOENT) {
                if (!old)
                        return 0; /* created and deleted again since the last pass */
                (void) entry_index_remove(s->index, id);
                node_api_entry_changed(s->node, old, NULL);
                return 0;
        }
        if (r < 0)
                return r;
        r = entry_index_put(s->index, TAKE_PTR(cur));
        if (r < 0)
                return r;
        node_api_entry_changed(s->node, old, entry_index_get(s->index, id));
        return 0;
}

static int apply_event(Server *s, const DsEvent *e) {
        switch (e->kind) {
        case DS_EVENT_ENTRY:
                return apply_entry_event(s, e->key);
        case DS_EVENT_AGENT:
                node_api_agent_changed(s->node, e->key);
                return 0;
        case DS_EVENT_BUNDLE:
                node_api_federated_changed(s->node, e->key);
                return 0;
        }
        return 0; /* a kind of a newer server: nothing for us */
}

static void arm_expiry(Server *s) {
        int64_t now = time(NULL), next = entry_index_next_expiry(s->index, now);
        int r;

        if (!s->expiry_timer)
                return;
        if (next <= 0) {
                (void) sd_event_source_set_enabled(s->expiry_timer, SD_EVENT_OFF);
                return;
        }
        r = sd_event_source_set_time(s->expiry_timer, (uint64_t) next * USEC_PER_SEC_U);
        if (r >= 0)
                r = sd_event_source_set_enabled(s->expiry_timer, SD_EVENT_ONESHOT);
        if (r < 0)
                log_warning_errno(r, "Failed to arm the entry expiry timer, ignoring: %m");
}

int server_changes_apply(Server *s) {
        uint64_t applied = 0;
        int r;

        for (;;) {
                DsEvent *events = NULL;
                size_t n = 0;

                r = ds_list_events(s->ds, s->applied_event, EVENTS_PER_PAGE, &events, &n);
                if (r < 0)
                        break;
                for (size_t i = 0; i < n && r >= 0; i++) {
                        r = apply_event(s, &events[i]);
                        if (r >= 0)
                                s->applied_event = events[i].id;
                }
                ds_event_array_free(events, n);
                applied += n;
                if (r < 0 || n < EVENTS_PER_PAGE)
                        break;
        }
        if (applied > 0) {
                (void) metrics_counter_add(s->metrics.changes_applied, NULL, applied);
                (void) metrics_gauge_set(s->metrics.index_entries, NULL,
                                         (double) entry_index_count(s->index));
                arm_expiry(s);
        }
        node_api_flush(s->node);
        if (r < 0)
                return log_error_errno(r,
                                       "Failed to apply datastore changes (after event %llu), "
                                       "retrying: %m",
                                       (unsigned long long) s->applied_event);
        return 0;
}

static int on_changes(sd_event_source *src, void *userdata) {
        Server *s = userdata;

        (void) sd_event_source_set_enabled(src, SD_EVENT_OFF);
        if (server_changes_apply(s) < 0)
                server_changes_kick(s); /* a transient datastore error: again */
        return 0;
}

void server_changes_kick(Server *s) {
        if (!s || !s->index)
                return;
        if (!s->changes_defer) {
                /* No event loop (yet): apply at once. */
                (void) server_changes_apply(s);
                return;
        }
        if (sd_event_source_set_enabled(s->changes_defer, SD_EVENT_ONESHOT) < 0) {
                /* Cannot happen for a valid source; apply at once rather than never. */
                (void) server_changes_apply(s);
        }
}

static int on_expiry(sd_event_source *src, uint64_t usec, void *userdata) {
        Server *s = userdata;

        (void) src;
        (void) usec;
        /* Entries expired: they leave agents' sets without any write. Rare enough to
         * recompute every stream (each sends only what differs). */
        node_api_all_changed(s->node);
        node_api_flush(s->node);
        arm_expiry(s);
        return 0;
}

int server_changes_start(Server *s) {
        _cleanup_(entry_index_freep) EntryIndex *idx = NULL;
        uint64_t last = 0;
        int r;

        r = entry_index_new(&idx);
        if (r < 0)
                return log_error_errno(r, "Failed to create the entry index: %m");
        /* The last event first: anything written while loading is applied again later,
         * which is harmless (apply_entry_event() compares revisions). */
        r = ds_last_event_id(s->ds, &last);
        if (r >= 0)
                r = entry_index_load(idx, s->ds);
        if (r < 0)
                return log_error_errno(r, "Failed to load the entries into memory: %m");
        s->index = TAKE_PTR(idx);
        s->applied_event = last;
        (void) metrics_gauge_set(s->metrics.index_entries, NULL,
                                 (double) entry_index_count(s->index));
        log_info("Loaded %zu entries into memory (%zu KiB), change sequence %llu",
                 entry_index_count(s->index), entry_index_memory(s->index) / 1024,
                 (unsigned long long) last);
        return 0;
}

int server_changes_attach(Server *s) {
        int r;

        r = sd_event_add_defer(s->event, &s->changes_defer, on_changes, s);
        if (r >= 0)
                r = sd_event_source_set_enabled(s->changes_defer, SD_EVENT_OFF);
        if (r >= 0)
                r = sd_event_add_time(s->event, &s->expiry_timer, CLOCK_REALTIME, 0, USEC_PER_SEC_U,
                                      on_expiry, s);
        if (r >= 0)
                r = sd_event_source_set_enabled(s->expiry_timer, SD_EVENT_OFF);
        if (r < 0)
                return r;
        arm_expiry(s);
        /* Writes made between the load and now (attestations at start-up). */
        server_changes_kick(s);
        return 0;
}

void server_changes_stop(Server *s) {
        s->changes_defer = sd_event_source_disable_unref(s->changes_defer);
        s->expiry_timer = sd_event_source_disable_unref(s->expiry_timer);
        s->index = entry_index_free(s->index);
}

/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* A locked FIFO of closures passed between threads (STYLE.md "Threads").
 *
 * Producers on any thread push (run, destroy, data) triples. A queue is consumed in one
 * of two ways:
 *   - by the main thread: the queue's eventfd (taskq_fd) becomes readable whenever tasks
 *     are queued; wire it into sd-event and call taskq_dispatch(), which runs every
 *     queued task in order;
 *   - by a worker thread: taskq_run() blocks for the next task and runs it, until the
 *     queue is closed.
 * run(data) owns data and must free it. A task never run (queue closed or freed) gets
 * destroy(data) instead, so callbacks waiting on it can be told. */

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "cleanup.h"

typedef void (*TaskFunc)(void *data);

typedef struct TaskQueue TaskQueue;

/* Creates a queue; with_eventfd gives it an eventfd for taskq_fd()/taskq_dispatch(). */
int taskq_new(bool with_eventfd, TaskQueue **ret);

/* Closes the queue, destroys every task still queued, frees it. NULL-safe. */
TaskQueue *taskq_free(TaskQueue *q);
DEFINE_TRIVIAL_CLEANUP_FUNC(TaskQueue *, taskq_free)

/* Queues a task at the end (or, with taskq_push_front, at the head: urgent work).
 * run must not be NULL; destroy may be NULL (then data is simply not freed).
 * Returns 0, or -ESHUTDOWN once the queue is closed (ownership of data stays with the
 * caller), -ENOMEM. */
int taskq_push(TaskQueue *q, TaskFunc run, TaskFunc destroy, void *data);
int taskq_push_front(TaskQueue *q, TaskFunc run, TaskFunc destroy, void *data);

/* The eventfd (readable while tasks are queued), or -EBADF without one. */
int taskq_fd(TaskQueue *q);

/* Runs every task queued right now (main thread). Returns how many ran. */
size_t taskq_dispatch(TaskQueue *q);

/* Worker loop: waits for tasks and runs them until taskq_close(). Returns 0. */
int taskq_run(TaskQueue *q);

/* Marks the queue closed: pushes fail from now on, taskq_run() returns once it is
 * idle, and tasks still queued are destroyed (outside the lock). */
void taskq_close(TaskQueue *q);

/* pthread_create() with every asynchronous signal blocked in the new thread (the main
 * thread handles them through sd-event). Returns 0 or -errno. */
int taskq_thread_create(pthread_t *ret, void *(*fn)(void *), void *arg);

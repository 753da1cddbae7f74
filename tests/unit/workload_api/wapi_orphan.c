/* SPDX-License-Identifier: Apache-2.0 */
/* A caller that is gone before its call is attested: connects to the Workload API
 * socket, forks, and exits; the child waits until its parent (the process the kernel
 * recorded for the connection) has exited, then makes one FetchJWTSVID call over the
 * inherited connection and prints "<status> <message>".
 *
 *   wapi_orphan SOCKET    (exit 0 when a status was received) */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <grpc/grpc.h>
#include <grpc/grpc_posix.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/time.h>

static int call_over_fd(int fd) {
        static const uint8_t req[] = {0x0a, 0x01, 'a'}; /* JWTSVIDRequest{audience: "a"} */
        grpc_metadata md = {.key = grpc_slice_from_static_string("workload.spiffe.io"),
                            .value = grpc_slice_from_static_string("true")};
        grpc_slice method = grpc_slice_from_static_string("/SpiffeWorkloadAPI/FetchJWTSVID");
        grpc_slice req_slice = grpc_slice_from_copied_buffer((const char *) req, sizeof(req));
        grpc_byte_buffer *send = grpc_raw_byte_buffer_create(&req_slice, 1), *recv = NULL;
        grpc_metadata_array init_md, trailing;
        grpc_status_code status = GRPC_STATUS_UNKNOWN;
        grpc_slice details = grpc_empty_slice();
        grpc_channel_credentials *creds = grpc_insecure_credentials_create();
        grpc_channel *ch = grpc_channel_create_from_fd("orphan", fd, creds, NULL);
        grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
        gpr_timespec deadline =
                gpr_time_add(gpr_now(GPR_CLOCK_REALTIME), gpr_time_from_seconds(5, GPR_TIMESPAN));
        grpc_call *call = grpc_channel_create_call(ch, NULL, 0, cq, method, NULL, deadline, NULL);
        grpc_op ops[6] = {};
        grpc_event ev;

        grpc_metadata_array_init(&init_md);
        grpc_metadata_array_init(&trailing);
        ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
        ops[0].data.send_initial_metadata.count = 1;
        ops[0].data.send_initial_metadata.metadata = &md;
        ops[1].op = GRPC_OP_SEND_MESSAGE;
        ops[1].data.send_message.send_message = send;
        ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
        ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
        ops[3].data.recv_initial_metadata.recv_initial_metadata = &init_md;
        ops[4].op = GRPC_OP_RECV_MESSAGE;
        ops[4].data.recv_message.recv_message = &recv;
        ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
        ops[5].data.recv_status_on_client.trailing_metadata = &trailing;
        ops[5].data.recv_status_on_client.status = &status;
        ops[5].data.recv_status_on_client.status_details = &details;
        if (grpc_call_start_batch(call, ops, 6, (void *) 1, NULL) != GRPC_CALL_OK)
                return 1;
        ev = grpc_completion_queue_pluck(cq, (void *) 1, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        printf("%d %.*s\n", (int) status, (int) GRPC_SLICE_LENGTH(details),
               (const char *) GRPC_SLICE_START_PTR(details));
        fflush(stdout);

        grpc_slice_unref(details);
        grpc_slice_unref(req_slice);
        grpc_metadata_array_destroy(&init_md);
        grpc_metadata_array_destroy(&trailing);
        grpc_byte_buffer_destroy(send);
        if (recv)
                grpc_byte_buffer_destroy(recv);
        grpc_call_unref(call);
        grpc_channel_destroy(ch);
        grpc_channel_credentials_release(creds);
        grpc_completion_queue_shutdown(cq);
        while (grpc_completion_queue_pluck(cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL)
                       .type != GRPC_QUEUE_SHUTDOWN)
                ;
        grpc_completion_queue_destroy(cq);
        return ev.type == GRPC_OP_COMPLETE && ev.success ? 0 : 1;
}

int main(int argc, char **argv) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        pid_t parent = getpid();
        int fd, r;

        if (argc != 2 || strlen(argv[1]) >= sizeof(sa.sun_path))
                return 2;
        strcpy(sa.sun_path, argv[1]);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                return 2;
        /* No gRPC in this process before the fork. */
        if (fork() != 0)
                _exit(0); /* the process SO_PEERCRED names is gone */
        for (int i = 0; i < 500 && getppid() == parent; i++)
                usleep(10 * 1000);
        grpc_init();
        r = call_over_fd(fd);
        grpc_shutdown();
        return r;
}

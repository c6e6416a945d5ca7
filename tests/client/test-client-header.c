/* SPDX-License-Identifier: MIT */
/*
 * A program that uses libavatar-client the way an outside tool does: only the installed
 * header (no project headers on the include path) and the shared library.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include <avatar-client.h>

/* Checks the header alone is enough to connect, call and clean up. */
int main(void) {
        AvatarClientError e = AVATAR_CLIENT_ERROR_INIT;
        AvatarClient *c = NULL;
        int r;

        r = avatar_client_connect("/nonexistent-dir/avatard.sock", &c);
        if (r != -ENOENT || c) {
                fprintf(stderr, "connect: expected -ENOENT, got %d\n", r);
                return EXIT_FAILURE;
        }
        avatar_client_error_done(&e);
        if (avatar_client_free(NULL) != NULL)
                return EXIT_FAILURE;
        printf("%s\n", avatar_client_error_name(&e));
        return EXIT_SUCCESS;
}

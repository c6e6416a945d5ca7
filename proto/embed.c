/* SPDX-License-Identifier: MIT */
/* Build tool: turns a file into a C source defining `const char NAME[]` (NUL-terminated) and
 * `const size_t NAME_len`. Used to compile the OpenRPC document into the daemon. */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
        FILE *in, *out;
        unsigned long n = 0;
        int c;

        if (argc != 4) {
                fprintf(stderr, "usage: %s INPUT OUTPUT SYMBOL\n", argv[0]);
                return EXIT_FAILURE;
        }
        in = fopen(argv[1], "rb");
        if (!in) {
                perror(argv[1]);
                return EXIT_FAILURE;
        }
        out = fopen(argv[2], "w");
        if (!out) {
                perror(argv[2]);
                fclose(in);
                return EXIT_FAILURE;
        }
        fprintf(out, "/* Generated from %s; do not edit. */\n#include <stddef.h>\n", argv[1]);
        fprintf(out, "extern const char %s[];\nextern const size_t %s_len;\n", argv[3], argv[3]);
        fprintf(out, "const char %s[] = {", argv[3]);
        while ((c = fgetc(in)) != EOF) {
                fprintf(out, "%s0x%02x,", n % 16 == 0 ? "\n" : "", (unsigned) c);
                n++;
        }
        fprintf(out, "\n0x00 };\nconst size_t %s_len = %lu;\n", argv[3], n);
        if (ferror(in) || fclose(out) != 0) {
                fclose(in);
                return EXIT_FAILURE;
        }
        fclose(in);
        return EXIT_SUCCESS;
}

/* confgen.c - build tool: parse conf/wouldblock.conf and write it out as C,
 * the parsed form of the embedded scenario library (config.h).
 *
 *   confgen FILE > conf_parsed.c
 *
 * A start-up then copies a few hundred bytes instead of parsing the whole
 * library (SPEC §8: explore pays start-up on every run), and an error in the
 * shipped library stops the build, with the library's own message. The
 * structures are written as bytes: this program is built with the same
 * compiler, flags and headers as the objects that read them, and the output
 * checks the sizes it was made with. Users' files (WOULDBLOCK_CONFIG) are
 * still parsed whole at start, so an error anywhere in them is reported.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

/* An object's bytes as the braced initializer of a union whose first
 * member is its byte array; trailing zeros are left to C. */
static void bytes(const void *p, size_t n)
{
        const unsigned char *b = p;
        size_t end = n;

        while (end && !b[end - 1])
                end--;
        printf("{{");
        for (size_t i = 0; i < end; i++)
                printf("%s%u", !i ? "\n    " : i % 24 ? "," : ",\n    ", b[i]);
        printf("}}");
}

int main(int argc, char **argv)
{
        struct wb_config cfg;
        struct wb_diag d;

        if (argc != 2) {
                fprintf(stderr, "usage: confgen FILE\n");
                return 2;
        }
        if (config_load(argv[1], &cfg, &d)) {
                fprintf(stderr, "%s\n", d.msg);
                return 1;
        }
        memset(cfg.path, 0, sizeof cfg.path);
        snprintf(cfg.path, sizeof cfg.path, "%s", WB_EMBEDDED_NAME);
        struct wb_rule *rules = cfg.rules;
        cfg.rules = NULL;
        printf("/* %s parsed by confgen: do not edit */\n#include \"config.h\"\n\n", argv[1]);
        printf("_Static_assert(sizeof(struct wb_config) == %zu, \"confgen: another layout\");\n",
               sizeof(struct wb_config));
        printf("_Static_assert(sizeof(struct wb_rule) == %zu, \"confgen: another layout\");\n\n",
               sizeof(struct wb_rule));
        printf("const union wb_embedded_config wb_embedded_parsed = ");
        bytes(&cfg, sizeof cfg);
        printf(";\n\nconst union wb_embedded_rule wb_embedded_rules[%u] = {",
               cfg.n_rules ? cfg.n_rules : 1);
        for (unsigned i = 0; i < cfg.n_rules; i++) {
                printf(i ? ",\n" : "\n");
                bytes(&rules[i], sizeof rules[i]);
        }
        printf("};\n");
        cfg.rules = rules;
        config_free(&cfg);
        return 0;
}

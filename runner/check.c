/* check.c - wouldblock --check: the configuration read the library's way,
 * the selected rules printed in canonical form. */
#include "commands.h"
#include "options.h"
#include "rules.h"
#include "util.h"

#include <stdio.h>

int cmd_check(const struct options *o)
{
        struct wb_rule rules[WB_MAX_RULES];
        unsigned n;
        char text[1024];

        selected_rules(o, rules, &n);
        for (unsigned i = 0; i < n; i++) {
                rule_format(&rules[i], text, sizeof text);
                printf("%s\n", text);
        }
        return finish_output();
}

/* list.c - wouldblock --list: the scenarios of a file and their
 * descriptions, one a line, no header (SPEC §6). */
#include "commands.h"
#include "config.h"
#include "options.h"
#include "util.h"

#include <stdio.h>
#include <string.h>

int cmd_list(const struct options *o)
{
        struct wb_config cfg;
        struct wb_diag d;
        int width = 0;

        if (config_load(o->config, &cfg, &d))
                fatal("%s", d.msg);
        for (unsigned i = 0; i < cfg.n_scenarios; i++)
                if ((int)strlen(cfg.scenarios[i].name) > width)
                        width = (int)strlen(cfg.scenarios[i].name);
        for (unsigned i = 0; i < cfg.n_scenarios; i++) {
                const struct wb_scenario *sc = &cfg.scenarios[i];
                if (sc->description[0])
                        printf("%-*s  %s\n", width, sc->name, sc->description);
                else
                        printf("%s\n", sc->name);
        }
        config_free(&cfg);
        return finish_output();
}

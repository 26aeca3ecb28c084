/* embed.S - conf/wouldblock.conf compiled in as the default scenario library.
 * WB_CONF_PATH is set by the Makefile. */
        .section .rodata
        .globl wb_embedded_conf
        .hidden wb_embedded_conf
        .type wb_embedded_conf, @object
wb_embedded_conf:
        .incbin WB_CONF_PATH
wb_embedded_conf_end:
        .byte 0
        .size wb_embedded_conf, . - wb_embedded_conf

        .balign 4
        .globl wb_embedded_conf_size
        .hidden wb_embedded_conf_size
        .type wb_embedded_conf_size, @object
wb_embedded_conf_size:
        .long wb_embedded_conf_end - wb_embedded_conf
        .size wb_embedded_conf_size, 4

        .section .note.GNU-stack,"",@progbits

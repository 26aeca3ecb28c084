# install.mk - `make install` and `make uninstall` (SPEC §1), honouring
# PREFIX and DESTDIR. The runner and wouldblock.pc have PREFIX built in (the
# runner looks for the library in $(PREFIX)/lib/wouldblock), so they depend
# on $(BUILD)/.prefix, which changes only when PREFIX does.
WB_INSTALL_DIRS := bin lib/wouldblock lib/pkgconfig include share/wouldblock share/man/man1 \
	share/man/man5

.PHONY: install uninstall wb-prefix-check

$(BUILD)/.prefix: wb-prefix-check
	@mkdir -p $(@D)
	@echo '$(PREFIX)' | cmp -s - $@ || echo '$(PREFIX)' >$@

$(BUILD)/wouldblock.pc: wouldblock.pc.in $(BUILD)/.prefix
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' $< >$@

install: $(LIB) $(BUILD)/wouldblock $(BUILD)/wouldblock.pc
	for d in $(WB_INSTALL_DIRS); do install -d "$(DESTDIR)$(PREFIX)/$$d" || exit 1; done
	install -m 755 $(BUILD)/wouldblock "$(DESTDIR)$(PREFIX)/bin/wouldblock"
	install -m 644 $(LIB) "$(DESTDIR)$(PREFIX)/lib/wouldblock/libwouldblock.so"
	install -m 644 $(BUILD)/wouldblock.pc "$(DESTDIR)$(PREFIX)/lib/pkgconfig/wouldblock.pc"
	install -m 644 shim/wouldblock.h "$(DESTDIR)$(PREFIX)/include/wouldblock.h"
	install -m 644 conf/wouldblock.conf "$(DESTDIR)$(PREFIX)/share/wouldblock/wouldblock.conf"
	install -m 644 man/wouldblock.1 "$(DESTDIR)$(PREFIX)/share/man/man1/wouldblock.1"
	install -m 644 man/wouldblock.conf.5 "$(DESTDIR)$(PREFIX)/share/man/man5/wouldblock.conf.5"

uninstall:
	rm -f "$(DESTDIR)$(PREFIX)/bin/wouldblock" \
		"$(DESTDIR)$(PREFIX)/lib/wouldblock/libwouldblock.so" \
		"$(DESTDIR)$(PREFIX)/lib/pkgconfig/wouldblock.pc" \
		"$(DESTDIR)$(PREFIX)/include/wouldblock.h" \
		"$(DESTDIR)$(PREFIX)/share/wouldblock/wouldblock.conf" \
		"$(DESTDIR)$(PREFIX)/share/man/man1/wouldblock.1" \
		"$(DESTDIR)$(PREFIX)/share/man/man5/wouldblock.conf.5"
	rmdir "$(DESTDIR)$(PREFIX)/lib/wouldblock" "$(DESTDIR)$(PREFIX)/share/wouldblock" 2>/dev/null || true

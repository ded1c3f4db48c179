# portflow: build and install with a plain make over cargo.
#
#	make                          build the release binaries
#	make install PREFIX=/usr/local
#	make uninstall PREFIX=/usr/local
#
# install: the nine programs in PREFIX/bin, the manual in PREFIX/man, the
# default chain of build-trigger in PREFIX/share/portflow/chain (the tools are
# built knowing PREFIX), and in PREFIX/share/examples/portflow an example
# portflow.conf and the rc.d(8) script of build-trigger, to copy into /etc.
# DESTDIR is put before every path, for packages.  install-files installs what
# is built already (PROFILE=debug for target/debug), without running cargo.

PREFIX ?=	/usr/local
DESTDIR ?=
CARGO ?=	cargo
PROFILE ?=	release
TARGET_DIR ?=	target
INSTALL ?=	install

BINDIR =	${DESTDIR}${PREFIX}/bin
MANDIR =	${DESTDIR}${PREFIX}/man
SHAREDIR =	${DESTDIR}${PREFIX}/share/portflow
EXAMPLESDIR =	${DESTDIR}${PREFIX}/share/examples/portflow

PROGRAMS =	ports-delta pkgpath-expand clean-env build-list collect-built \
		rsync-list summary-mail build-trigger build-coordinator
MAN1 =		ports-delta.1 pkgpath-expand.1 clean-env.1 build-list.1 collect-built.1 \
		rsync-list.1 summary-mail.1 build-trigger.1 build-coordinator.1
MAN5 =		portflow-records.5 portflow.conf.5
MAN7 =		portflow.7

all: build

build:
	PORTFLOW_PREFIX=${PREFIX} ${CARGO} build --profile ${PROFILE} --bins

install: build install-files

install-files:
	${INSTALL} -d ${BINDIR} ${MANDIR}/man1 ${MANDIR}/man5 ${MANDIR}/man7 \
	    ${SHAREDIR} ${EXAMPLESDIR}
	for p in ${PROGRAMS}; do \
		${INSTALL} -m 755 ${TARGET_DIR}/${PROFILE}/$$p ${BINDIR}/$$p || exit 1; \
	done
	for m in ${MAN1}; do ${INSTALL} -m 644 man/man1/$$m ${MANDIR}/man1/$$m || exit 1; done
	for m in ${MAN5}; do ${INSTALL} -m 644 man/man5/$$m ${MANDIR}/man5/$$m || exit 1; done
	for m in ${MAN7}; do ${INSTALL} -m 644 man/man7/$$m ${MANDIR}/man7/$$m || exit 1; done
	${INSTALL} -m 644 pipelines/chain ${SHAREDIR}/chain
	${INSTALL} -m 644 examples/portflow.conf ${EXAMPLESDIR}/portflow.conf
	${INSTALL} -m 555 pipelines/rc.d/build_trigger ${EXAMPLESDIR}/build_trigger

uninstall:
	for p in ${PROGRAMS}; do rm -f ${BINDIR}/$$p; done
	for m in ${MAN1}; do rm -f ${MANDIR}/man1/$$m; done
	for m in ${MAN5}; do rm -f ${MANDIR}/man5/$$m; done
	for m in ${MAN7}; do rm -f ${MANDIR}/man7/$$m; done
	rm -f ${SHAREDIR}/chain ${EXAMPLESDIR}/portflow.conf ${EXAMPLESDIR}/build_trigger
	-rmdir ${SHAREDIR} ${EXAMPLESDIR} 2>/dev/null

.PHONY: all build install install-files uninstall

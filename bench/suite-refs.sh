# shellcheck shell=bash
# suite-refs.sh: which vhprep run of bench/suite.sh each peer is compared with (the same
# access path, the same work). Sourced by suite.sh (its tables) and plot.sh (its charts).

# suite_ref KEY: prints the vhprep run KEY is compared with, or nothing (KEY is vhprep's).
suite_ref() {
	case $1 in
	python-mount | vips-mount) echo vhprep-mount ;;
	find-mount | ls-mount) echo vhprep-walk-mount ;;
	nfsls-nfs3) echo vhprep-walk-nfs3 ;;
	*) echo "" ;;
	esac
}

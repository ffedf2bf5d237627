#!/usr/bin/env bash
# Installs the Debian 12 packages vhprep needs to build, test and benchmark.
# With --build-only, only what building vhprep needs (see below).
# Idempotent and quick when everything is there: apt runs only for missing packages.
set -euo pipefail

# --build-only: what building and running vhprep needs (a Valohai step that builds it),
# not the test servers, peers and benchmark tools.
build_only=0
[ "${1:-}" = --build-only ] && build_only=1

packages=(
	build-essential cmake pkg-config
	libvips-dev libvips-tools        # the general image kernel (8.14)
	zlib1g-dev                       # mkimages deflates its bomb PNG by hand
	libturbojpeg0-dev                # the JPEG fast path: decode/encode YCbCr planes
	libjpeg62-turbo-dev              # the JPEG fast path: libvips' reading of a cut file
	libswscale-dev                   # the JPEG fast path: plane resampling
	libjansson-dev                   # JSON records
	libxxhash-dev                    # sample/shard hashing
	libssl-dev                       # SHA-256 provenance checksums
	libnfs-dev                       # the nfs:// source (libnfs 4.0)
	libspng-dev                      # the PNG fast path: decode
	libdeflate-dev                   # the PNG fast path: encode (zlib streams, CRC-32)
	# --urls: libcurl's OpenSSL flavour (HTTP/2 through nghttp2; the OpenSSL the project
	# already links for SHA-256, and Debian's default libcurl4)
	libcurl4-openssl-dev
	fonts-dejavu-core                # the preview sheet's captions (vips_text, DejaVu Sans Mono)
	fonts-wqy-microhei               # the preview sheet's captions: CJK file names
	libarchive-dev                   # io/pack: tar members of --pack shards
	libzstd-dev zstd                 # io/pack: tar.zst frames; zstd -d in the index reader test
)
[ $build_only = 1 ] || packages+=(
	bc                               # benchmark arithmetic
	libcriterion-dev                 # unit tests
	libfuse3-dev fuse3               # bench/latencyfs, the emulated NFS mount
	libnfs-utils                     # nfs-ls/nfs-cat: ganesha.sh readiness, benchmarks
	nfs-ganesha nfs-ganesha-vfs      # the real NFS server of tests/integration/test_nfs.c
	rpcbind                          # NFSv3 MOUNT goes through the portmapper
	python3-pil                      # the Python peer the benchmarks compare against
	hyperfine time                   # benchmark timing
	jq                               # bench/nfs-bench.sh and tune.sh read vhprep bench JSON
	curl openssl                     # tests/fixtures/http.sh: certificates, readiness
	nginx-light                      # the HTTP/1.1 and HTTP/2+TLS test server
	aria2 wget                       # the download peers of bench/http-bench.sh
	iproute2 util-linux              # netns.sh: DNS and metadata tests in a namespace
	gnuplot-nox librsvg2-bin         # bench/plot.sh draws the SVG charts; the tests render them
	python3-yaml                     # tests/examples reads examples/valohai.yaml
	plasma-workspace-wallpapers      # a real image tree nobody here made (itest_bytype)
	# tests/run.sh: the ThreadSanitizer build and the libFuzzer targets (clang 14, its
	# sanitizer runtimes, LLVM's OpenMP runtime and its Archer tool), the format check
	clang-14 libclang-rt-14-dev libomp-14-dev clang-format-14
)

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing+=("$p")
done
if ((${#missing[@]})); then
	echo "install-deps: installing ${missing[*]}" >&2
	if [ "$(id -u)" -ne 0 ]; then
		SUDO=sudo
	else
		SUDO=
	fi
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
		"${missing[@]}" >/dev/null
fi

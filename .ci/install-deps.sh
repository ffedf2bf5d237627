#!/usr/bin/env bash
# Installs the Debian 12 packages vhprep needs to build, test and benchmark.
# Idempotent and quick when everything is there: apt runs only for missing packages.
set -euo pipefail

packages=(
	build-essential cmake pkg-config
	libvips-dev libvips-tools        # the general image kernel (8.14)
	zlib1g-dev                       # mkimages deflates its bomb PNG by hand
	bc                               # benchmark arithmetic
	libturbojpeg0-dev                # the JPEG fast path: decode/encode YCbCr planes
	libjpeg62-turbo-dev              # the JPEG fast path: libvips' reading of a cut file
	libswscale-dev                   # the JPEG fast path: plane resampling
	libjansson-dev                   # JSON records
	libxxhash-dev                    # sample/shard hashing
	libssl-dev                       # SHA-256 provenance checksums
	libcriterion-dev                 # unit tests
	libfuse3-dev fuse3               # bench/latencyfs, the emulated NFS mount
	libnfs-dev                       # the nfs:// source (libnfs 4.0)
	libnfs-utils                     # nfs-ls/nfs-cat: ganesha.sh readiness, benchmarks
	nfs-ganesha nfs-ganesha-vfs      # the real NFS server of tests/integration/test_nfs.c
	rpcbind                          # NFSv3 MOUNT goes through the portmapper
	libspng-dev                      # the PNG fast path: decode
	libdeflate-dev                   # the PNG fast path: encode (zlib streams, CRC-32)
	python3-pil                      # the Python peer the benchmarks compare against
	hyperfine time                   # benchmark timing
	jq                               # bench/nfs-bench.sh and tune.sh read vhprep bench JSON
	# --urls: libcurl's OpenSSL flavour (HTTP/2 through nghttp2; the OpenSSL the project
	# already links for SHA-256, and Debian's default libcurl4), and the servers and
	# peers of tests/integration/test_http.c and bench/http-bench.sh
	libcurl4-openssl-dev curl openssl
	nginx-light                      # the HTTP/1.1 and HTTP/2+TLS test server
	aria2 wget                       # the download peers of bench/http-bench.sh
	iproute2 util-linux              # netns.sh: DNS and metadata tests in a namespace
	fonts-dejavu-core                # the preview sheet's captions (vips_text, DejaVu Sans Mono)
	fonts-wqy-microhei               # the preview sheet's captions: CJK file names
	gnuplot-nox librsvg2-bin         # bench/plot.sh draws the SVG charts; the tests render them
	libarchive-dev                   # io/pack: tar members of --pack shards
	libzstd-dev zstd                 # io/pack: tar.zst frames; zstd -d in the index reader test
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

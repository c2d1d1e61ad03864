#!/usr/bin/env bash
# gpu-bundle.sh: build, on this machine, everything scripts/gpu-on-device.sh
# runs on a GPU machine that has the NVIDIA driver but no Go toolchain:
#   .devbin/lorastudio.gz   the CLI (no cgo BLAS: it needs no libopenblas there)
#   .devbin/*.test.gz       test binaries of the GL backend and of the GL goldens
#   .devbin/fixtures.tgz    the fixture files those goldens read
# and .gl/ (Debian's libglvnd EGL/GL loaders and libX11's chain, which the
# binaries link). Usage: scripts/gpu-bundle.sh; then run
# scripts/gpu-on-device.sh there with .devbin and .gl beside it.
# The device tool copies at most 64 MiB (tree + carried folders) and the
# tracked fixtures alone are larger: move engine/testdata aside for the call
# (the golden tests there read the copy in .devbin/fixtures.tgz).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .devbin .gl/x11
ld='-s -w'
go build -ldflags "$ld" -o .devbin/lorastudio ./app
go test -c -ldflags "$ld" -o .devbin/gl.test ./engine/gl
for p in engine/unet engine/lora engine/train; do
	if ls $p/*_test.go >/dev/null 2>&1; then
		go test -c -ldflags "$ld" -o ".devbin/$(basename $p).test" "./$p"
	fi
done
rm -f .devbin/*.gz
gzip -f .devbin/lorastudio .devbin/*.test
tar -czf .devbin/fixtures.tgz engine/testdata/sdxl-tiny/model engine/testdata/sdxl-tiny/goldens/lora \
	engine/testdata/sdxl-tiny/goldens/README.md engine/testdata/sdxl-tiny/lora
if [ ! -f .gl/libegl1_*.deb ]; then
	o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
	mkdir -p /tmp/amd64/partial
	apt-get $o update -qq
	(cd .gl && apt-get $o download libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
	(cd .gl/x11 && apt-get $o download libx11-6 libxcb1 libxau6 libxdmcp6 libbsd0 libmd0)
fi
du -sh .devbin .gl

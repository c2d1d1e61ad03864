# LoRA Studio — build, run and test on a fresh Debian/Ubuntu machine.
#   make run    install what is missing, build, open the studio
#   make test   install what is missing, go vet, every test (GL on Mesa, UI under Xvfb)
# See README.md for macOS and Windows.

SHELL := /bin/bash
GO    ?= go
BIN   := bin/lorastudio
# openblas: the CPU backend's optional BLAS accelerator (engine/cpu/blas_openblas.go);
# the paths without it are tested too (test-cpu-paths). sqlite_fts5: SQLite's full-text
# search, which the gallery's prompt search needs (go-sqlite3 compiles it in only with it).
TAGS  ?= openblas sqlite_fts5
# Fyne reads the locale from LANG; with C.UTF-8 it logs a locale error.
export LANG := en_US.UTF-8

# System packages a fresh machine needs: GLFW's X11 headers (Fyne's window),
# EGL + Mesa (the engine's headless GL 4.3 compute context, llvmpipe without a GPU),
# OpenBLAS (CPU accelerator), Xvfb + ImageMagick + xdotool (the end-to-end window test),
# glslang + SPIRV-Tools + SPIRV-Cross (go generate ./shaders/: the Metal kernels, checked by a test).
APT_PACKAGES := gcc pkg-config libgl1-mesa-dev libegl-dev libx11-dev libxcursor-dev \
	libxrandr-dev libxinerama-dev libxi-dev libxxf86vm-dev libgl1-mesa-dri libegl1 \
	libegl-mesa0 libopenblas-dev xvfb xauth imagemagick xdotool \
	glslang-tools spirv-tools spirv-cross

.PHONY: all setup build run test test-cpu-paths test-darwin vet bench clean

all: build

# setup installs only the Debian packages that are missing (through sudo when not root).
setup:
	@missing=""; \
	for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if ! command -v apt-get >/dev/null; then \
	    echo "setup: not a Debian/Ubuntu system; install the equivalents of:$$missing (see README.md)"; exit 1; \
	  fi; \
	  sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	  echo "setup: installing$$missing"; \
	  $$sudo apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
	@command -v $(GO) >/dev/null || { echo "setup: Go 1.26 is needed (https://go.dev/dl)"; exit 1; }

build: setup
	$(GO) build -tags '$(TAGS)' -o $(BIN) ./app

run: build
	@if [ -z "$$DISPLAY" ] && [ -z "$$WAYLAND_DISPLAY" ]; then \
	  echo "run: no display; starting the studio under xvfb-run (screenshot it with: import -window root shot.png)"; \
	  xvfb-run -a -s '-screen 0 1600x1000x24' ./$(BIN) $(ARGS); \
	else ./$(BIN) $(ARGS); fi

vet: setup
	$(GO) vet -tags '$(TAGS)' ./...

test: vet
	$(GO) test -tags '$(TAGS)' -timeout 20m ./...
	$(MAKE) --no-print-directory test-cpu-paths
	$(MAKE) --no-print-directory test-darwin

# The Metal backend (engine/metal, darwin only, no cgo) is vetted and its test binary
# built for Apple Silicon from here; scripts/metal-check.sh runs it on a Mac. The whole
# engine vets for darwin too, but engine/gl (macOS has no OpenGL compute).
test-darwin:
	GOOS=darwin GOARCH=arm64 CGO_ENABLED=0 $(GO) vet ./engine/metal/ ./engine/device/
	GOOS=darwin GOARCH=arm64 CGO_ENABLED=0 $(GO) vet $$($(GO) list ./engine/... | grep -v '/engine/gl$$')
	GOOS=darwin GOARCH=arm64 CGO_ENABLED=0 $(GO) test -c -o /dev/null ./engine/metal/
	GOOS=darwin GOARCH=arm64 CGO_ENABLED=0 $(GO) test -c -o /dev/null ./engine/device/

# The CPU backend's other matmul paths stay tested too: without BLAS (Go with
# its AVX2 assembly kernel, the default of a plain `go build`) and the portable
# Go kernel (-tags purego) that other CPUs use.
test-cpu-paths:
	$(GO) test -tags sqlite_fts5 -timeout 10m ./engine/cpu/...
	$(GO) test -tags 'purego sqlite_fts5' -timeout 10m ./engine/cpu/...

bench: build
	./$(BIN) bench ops --device cpu
	./$(BIN) bench ops --device gl

clean:
	rm -rf bin

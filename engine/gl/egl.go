package gl

/*
#cgo pkg-config: egl
#include <stdlib.h>
#include <string.h>
#include <EGL/egl.h>
#include <EGL/eglext.h>

#ifndef EGL_PLATFORM_SURFACELESS_MESA
#define EGL_PLATFORM_SURFACELESS_MESA 0x31DD
#endif

typedef EGLDisplay (*ls_getPlatformDisplay)(EGLenum, void*, const EGLint*);
typedef EGLBoolean (*ls_queryDevices)(EGLint, EGLDeviceEXT*, EGLint*);
typedef const char *(*ls_queryDeviceString)(EGLDeviceEXT, EGLint);

static int ls_hasExt(const char *list, const char *name) {
	if (list == NULL) return 0;
	size_t n = strlen(name);
	const char *p = list;
	while ((p = strstr(p, name)) != NULL) {
		if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == 0)) return 1;
		p += n;
	}
	return 0;
}

// ls_platformDisplay opens a display on the surfaceless platform (which = 0),
// on the first hardware EGL device (which = 1) or on the first EGL device of
// any kind, software included (which = 2); it returns EGL_NO_DISPLAY when the
// platform or such a device is not offered.
static EGLDisplay ls_platformDisplay(int which) {
	const char *cext = eglQueryString(EGL_NO_DISPLAY, EGL_EXTENSIONS);
	ls_getPlatformDisplay get = (ls_getPlatformDisplay)eglGetProcAddress("eglGetPlatformDisplayEXT");
	if (get == NULL) get = (ls_getPlatformDisplay)eglGetProcAddress("eglGetPlatformDisplay");
	if (get == NULL) return EGL_NO_DISPLAY;
	if (which == 0) {
		if (!ls_hasExt(cext, "EGL_MESA_platform_surfaceless")) return EGL_NO_DISPLAY;
		return get(EGL_PLATFORM_SURFACELESS_MESA, EGL_DEFAULT_DISPLAY, NULL);
	}
	if (!ls_hasExt(cext, "EGL_EXT_platform_device")) return EGL_NO_DISPLAY;
	ls_queryDevices q = (ls_queryDevices)eglGetProcAddress("eglQueryDevicesEXT");
	if (q == NULL) return EGL_NO_DISPLAY;
	ls_queryDeviceString qs = (ls_queryDeviceString)eglGetProcAddress("eglQueryDeviceStringEXT");
	EGLDeviceEXT devs[16];
	EGLint n = 0;
	if (!q(16, devs, &n) || n <= 0) return EGL_NO_DISPLAY;
	for (EGLint i = 0; i < n; i++) {
		if (which == 1 && qs != NULL && ls_hasExt(qs(devs[i], EGL_EXTENSIONS), "EGL_MESA_device_software")) continue;
		EGLDisplay d = get(EGL_PLATFORM_DEVICE_EXT, devs[i], NULL);
		if (d == EGL_NO_DISPLAY) continue;
		EGLint maj, min;
		if (eglInitialize(d, &maj, &min)) {
			eglTerminate(d);
			return d;
		}
	}
	return EGL_NO_DISPLAY;
}

static EGLContext ls_createContext(EGLDisplay d, int major, int minor, EGLint *err) {
	const char *dext = eglQueryString(d, EGL_EXTENSIONS);
	if (!ls_hasExt(dext, "EGL_KHR_surfaceless_context")) { *err = -1; return EGL_NO_CONTEXT; }
	EGLConfig cfg = (EGLConfig)0;
	if (!ls_hasExt(dext, "EGL_KHR_no_config_context")) {
		EGLint attr[] = { EGL_RENDERABLE_TYPE, EGL_OPENGL_BIT, EGL_NONE };
		EGLint n = 0;
		if (!eglChooseConfig(d, attr, &cfg, 1, &n) || n < 1) { *err = eglGetError(); return EGL_NO_CONTEXT; }
	}
	EGLint cattr[] = {
		EGL_CONTEXT_MAJOR_VERSION, major,
		EGL_CONTEXT_MINOR_VERSION, minor,
		EGL_CONTEXT_OPENGL_PROFILE_MASK, EGL_CONTEXT_OPENGL_CORE_PROFILE_BIT,
		EGL_NONE };
	EGLContext c = eglCreateContext(d, cfg, EGL_NO_CONTEXT, cattr);
	if (c == EGL_NO_CONTEXT) *err = eglGetError();
	return c;
}

static int ls_makeCurrent(EGLDisplay d, EGLContext c) {
	return eglMakeCurrent(d, EGL_NO_SURFACE, EGL_NO_SURFACE, c);
}

static int ls_release(EGLDisplay d) {
	return eglMakeCurrent(d, EGL_NO_SURFACE, EGL_NO_SURFACE, EGL_NO_CONTEXT);
}

static EGLDisplay ls_defaultDisplay(void) { return eglGetDisplay(EGL_DEFAULT_DISPLAY); }

static void *ls_proc(const char *name) { return (void*)eglGetProcAddress(name); }
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"unsafe"
)

// eglContext is one headless OpenGL context: an EGL display and a context with
// no surface. It must only be made current on the GL thread.
type eglContext struct {
	display  C.EGLDisplay
	context  C.EGLContext
	platform string
}

// newEGLContext opens a display (a hardware device, Mesa's surfaceless
// platform, any device, then the default display; $LORASTUDIO_EGL_PLATFORM =
// device, surfaceless or default forces one) and creates a core OpenGL 4.3+
// context on it. It does not make
// the context current.
func newEGLContext() (*eglContext, error) {
	var tries []string
	type platform struct {
		name string
		open func() C.EGLDisplay
	}
	hw := platform{"device", func() C.EGLDisplay { return C.ls_platformDisplay(1) }}
	sl := platform{"surfaceless", func() C.EGLDisplay { return C.ls_platformDisplay(0) }}
	anyDev := platform{"device (software)", func() C.EGLDisplay { return C.ls_platformDisplay(2) }}
	def := platform{"default", func() C.EGLDisplay { return C.ls_defaultDisplay() }}
	// A hardware GPU on the device platform first (on an NVIDIA machine with
	// Mesa also installed, the surfaceless platform would give llvmpipe),
	// then Mesa's surfaceless platform, then any device, then the default.
	order := []platform{hw, sl, anyDev, def}
	switch os.Getenv("LORASTUDIO_EGL_PLATFORM") {
	case "device":
		order = []platform{hw, anyDev}
	case "surfaceless":
		order = []platform{sl}
	case "default":
		order = []platform{def}
	}
	for _, p := range order {
		d := p.open()
		if d == 0 {
			tries = append(tries, p.name+": no display")
			continue
		}
		var maj, min C.EGLint
		if C.eglInitialize(d, &maj, &min) == C.EGL_FALSE {
			tries = append(tries, fmt.Sprintf("%s: eglInitialize failed (0x%x)", p.name, int(C.eglGetError())))
			continue
		}
		if C.eglBindAPI(C.EGL_OPENGL_API) == C.EGL_FALSE {
			tries = append(tries, fmt.Sprintf("%s: eglBindAPI(OpenGL) failed (0x%x)", p.name, int(C.eglGetError())))
			C.eglTerminate(d)
			continue
		}
		var ctx C.EGLContext
		var cerr C.EGLint
		for _, v := range [][2]int{{4, 6}, {4, 5}, {4, 3}} {
			ctx = C.ls_createContext(d, C.int(v[0]), C.int(v[1]), &cerr)
			if ctx != nil || cerr == -1 {
				break
			}
		}
		if ctx == nil {
			if cerr == -1 {
				tries = append(tries, p.name+": no EGL_KHR_surfaceless_context")
			} else {
				tries = append(tries, fmt.Sprintf("%s: no OpenGL 4.3 core context (0x%x)", p.name, int(cerr)))
			}
			C.eglTerminate(d)
			continue
		}
		return &eglContext{display: d, context: ctx, platform: p.name}, nil
	}
	return nil, errors.New("gl: no headless OpenGL 4.3 context: " + strings.Join(tries, "; "))
}

// makeCurrent binds the context to the calling OS thread with no surface.
func (c *eglContext) makeCurrent() error {
	if C.eglBindAPI(C.EGL_OPENGL_API) == C.EGL_FALSE {
		return fmt.Errorf("gl: eglBindAPI failed (0x%x)", int(C.eglGetError()))
	}
	if C.ls_makeCurrent(c.display, c.context) == 0 {
		return fmt.Errorf("gl: eglMakeCurrent failed (0x%x)", int(C.eglGetError()))
	}
	return nil
}

// destroy releases the context from the calling thread and frees it. The
// display stays initialized: EGL shares it with any other context in the
// process.
func (c *eglContext) destroy() {
	C.ls_release(c.display)
	C.eglDestroyContext(c.display, c.context)
}

// eglProcAddress looks a GL function up for gl.InitWithProcAddrFunc.
func eglProcAddress(name string) unsafe.Pointer {
	cs := C.CString(name)
	defer C.free(unsafe.Pointer(cs))
	return C.ls_proc(cs)
}

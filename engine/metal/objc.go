//go:build darwin

package metal

import (
	"fmt"
	"sync"
	"unsafe"

	"github.com/ebitengine/purego"
	"github.com/ebitengine/purego/objc"
)

// mtlSize is MTLSize: three NSUIntegers, passed by value.
type mtlSize struct{ W, H, D uint64 }

// Selectors, registered once.
var (
	selAlloc, selInit, selRelease, selRetain, selDrain                 objc.SEL
	selName, selUTF8String, selStringWithUTF8, selLocalizedDescription objc.SEL
	selNewCommandQueue, selNewLibrary, selNewFunction, selNewPipeline  objc.SEL
	selMaxThreads, selNewBuffer, selContents, selCommandBuffer         objc.SEL
	selComputeEncoder, selSetPipeline, selSetBuffer, selSetBytes       objc.SEL
	selDispatch, selEndEncoding, selCommit, selWaitUntilCompleted      objc.SEL
	selStatus, selError, selRecommendedWorkingSet, selMaxBufferLength  objc.SEL
	selMaxThreadgroupMemory, selHasUnifiedMemory                       objc.SEL
	selSetFastMath                                                     objc.SEL
	classNSString, classNSAutoreleasePool, classMTLCompileOptions      objc.Class
	mtlCreateSystemDefaultDevice                                       func() objc.ID
	loadOnce                                                           sync.Once
	loadErr                                                            error
)

// load opens the Metal and Foundation frameworks and registers the
// selectors the backend sends.
func load() error {
	loadOnce.Do(func() {
		if _, err := purego.Dlopen("/System/Library/Frameworks/Foundation.framework/Foundation", purego.RTLD_LAZY|purego.RTLD_GLOBAL); err != nil {
			loadErr = fmt.Errorf("metal: loading Foundation: %w", err)
			return
		}
		lib, err := purego.Dlopen("/System/Library/Frameworks/Metal.framework/Metal", purego.RTLD_LAZY|purego.RTLD_GLOBAL)
		if err != nil {
			loadErr = fmt.Errorf("metal: loading the Metal framework: %w", err)
			return
		}
		purego.RegisterLibFunc(&mtlCreateSystemDefaultDevice, lib, "MTLCreateSystemDefaultDevice")
		for p, n := range map[*objc.SEL]string{
			&selAlloc: "alloc", &selInit: "init", &selRelease: "release", &selRetain: "retain", &selDrain: "drain",
			&selName: "name", &selUTF8String: "UTF8String", &selStringWithUTF8: "stringWithUTF8String:",
			&selLocalizedDescription: "localizedDescription",
			&selNewCommandQueue:      "newCommandQueue", &selNewLibrary: "newLibraryWithSource:options:error:",
			&selNewFunction: "newFunctionWithName:", &selNewPipeline: "newComputePipelineStateWithFunction:error:",
			&selMaxThreads: "maxTotalThreadsPerThreadgroup", &selNewBuffer: "newBufferWithLength:options:",
			&selContents: "contents", &selCommandBuffer: "commandBuffer", &selComputeEncoder: "computeCommandEncoder",
			&selSetPipeline: "setComputePipelineState:", &selSetBuffer: "setBuffer:offset:atIndex:",
			&selSetBytes: "setBytes:length:atIndex:", &selDispatch: "dispatchThreadgroups:threadsPerThreadgroup:",
			&selEndEncoding: "endEncoding", &selCommit: "commit", &selWaitUntilCompleted: "waitUntilCompleted",
			&selStatus: "status", &selError: "error", &selRecommendedWorkingSet: "recommendedMaxWorkingSetSize",
			&selMaxBufferLength: "maxBufferLength", &selMaxThreadgroupMemory: "maxThreadgroupMemoryLength",
			&selHasUnifiedMemory: "hasUnifiedMemory",
			&selSetFastMath:      "setFastMathEnabled:",
		} {
			*p = objc.RegisterName(n)
		}
		classNSString = objc.GetClass("NSString")
		classNSAutoreleasePool = objc.GetClass("NSAutoreleasePool")
		classMTLCompileOptions = objc.GetClass("MTLCompileOptions")
		if classNSString == 0 || classNSAutoreleasePool == 0 || classMTLCompileOptions == 0 {
			loadErr = fmt.Errorf("metal: the classes NSString, NSAutoreleasePool and MTLCompileOptions are not all there")
		}
	})
	return loadErr
}

// nsString returns an autoreleased NSString holding s.
func nsString(s string) objc.ID {
	b := append([]byte(s), 0)
	return objc.ID(classNSString).Send(selStringWithUTF8, unsafe.Pointer(&b[0]))
}

// goString copies an NSString's UTF-8 text.
func goString(s objc.ID) string {
	if s == 0 {
		return ""
	}
	p := objc.Send[unsafe.Pointer](s, selUTF8String) // a C string the NSString owns
	if p == nil {
		return ""
	}
	var b []byte
	for i := 0; ; i++ {
		c := *(*byte)(unsafe.Add(p, i))
		if c == 0 {
			break
		}
		b = append(b, c)
	}
	return string(b)
}

// errorText is an NSError's localizedDescription, or "(no error object)".
func errorText(e objc.ID) string {
	if e == 0 {
		return "(no error object)"
	}
	return goString(e.Send(selLocalizedDescription))
}

// withPool runs f inside an autorelease pool, so the autoreleased objects
// it gets (command buffers, encoders, strings) are freed when it returns.
func withPool(f func() error) error {
	pool := objc.ID(classNSAutoreleasePool).Send(selAlloc).Send(selInit)
	defer pool.Send(selDrain)
	return f()
}

// Package gl is the OpenGL 4.3 compute backend: tensors live in shader
// storage buffers and every op is a GLSL compute kernel from shaders/gl (one
// kernel a file, forward beside backward).
//
// The context is headless: EGL with no surface, on a hardware device when
// there is one (EGL_EXT_platform_device), else Mesa's surfaceless platform,
// else the default display; no GLFW, no X. One goroutine locked to its OS
// thread owns the context (Thread: Call waits, CallAsync queues and keeps
// its error for the next Call), so the engine's context never becomes
// current on a thread Fyne's own GL context uses.
//
// A Device holds the context, its limits, a program cache (each kernel is
// compiled once per set of defines; compile and link errors name the kernel
// and carry the driver's log) and a buffer pool (buffers are reused by size
// class; memory in use and its peak are reported). Build with -tags gldebug
// to check glGetError after every GL call.
//
// Device limits are respected: a binding addresses at most
// GL_MAX_SHADER_STORAGE_BLOCK_SIZE bytes (128 MiB on llvmpipe), so
// elementwise kernels walk bigger tensors in bound ranges and other kernels
// refuse them with an error naming the limit; launches beyond 65535 work
// groups are tiled into a 2-D grid; f16/bf16 weights stay packed two to a
// uint and are unpacked in the kernel (no fp16 arithmetic is needed).
//
// Matmul and the convolutions share one tiled GEMM (common/gemm.glsl) with
// register blocks per invocation: on GPUs, 64x64 tiles (4x4 blocks) or, for
// big products, 128x128 tiles (8x8 blocks) staged through shared memory; on
// CPU rasterizers (llvmpipe, where barriers are costly) the matmul is
// register-only with 8x8 blocks. The convolutions gather their operand
// implicitly (no im2col buffer) and always stage it.
// Attention is fused: online softmax over key tiles, never the (Nq, Nk)
// score matrix; its backward recomputes the probabilities from the saved
// log-sum-exp.
package gl

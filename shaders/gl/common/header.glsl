// header.glsl is prepended to every kernel after #version and the defines.
// P holds a kernel's integer parameters, F its float parameters; each
// kernel documents which slot means what. The explicit locations let glslang
// compile the kernels to OpenGL SPIR-V (loose uniforms need one), the first
// step of the generated Metal kernels (shaders/metal).
layout(location = 0) uniform int P[32];
layout(location = 32) uniform float F[8];

// GROUP is the flat work-group index of a launch the host tiled into a 2-D
// grid (at most 65535 groups a dimension); kernels skip groups past the end.
#define GROUP (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x)
// GID is the flat invocation index of a tiled 1-D launch.
#define GID (GROUP * gl_WorkGroupSize.x + gl_LocalInvocationID.x)

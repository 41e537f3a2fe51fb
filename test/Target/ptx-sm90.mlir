// The GPU pipeline turns the three-parameter AdamW group into one PTX kernel
// for sm_90, in a gpu.binary. No GPU is needed: the PTX text is checked for
// the shape the numerics contract and the design need (ptxas-sm90.mlir
// assembles it).
//
// RUN: dqt-opt %dqt_src/examples/adamw_step.mlir --dqt-compile-gpu="chip=sm_90" > %t.mlir
//
// The module holds the binary only: no gpu.func, no host or device IR left.
// RUN: FileCheck %s --check-prefix=MODULE --input-file=%t.mlir \
// RUN:   --implicit-check-not=gpu.func --implicit-check-not=gpu.module \
// RUN:   --implicit-check-not=func.func --implicit-check-not=llvm.func \
// RUN:   --implicit-check-not=dqt. --implicit-check-not=gpu.binary
// MODULE: module attributes {gpu.container_module} {
// MODULE-NEXT: gpu.binary @dqt_kernels [#gpu.object<#nvvm.target<O = 3, chip = "sm_90", features = "+ptx80">, properties = {{.*}}, assembly = "
// MODULE-NEXT: {{^}}}{{$}}
//
// RUN: %extract-ptx %t.mlir > %t.ptx
// RUN: FileCheck %s --check-prefix=PTX --input-file=%t.ptx \
// RUN:   --implicit-check-not=.entry \
// RUN:   --implicit-check-not=sqrt.approx --implicit-check-not=div.approx \
// RUN:   --implicit-check-not=div.full --implicit-check-not=rcp.approx \
// RUN:   --implicit-check-not=fma. --implicit-check-not=.ftz \
// RUN:   --implicit-check-not=mul.f32 --implicit-check-not=add.f32 \
// RUN:   --implicit-check-not=sub.f32 --implicit-check-not=.local \
// RUN:   --implicit-check-not=.extern --implicit-check-not=call.uni
//
// Exactly one kernel; 128-bit loads of the 3 f32 streams (g, m, v) of each of
// the 3 segments and 128-bit stores of m and v; IEEE sqrt and division for
// every element path (3 segments x (4 lanes + 1 tail): one division per
// element plus the 3 next-delta ones), and one IEEE reciprocal 1/delta' per
// segment, shared by its lanes.
// RUN: grep "\.entry" %t.ptx | count 1
// RUN: grep "ld\.global\.v4" %t.ptx | count 9
// RUN: grep "st\.global\.v4" %t.ptx | count 6
// RUN: grep "sqrt\.rn\.f32" %t.ptx | count 15
// RUN: grep "div\.rn\.f32" %t.ptx | count 18
// RUN: grep "rcp\.rn\.f32" %t.ptx | count 3

// PTX: .version 8.0
// PTX: .target sm_90
// PTX: .address_size 64
// PTX: .visible .entry adamw_step(
// PTX: ld.global.v4.{{b32|f32}}
// PTX: sqrt.rn.f32
// PTX: div.rn.f32
// f32 multiplies and adds are explicitly round-to-nearest: ptxas never
// contracts mul.rn/add.rn into an fma.
// PTX: mul.rn.f32
// PTX: add.rn.f32
// PTX: st.global.v4.{{b32|f32}}
// Block reductions through shared memory and shuffles, one atomic per block
// and by-product: max of q', then the two counts.
// PTX: shfl.sync.bfly.b32
// PTX: atom.global.max.s64
// PTX: atom.global.add.u64
// PTX: atom.global.add.u64
// PTX: ret;

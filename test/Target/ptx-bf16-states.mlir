// The GPU kernel of an AdamW step with bf16 states
// (examples/adamw_bf16_states.mlir), for sm_80 and sm_90: no GPU is needed.
// The PTX has one kernel with the contract's IEEE math, 64-bit vector
// accesses of the four bf16 states of a thread (ld.global.v2.b32,
// st.global.v4.b16) next to the 128-bit gradient load, no conversion
// instruction (the bf16 <-> f32 steps are integer ops), and ptxas assembles
// it without spills.
//
// RUN: dqt-opt %dqt_src/examples/adamw_bf16_states.mlir --dqt-compile-gpu="chip=sm_90" \
// RUN:   | %extract-ptx > %t.sm90.ptx
// RUN: FileCheck %s --check-prefix=PTX --input-file=%t.sm90.ptx \
// RUN:   --implicit-check-not=.entry \
// RUN:   --implicit-check-not=sqrt.approx --implicit-check-not=div.approx \
// RUN:   --implicit-check-not=div.full --implicit-check-not=rcp.approx \
// RUN:   --implicit-check-not=fma. --implicit-check-not=.ftz \
// RUN:   --implicit-check-not=mul.f32 --implicit-check-not=add.f32 \
// RUN:   --implicit-check-not=sub.f32 --implicit-check-not=.local \
// RUN:   --implicit-check-not=.extern --implicit-check-not=call.uni \
// RUN:   --implicit-check-not=cvt.f32.bf16 --implicit-check-not=cvt.rn.bf16
//
// Per thread: one 128-bit load of g, two 64-bit loads of the bf16 m and v,
// two 64-bit stores of them; the tail handles single elements (b16).
// RUN: grep "ld\.global\.v4" %t.sm90.ptx | count 1
// RUN: grep "ld\.global\.v2\.b32" %t.sm90.ptx | count 2
// RUN: grep "st\.global\.v4\.b16" %t.sm90.ptx | count 2
// RUN: grep "ld\.global\.b16" %t.sm90.ptx | count 2
// RUN: grep "st\.global\.b16" %t.sm90.ptx | count 2
//
// PTX: .target sm_90
// PTX: .visible .entry adamw_bf16_step(
// PTX: ld.global.v2.b32
// PTX: ld.global.v2.b32
// PTX: ld.global.v4.b32
// PTX: sqrt.rn.f32
// PTX: div.rn.f32
// PTX: st.global.v4.b16
// PTX: st.global.v4.b16
// PTX: atom.global.max.s64
// PTX: ret;
//
// REQUIRES: ptxas
// RUN: %ptxas -arch=sm_90 -v %t.sm90.ptx -o %t.sm90.cubin 2>&1 \
// RUN:   | FileCheck %s --check-prefix=SM90
// RUN: dqt-opt %dqt_src/examples/adamw_bf16_states.mlir --dqt-compile-gpu="chip=sm_80" \
// RUN:   | %extract-ptx > %t.sm80.ptx
// RUN: %ptxas -arch=sm_80 -v %t.sm80.ptx -o %t.sm80.cubin 2>&1 \
// RUN:   | FileCheck %s --check-prefix=SM80
// RUN: test -s %t.sm90.cubin && test -s %t.sm80.cubin
//
// SM90: ptxas info    : Compiling entry function 'adamw_bf16_step' for 'sm_90'
// SM90: ptxas info    : Function properties for adamw_bf16_step
// SM90-NEXT: 0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
// SM90-NOT: ptxas {{(warning|error|fatal)}}
// SM80: ptxas info    : Compiling entry function 'adamw_bf16_step' for 'sm_80'
// SM80: ptxas info    : Function properties for adamw_bf16_step
// SM80-NEXT: 0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
// SM80-NOT: ptxas {{(warning|error|fatal)}}

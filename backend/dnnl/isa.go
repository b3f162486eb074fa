//go:build cgo

package dnnl

/*
#include "rg.h"
*/
import "C"

import (
	"fmt"
	"os"
)

// ISA returns the instruction set oneDNN's kernels use on this machine, as
// oneDNN names it in DNNL_MAX_CPU_ISA: "AVX512_CORE", "AVX2", "SSE41" and
// so on. It is the best the CPU has, or lower where the environment
// variable DNNL_MAX_CPU_ISA caps it.
func ISA() string {
	switch isa := C.dnnl_get_effective_cpu_isa(); isa {
	case C.dnnl_cpu_isa_sse41:
		return "SSE41"
	case C.dnnl_cpu_isa_avx:
		return "AVX"
	case C.dnnl_cpu_isa_avx2:
		return "AVX2"
	case C.dnnl_cpu_isa_avx2_vnni:
		return "AVX2_VNNI"
	case C.dnnl_cpu_isa_avx512_mic:
		return "AVX512_MIC"
	case C.dnnl_cpu_isa_avx512_mic_4ops:
		return "AVX512_MIC_4OPS"
	case C.dnnl_cpu_isa_avx512_core:
		return "AVX512_CORE"
	case C.dnnl_cpu_isa_avx512_core_vnni:
		return "AVX512_CORE_VNNI"
	case C.dnnl_cpu_isa_avx512_core_bf16:
		return "AVX512_CORE_BF16"
	case C.dnnl_cpu_isa_avx512_core_amx:
		return "AVX512_CORE_AMX"
	default:
		return fmt.Sprintf("ISA 0x%x", int(isa))
	}
}

// hasAVX2 reports whether oneDNN runs at least its AVX2 kernels.
func hasAVX2() bool {
	isa := C.dnnl_get_effective_cpu_isa()
	return isa&C.dnnl_cpu_isa_avx2 == C.dnnl_cpu_isa_avx2
}

// Version returns the version of the oneDNN library loaded, as "2.6.3".
func Version() string {
	v := C.dnnl_version()
	return fmt.Sprintf("%d.%d.%d", v.major, v.minor, v.patch)
}

// Describe returns the library and the instruction set the backend runs
// on, for bug reports and benchmark records: "oneDNN 2.6.3, ISA AVX2
// (DNNL_MAX_CPU_ISA=AVX2)", and the convolution algorithm where
// RESGO_CONV chose one: ", RESGO_CONV=auto".
func (b *Backend) Describe() string {
	s := fmt.Sprintf("oneDNN %s, ISA %s", Version(), ISA())
	if v := os.Getenv("DNNL_MAX_CPU_ISA"); v != "" {
		s += fmt.Sprintf(" (DNNL_MAX_CPU_ISA=%s)", v)
	}
	if b.s.convAlgo != ConvDirect {
		s += ", RESGO_CONV=" + b.s.convAlgo
	}
	return s
}

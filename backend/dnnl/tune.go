//go:build cgo

package dnnl

/*
#include "rg.h"
*/
import "C"

import (
	"fmt"
	"os"
	"time"
	"unsafe"

	"github.com/resgo/resgo/backend"
)

// Convolution algorithms, chosen by RESGO_CONV:
//
//	direct    oneDNN's direct convolution only (the default): the same
//	          arithmetic as PyTorch's, so logits and gradients agree to
//	          float rounding.
//	auto      per layer shape and pass (forward, backward data, backward
//	          weights), time the direct convolution and the Winograd
//	          F(4x4, 3x3) form once, when the pass first runs, and keep the
//	          faster (as PyTorch's cudnn.benchmark does on GPUs); the
//	          choice is kept in the tuning cache (tunecache.go), which later
//	          processes take it from. Winograd may want other layouts than
//	          the direct form (nChw16c where the direct one takes nhwc):
//	          its time then includes reordering its operands from and to
//	          the direct form's.
//	winograd  Winograd wherever it is offered.
//
// oneDNN 2.6 has Winograd only for 3x3 stride-1 convolutions without
// groups, and only with AVX-512. With AVX2 (and FMA), resgo's own
// Winograd F(4x4, 3x3) of wino.c takes its place in all three passes, on
// the direct kernels' nChw8c layout, where the channels come in blocks of
// 8 (input) and 16 (output) (the other way round for the pass to the
// weights, which it computes without bias); elsewhere every mode is
// direct. Winograd computes the same convolution in fewer multiplications
// but rounds differently: logits move by about 1e-5 relative
// (TestConvAlgo), and the training passes by as much
// (TestWinogradTraining), so a training run follows another trajectory
// than PyTorch's within float32 noise.
const (
	ConvDirect   = "direct"
	ConvAuto     = "auto"
	ConvWinograd = "winograd"
)

// convAlgoFromEnv reads RESGO_CONV.
func convAlgoFromEnv() (string, error) {
	switch v := os.Getenv("RESGO_CONV"); v {
	case "", ConvDirect:
		return ConvDirect, nil
	case ConvAuto, ConvWinograd:
		return v, nil
	default:
		return "", fmt.Errorf("RESGO_CONV=%q: want direct, auto or winograd", v)
	}
}

// ConvChoice records one convolution shape the autotuner measured.
type ConvChoice struct {
	Pass                string  // forward_inference, forward_training, backward_data or backward_weights
	Shape               string  // as oneDNN's verbose mode prints it: "mb1_ic64oc64_ih56oh56kh3sh1..."
	Direct, Winograd    float64 // best of the timed runs, milliseconds (0: not timed)
	DirectImpl, WinImpl string  // oneDNN's implementation names
	Chose               string  // ConvDirect or ConvWinograd
	Cached              bool    // taken from the tuning cache (see tunecache.go), timed by an earlier process
}

// ConvChoices returns the autotuner's decisions so far, in the order the
// shapes first ran (empty unless RESGO_CONV is auto or winograd).
func (b *Backend) ConvChoices() []ConvChoice {
	var out []ConvChoice
	b.s.do(func(s *state) { out = append(out, s.tuned...) })
	return out
}

// hasWinograd reports whether oneDNN runs kernels that have Winograd
// convolutions: AVX-512 (avx512_core) and above.
func hasWinograd() bool {
	isa := C.dnnl_get_effective_cpu_isa()
	return isa&C.dnnl_cpu_isa_avx512_core == C.dnnl_cpu_isa_avx512_core
}

// winogradShape reports whether oneDNN may have Winograd for a convolution
// of p with weights of shape ws: 3x3, stride 1, no dilation, no groups.
func winogradShape(ws []int, p backend.ConvParams) bool {
	return ws[2] == 3 && ws[3] == 3 && p.Stride == [2]int{1, 1} && p.Dilation == [2]int{1, 1} && p.Groups == 1
}

// useWinograd reports whether RESGO_CONV asks for Winograd and oneDNN may
// have it for a convolution of p with weights of shape ws.
func (s *state) useWinograd(ws []int, p backend.ConvParams) bool {
	return s.convAlgo != ConvDirect && winogradShape(ws, p) && hasWinograd()
}

// tryWinograd returns the primitive descriptor of the Winograd form of a
// forward convolution (prop: inference or training), or nil where oneDNN
// has none. It may take other activation layouts than the direct form
// (nChw16c where the direct one takes nhwc): then the layers around it
// reorder. attr nil is the default attributes. The caller destroys it.
func (s *state) tryWinograd(xs, ws, ys []int, p backend.ConvParams, bias bool, attr C.dnnl_primitive_attr_t, prop C.dnnl_prop_kind_t) C.dnnl_primitive_desc_t {
	d := s.convFwdDescAlg(xs, ws, ys, p, bias, prop, C.dnnl_convolution_winograd)
	return s.tryPrimDesc(unsafe.Pointer(&d), attr, nil)
}

// tryPrimDesc is primDesc that returns nil where oneDNN has no
// implementation of desc.
func (s *state) tryPrimDesc(desc unsafe.Pointer, attr C.dnnl_primitive_attr_t, hint C.dnnl_primitive_desc_t) C.dnnl_primitive_desc_t {
	if attr == nil {
		attr = s.newAttr(false, false)
		defer C.dnnl_primitive_attr_destroy(attr)
	}
	var pd C.dnnl_primitive_desc_t
	if C.dnnl_primitive_desc_create(&pd, C.const_dnnl_op_desc_t(desc), attr, s.ctx.engine, hint) != C.dnnl_success {
		return nil
	}
	return pd
}

// keepFaster keeps one of the direct and Winograd forms of a convolution
// pass, records the choice, and frees the other. Under RESGO_CONV=auto it
// takes the choice from the tuning cache, or else times both on buffers of
// their own, adds what extra returns, the reorders each form costs around
// it (milliseconds), and caches the choice; under winograd it keeps
// Winograd untimed.
func (s *state) keepFaster(pass, shape string, direct *prim, dargs []arg, win *prim, wargs []arg, extra func() (direct, win float64)) *prim {
	c := ConvChoice{Pass: pass, Shape: shape, DirectImpl: direct.impl, WinImpl: win.impl, Chose: ConvWinograd}
	if s.convAlgo == ConvAuto {
		key := tuneKey(s.threads, pass, shape, direct.impl, win.impl)
		if e, ok := s.cache.get(key); ok {
			c.Direct, c.Winograd, c.Chose, c.Cached = e.Direct, e.Winograd, e.Chose, true
		} else {
			ed, ew := extra()
			c.Direct = s.timePrim(direct, dargs) + ed
			c.Winograd = s.timePrim(win, wargs) + ew
			if c.Direct <= c.Winograd {
				c.Chose = ConvDirect
			}
			s.cache.put(key, tuneEntry{Direct: c.Direct, Winograd: c.Winograd, Chose: c.Chose})
		}
	}
	s.tuned = append(s.tuned, c)
	if c.Chose == ConvDirect {
		C.rg_op_free(win.op)
		return direct
	}
	C.rg_op_free(direct.op)
	return win
}

// propName names a forward propagation kind as oneDNN's verbose mode does.
func propName(prop C.dnnl_prop_kind_t) string {
	if prop == C.dnnl_forward_inference {
		return "forward_inference"
	}
	return "forward_training"
}

// timeReorder returns the best of a few reorders from one layout to
// another, in milliseconds (0 when they are the same). The tests' reorder
// counts do not include it.
func (s *state) timeReorder(from, to *memDesc) float64 {
	if from == to {
		return 0
	}
	all, blocked := s.reorders, s.blockedReorders
	defer func() { s.reorders, s.blockedReorders = all, blocked }()
	src, dst := make([]float32, from.size/4), make([]float32, to.size/4)
	return bestOf(func() { s.reorder(dst, to, src, from) })
}

// timePrim returns the best of a few runs of pr, in milliseconds, on
// buffers of its own (zeros: the kernels' speed does not depend on values).
func (s *state) timePrim(pr *prim, args []arg) float64 {
	ptrs := make([]unsafe.Pointer, len(args))
	for i, a := range args {
		buf := make([]float32, a.md.size/4)
		ptrs[i] = ptr(buf)
	}
	return bestOf(func() { s.exec(pr, ptrs...) })
}

// bestOf runs f once untimed (page faults, caches), then returns the
// shortest of five timed runs in milliseconds.
func bestOf(f func()) float64 {
	f()
	best := 0.0
	for r := range 5 {
		t0 := time.Now()
		f()
		if ms := float64(time.Since(t0).Nanoseconds()) / 1e6; r == 0 || ms < best {
			best = ms
		}
	}
	return best
}

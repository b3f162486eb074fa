//go:build cgo

package dnnl

/*
#include "rg.h"
*/
import "C"

import (
	"fmt"
	"unsafe"

	"github.com/resgo/resgo/backend"
	"github.com/resgo/resgo/tensor"
)

// convGeom holds a convolution's parameters as oneDNN takes them.
type convGeom struct {
	strides, dilates, padL, padR C.dnnl_dims_t
}

func geomOf(p backend.ConvParams) convGeom {
	// oneDNN counts dilation from 0 (none), PyTorch from 1. Padding is
	// symmetric as in PyTorch; oneDNN checks that the output size is
	// floor((in + 2*pad - extent)/stride) + 1, as PyTorch computes it.
	return convGeom{dims2(p.Stride, 0), dims2(p.Dilation, 1), dims2(p.Pad, 0), dims2(p.Pad, 0)}
}

// convWeightDims returns the dims oneDNN gives the weights [O, I/g, KH, KW]
// of a convolution with g groups: the same for g = 1, else
// [g, O/g, I/g, KH, KW], which has the same row-major memory.
func convWeightDims(w []int, groups int) []int {
	if groups == 1 {
		return w
	}
	return []int{groups, w[0] / groups, w[1], w[2], w[3]}
}

// checkConv validates a convolution's operands and returns y's shape and
// the normalized parameters.
func (s *state) checkConv(x *tensor.Tensor, wShape []int, p backend.ConvParams) ([]int, backend.ConvParams) {
	s.require4D(x, "x")
	ys, err := backend.CheckConv(x.Shape(), wShape, p)
	if err != nil {
		s.fail(err.Error(), nil)
	}
	return ys, p.Norm()
}

// convFwdDesc initializes a forward convolution descriptor with layouts
// chosen by oneDNN for the data and weights.
func (s *state) convFwdDesc(xs, ws, ys []int, p backend.ConvParams, bias bool, prop C.dnnl_prop_kind_t) C.dnnl_convolution_desc_t {
	return s.convFwdDescAlg(xs, ws, ys, p, bias, prop, C.dnnl_convolution_direct)
}

// convMDs returns the memory descriptors of a convolution's data, weights
// and output, with layouts for oneDNN to choose, and of its bias (plain;
// nil without one).
func (s *state) convMDs(xs, ws, ys []int, p backend.ConvParams, bias bool) (src, wei, dst C.dnnl_memory_desc_t, bmd *C.dnnl_memory_desc_t) {
	src, wei, dst = s.anyDesc(xs), s.anyDesc(convWeightDims(ws, p.Groups)), s.anyDesc(ys)
	if bias {
		bmd = s.plain(ws[:1]).c
	}
	return src, wei, dst, bmd
}

// convFwdDescAlg is convFwdDesc with the algorithm alg.
func (s *state) convFwdDescAlg(xs, ws, ys []int, p backend.ConvParams, bias bool, prop C.dnnl_prop_kind_t, alg C.dnnl_alg_kind_t) C.dnnl_convolution_desc_t {
	g := geomOf(p)
	src, wei, dst, bmd := s.convMDs(xs, ws, ys, p, bias)
	var d C.dnnl_convolution_desc_t
	s.check(C.dnnl_dilated_convolution_forward_desc_init(&d, prop, alg,
		&src, &wei, bmd, &dst, &g.strides[0], &g.dilates[0], &g.padL[0], &g.padR[0]), "dnnl_dilated_convolution_forward_desc_init")
	return d
}

// conv2D implements Backend.Conv2D.
func (s *state) conv2D(y, x, w, b *tensor.Tensor, p backend.ConvParams, e backend.Epilogue) {
	s.begin("dnnl.Conv2D", y, x, w, b, e.Add)
	if w == nil {
		s.fail("w is nil", nil)
	}
	ys, p := s.checkConv(x, w.Shape(), p)
	if !w.IsPlain() {
		s.fail("weights must be Plain", nil)
	}
	var flags uint32
	if b != nil {
		s.requirePlain(b, "bias", ys[1])
		flags |= fBias
	}
	if e.Add != nil {
		s.requireShape(e.Add, "epilogue Add", ys)
		flags |= fSum
	}
	if e.ReLU {
		flags |= fReLU
	}
	prop := C.dnnl_prop_kind_t(C.dnnl_forward_training)
	if e.Inference {
		// oneDNN may pick kernels that need no backward pass: about 5%
		// faster on ResNet-50 at batch 1 here.
		flags |= fInference
		prop = C.dnnl_forward_inference
	}
	if y == nil || y == x || y == w || y == b {
		s.fail("y must be a tensor distinct from x, w and b", nil)
	}
	key := opKey{kind: kConvFwd, a: keyOf(x.Shape()), b: keyOf(w.Shape()), conv: p, flags: flags}
	pr := s.cached(key, func() *prim {
		d := s.convFwdDesc(x.Shape(), w.Shape(), ys, p, b != nil, prop)
		attr := s.newAttr(e.Add != nil, e.ReLU)
		defer C.dnnl_primitive_attr_destroy(attr)
		pd := s.primDesc(unsafe.Pointer(&d), attr, nil)
		defer C.dnnl_primitive_desc_destroy(pd)
		pr, args := s.convFwdPrim(pd, b != nil)
		shape := convShape(x.Shape(), w.Shape(), ys, p)
		if c := winoForward(x.Shape(), w.Shape(), p, b != nil, e); s.ownWinograd(w.Shape(), p, c, pr.src, pr.dst) {
			wpr, wargs := s.newWino(pr, args, c)
			return s.keepFaster(propName(prop), shape, pr, args, wpr, wargs, func() (float64, float64) {
				if e.Inference {
					return 0, 0 // both keep their weights converted
				}
				// Training: both convert the weights every call.
				return s.timeReorder(s.plain(w.Shape()), pr.weights), bestOf(func() { s.winoWeights(w, wpr, false) })
			})
		}
		if !s.useWinograd(w.Shape(), p) {
			return pr
		}
		wpd := s.tryWinograd(x.Shape(), w.Shape(), ys, p, b != nil, attr, prop)
		if wpd == nil {
			return pr
		}
		defer C.dnnl_primitive_desc_destroy(wpd)
		wpr, wargs := s.convFwdPrim(wpd, b != nil)
		return s.keepFaster(propName(prop), shape, pr, args, wpr, wargs, func() (float64, float64) {
			// The layers around take the direct form's layouts.
			return 0, s.timeReorder(pr.src, wpr.src) + s.timeReorder(wpr.dst, pr.dst)
		})
	})

	xd := s.input(x, pr.src, 0)
	wd := s.convWeightsFor(pr, w, p, e.Inference)
	if e.Add != nil {
		// The sum post-op adds what y holds before the call: put Add there,
		// in y's new layout.
		if e.Add == y {
			if s.layout(y) != pr.dst {
				tmp := s.input(y, pr.dst, 1)
				s.setOut(y, pr.dst, ys)
				copy(y.Storage(), tmp)
			} else {
				s.setOut(y, pr.dst, ys) // keeps the values
			}
		} else {
			have := s.layout(e.Add)
			s.setOut(y, pr.dst, ys)
			s.reorder(y.Storage(), pr.dst, e.Add.Storage(), have)
		}
	} else {
		s.setOut(y, pr.dst, ys)
	}
	if b != nil {
		s.exec(pr, ptr(xd), ptr(wd), ptr(b.Values()), ptr(y.Storage()))
	} else {
		s.exec(pr, ptr(xd), ptr(wd), ptr(y.Storage()))
	}
}

// convWeightsFor returns the weights w of a convolution of p in the form
// pr takes them: transformed for wino.c, or reordered into pr's layout;
// cached per tensor in inference (see weightsIn).
func (s *state) convWeightsFor(pr *prim, w *tensor.Tensor, p backend.ConvParams, inference bool) []float32 {
	if pr.wino != nil {
		return s.winoWeights(w, pr, inference)
	}
	return s.weightsIn(w, s.plain(convWeightDims(w.Shape(), p.Groups)), pr.weights, inference)
}

// convFwdPrim creates the forward convolution primitive of pd and returns
// it with its arguments.
func (s *state) convFwdPrim(pd C.dnnl_primitive_desc_t, bias bool) (*prim, []arg) {
	args := []arg{
		{C.DNNL_ARG_SRC, query(pd, C.dnnl_query_src_md, 0)},
		{C.DNNL_ARG_WEIGHTS, query(pd, C.dnnl_query_weights_md, 0)},
	}
	if bias {
		args = append(args, arg{C.DNNL_ARG_BIAS, query(pd, C.dnnl_query_weights_md, 1)})
	}
	args = append(args, arg{C.DNNL_ARG_DST, query(pd, C.dnnl_query_dst_md, 0)})
	pr := s.newPrim(pd, args...)
	pr.src, pr.weights, pr.dst = args[0].md, args[1].md, args[len(args)-1].md
	return pr, args
}

// convShape names a convolution's shape as oneDNN's verbose mode does.
func convShape(xs, ws, ys []int, p backend.ConvParams) string {
	return fmt.Sprintf("mb%d_ic%doc%d_ih%doh%dkh%dsh%dph%d_iw%dow%dkw%dsw%dpw%d",
		xs[0], xs[1], ys[1], xs[2], ys[2], ws[2], p.Stride[0], p.Pad[0], xs[3], ys[3], ws[3], p.Stride[1], p.Pad[1])
}

// conv2DBackwardData implements Backend.Conv2DBackwardData.
func (s *state) conv2DBackwardData(dx, dy, w, x *tensor.Tensor, p backend.ConvParams) {
	s.begin("dnnl.Conv2DBackwardData", dx, dy, w, x)
	if w == nil {
		s.fail("w is nil", nil)
	}
	ys, p := s.checkConv(x, w.Shape(), p)
	s.requireShape(dy, "dy", ys)
	if !w.IsPlain() {
		s.fail("weights must be Plain", nil)
	}
	if dx == nil || dx == dy || dx == w {
		s.fail("dx must be a tensor distinct from dy and w", nil)
	}
	xs := append([]int(nil), x.Shape()...) // dx may be x
	key := opKey{kind: kConvBwdData, a: keyOf(xs), b: keyOf(w.Shape()), conv: p}
	pr := s.cached(key, func() *prim {
		fd := s.convFwdDesc(xs, w.Shape(), ys, p, false, C.dnnl_forward_training)
		hint := s.primDesc(unsafe.Pointer(&fd), nil, nil)
		defer C.dnnl_primitive_desc_destroy(hint)
		pd := s.convBwdDataPD(C.dnnl_convolution_direct, xs, w.Shape(), ys, p, hint)
		if pd == nil {
			s.fail("oneDNN has no backward-data convolution for this shape", nil)
		}
		defer C.dnnl_primitive_desc_destroy(pd)
		pr, args := s.convBwdDataPrim(pd)
		if c := winoBackwardData(w.Shape(), ys, p); s.ownWinograd(w.Shape(), p, c, pr.dst, pr.src) {
			wpr, wargs := s.newWino(pr, args, c)
			plainW := s.plain(w.Shape())
			return s.keepFaster("backward_data", convShape(xs, w.Shape(), ys, p), pr, args, wpr, wargs, func() (float64, float64) {
				// Both convert the weights every call.
				return s.timeReorder(plainW, pr.weights), bestOf(func() { s.winoWeights(w, wpr, false) })
			})
		}
		if !s.useWinograd(w.Shape(), p) {
			return pr
		}
		whint := s.tryWinograd(xs, w.Shape(), ys, p, false, nil, C.dnnl_forward_training)
		if whint == nil {
			return pr
		}
		defer C.dnnl_primitive_desc_destroy(whint)
		wpd := s.convBwdDataPD(C.dnnl_convolution_winograd, xs, w.Shape(), ys, p, whint)
		if wpd == nil {
			return pr
		}
		defer C.dnnl_primitive_desc_destroy(wpd)
		wpr, wargs := s.convBwdDataPrim(wpd)
		plainW := s.plain(convWeightDims(w.Shape(), p.Groups))
		return s.keepFaster("backward_data", convShape(xs, w.Shape(), ys, p), pr, args, wpr, wargs, func() (float64, float64) {
			// Both reorder the weights from their plain form every call.
			d := s.timeReorder(plainW, pr.weights)
			return d, s.timeReorder(plainW, wpr.weights) + s.timeReorder(pr.dst, wpr.dst) + s.timeReorder(wpr.src, pr.src)
		})
	})
	dyd := s.input(dy, pr.dst, 0)
	wd := s.convWeightsFor(pr, w, p, false)
	s.setOut(dx, pr.src, xs)
	s.exec(pr, ptr(dyd), ptr(wd), ptr(dx.Storage()))
}

// convBwdDataPD returns the primitive descriptor of a backward-data
// convolution of algorithm alg, or nil where oneDNN has none. The caller
// destroys it.
func (s *state) convBwdDataPD(alg C.dnnl_alg_kind_t, xs, ws, ys []int, p backend.ConvParams, hint C.dnnl_primitive_desc_t) C.dnnl_primitive_desc_t {
	g := geomOf(p)
	src, wei, dst, _ := s.convMDs(xs, ws, ys, p, false)
	var d C.dnnl_convolution_desc_t
	s.check(C.dnnl_dilated_convolution_backward_data_desc_init(&d, alg,
		&src, &wei, &dst, &g.strides[0], &g.dilates[0], &g.padL[0], &g.padR[0]), "dnnl_dilated_convolution_backward_data_desc_init")
	return s.tryPrimDesc(unsafe.Pointer(&d), nil, hint)
}

// convBwdDataPrim creates the backward-data convolution primitive of pd and
// returns it with its arguments.
func (s *state) convBwdDataPrim(pd C.dnnl_primitive_desc_t) (*prim, []arg) {
	args := []arg{
		{C.DNNL_ARG_DIFF_DST, query(pd, C.dnnl_query_diff_dst_md, 0)},
		{C.DNNL_ARG_WEIGHTS, query(pd, C.dnnl_query_weights_md, 0)},
		{C.DNNL_ARG_DIFF_SRC, query(pd, C.dnnl_query_diff_src_md, 0)},
	}
	pr := s.newPrim(pd, args...)
	pr.dst, pr.weights, pr.src = args[0].md, args[1].md, args[2].md
	return pr, args
}

// convBwdWeightsPD returns the primitive descriptor of a backward-weights
// convolution of algorithm alg, or nil where oneDNN has none. The caller
// destroys it.
func (s *state) convBwdWeightsPD(alg C.dnnl_alg_kind_t, xs, ws, ys []int, p backend.ConvParams, bias bool, hint C.dnnl_primitive_desc_t) C.dnnl_primitive_desc_t {
	g := geomOf(p)
	src, wei, dst, bmd := s.convMDs(xs, ws, ys, p, bias)
	var d C.dnnl_convolution_desc_t
	s.check(C.dnnl_dilated_convolution_backward_weights_desc_init(&d, alg,
		&src, &wei, bmd, &dst, &g.strides[0], &g.dilates[0], &g.padL[0], &g.padR[0]), "dnnl_dilated_convolution_backward_weights_desc_init")
	return s.tryPrimDesc(unsafe.Pointer(&d), nil, hint)
}

// convBwdWeightsPrim creates the backward-weights convolution primitive of
// pd and returns it with its arguments.
func (s *state) convBwdWeightsPrim(pd C.dnnl_primitive_desc_t, bias bool) (*prim, []arg) {
	args := []arg{
		{C.DNNL_ARG_SRC, query(pd, C.dnnl_query_src_md, 0)},
		{C.DNNL_ARG_DIFF_DST, query(pd, C.dnnl_query_diff_dst_md, 0)},
		{C.DNNL_ARG_DIFF_WEIGHTS, query(pd, C.dnnl_query_diff_weights_md, 0)},
	}
	if bias {
		args = append(args, arg{C.DNNL_ARG_DIFF_BIAS, query(pd, C.dnnl_query_diff_weights_md, 1)})
	}
	pr := s.newPrim(pd, args...)
	pr.src, pr.dst, pr.weights = args[0].md, args[1].md, args[2].md
	return pr, args
}

// conv2DBackwardWeights implements Backend.Conv2DBackwardWeights.
func (s *state) conv2DBackwardWeights(dw, db, x, dy *tensor.Tensor, wShape []int, p backend.ConvParams) {
	s.begin("dnnl.Conv2DBackwardWeights", dw, db, x, dy)
	ys, p := s.checkConv(x, wShape, p)
	s.requireShape(dy, "dy", ys)
	if dw == nil && db == nil {
		return
	}
	if (dw != nil && (dw == x || dw == dy)) || (db != nil && (db == x || db == dy || db == dw)) {
		s.fail("dw and db must be distinct from x and dy and from each other", nil)
	}
	ws := append([]int(nil), wShape...)
	var flags uint32
	if db != nil {
		flags |= fBias
	}
	key := opKey{kind: kConvBwdWeights, a: keyOf(x.Shape()), b: keyOf(ws), conv: p, flags: flags}
	pr := s.cached(key, func() *prim {
		fd := s.convFwdDesc(x.Shape(), ws, ys, p, db != nil, C.dnnl_forward_training)
		hint := s.primDesc(unsafe.Pointer(&fd), nil, nil)
		defer C.dnnl_primitive_desc_destroy(hint)
		pd := s.convBwdWeightsPD(C.dnnl_convolution_direct, x.Shape(), ws, ys, p, db != nil, hint)
		if pd == nil {
			s.fail("oneDNN has no backward-weights convolution for this shape", nil)
		}
		defer C.dnnl_primitive_desc_destroy(pd)
		pr, args := s.convBwdWeightsPrim(pd, db != nil)
		if c := winoBackwardWeights(x.Shape(), ws, p); db == nil && s.ownWinograd(ws, p, c, pr.src, pr.dst) {
			wpr, wargs := s.newWino(pr, args, c)
			plainW := s.plain(ws)
			return s.keepFaster("backward_weights", convShape(x.Shape(), ws, ys, p), pr, args, wpr, wargs, func() (float64, float64) {
				return s.timeReorder(pr.weights, plainW), 0 // wino.c writes dw Plain
			})
		}
		if !s.useWinograd(ws, p) {
			return pr
		}
		whint := s.tryWinograd(x.Shape(), ws, ys, p, db != nil, nil, C.dnnl_forward_training)
		if whint == nil {
			return pr
		}
		defer C.dnnl_primitive_desc_destroy(whint)
		wpd := s.convBwdWeightsPD(C.dnnl_convolution_winograd, x.Shape(), ws, ys, p, db != nil, whint)
		if wpd == nil {
			return pr
		}
		defer C.dnnl_primitive_desc_destroy(wpd)
		wpr, wargs := s.convBwdWeightsPrim(wpd, db != nil)
		plainW := s.plain(convWeightDims(ws, p.Groups))
		return s.keepFaster("backward_weights", convShape(x.Shape(), ws, ys, p), pr, args, wpr, wargs, func() (float64, float64) {
			return s.timeReorder(pr.weights, plainW), s.timeReorder(pr.src, wpr.src) + s.timeReorder(pr.dst, wpr.dst) + s.timeReorder(wpr.weights, plainW)
		})
	})
	xd := s.input(x, pr.src, 0)
	dyd := s.input(dy, pr.dst, 1)
	plainW := s.plain(convWeightDims(ws, p.Groups))
	var dwd []float32
	if dw != nil && pr.weights == plainW {
		s.setOut(dw, plainW, ws)
		dwd = dw.Storage()
	} else {
		dwd = s.tmpBuf(2, pr.weights.size/4)
	}
	var dbd []float32
	if db != nil {
		s.setOut(db, s.plain(ws[:1]), ws[:1])
		dbd = db.Storage()
		s.exec(pr, ptr(xd), ptr(dyd), ptr(dwd), ptr(dbd))
	} else {
		s.exec(pr, ptr(xd), ptr(dyd), ptr(dwd))
	}
	if dw != nil && pr.weights != plainW {
		s.setOut(dw, plainW, ws)
		s.reorder(dw.Storage(), plainW, dwd, pr.weights)
	}
}

//go:build cgo

package dnnl

/*
#include "rg.h"
*/
import "C"

import (
	"unsafe"

	"github.com/resgo/resgo/tensor"
)

// bnWorkspace is the Aux of a BatchNormTrain output with fused ReLU:
// oneDNN's record of where the output is positive, which its backward pass
// uses as the ReLU mask.
type bnWorkspace struct {
	md  *memDesc
	buf []byte
}

// bnFlags returns oneDNN's normalization flags. Scale (gamma) and shift
// (beta) are separate [C] tensors (use_scale, use_shift), so the Plain
// parameters are used as they are.
func bnFlags(globalStats, fuseReLU bool) C.unsigned {
	f := C.unsigned(C.dnnl_use_scale | C.dnnl_use_shift)
	if globalStats {
		f |= C.dnnl_use_global_stats
	}
	if fuseReLU {
		f |= C.dnnl_fuse_norm_relu
	}
	return f
}

// checkVec fails unless t is a Plain [c] tensor.
func (s *state) checkVec(t *tensor.Tensor, name string, c int) {
	if t == nil {
		s.fail(name+" is nil", nil)
	}
	s.requirePlain(t, name, c)
}

// bnFwdPD creates a batch normalization forward primitive descriptor on
// data in layout md.
func (s *state) bnFwdPD(prop C.dnnl_prop_kind_t, md *memDesc, eps float32, flags C.unsigned) C.dnnl_primitive_desc_t {
	var d C.dnnl_batch_normalization_desc_t
	s.check(C.dnnl_batch_normalization_forward_desc_init(&d, prop, md.c, C.float(eps), flags), "dnnl_batch_normalization_forward_desc_init")
	return s.primDesc(unsafe.Pointer(&d), nil, nil)
}

// bnTrainPrim returns the training forward primitive for x in layout xmd.
func (s *state) bnTrainPrim(x *tensor.Tensor, xmd *memDesc, eps float32, relu bool) *prim {
	var flags uint32
	if relu {
		flags |= fReLU
	}
	return s.cached(opKey{kind: kBNTrain, a: keyOf(x.Shape()), src: xmd, eps: eps, flags: flags}, func() *prim {
		pd := s.bnFwdPD(C.dnnl_forward_training, xmd, eps, bnFlags(false, relu))
		defer C.dnnl_primitive_desc_destroy(pd)
		cmd := s.plain([]int{x.Dim(1)})
		args := []arg{
			{C.DNNL_ARG_SRC, xmd},
			{C.DNNL_ARG_SCALE, cmd},
			{C.DNNL_ARG_SHIFT, cmd},
			{C.DNNL_ARG_DST, query(pd, C.dnnl_query_dst_md, 0)},
			{C.DNNL_ARG_MEAN, cmd},
			{C.DNNL_ARG_VARIANCE, cmd},
		}
		ws := query(pd, C.dnnl_query_workspace_md, 0)
		if relu {
			args = append(args, arg{C.DNNL_ARG_WORKSPACE, ws})
		}
		pr := s.newPrim(pd, args...)
		pr.src, pr.dst, pr.ws = xmd, args[3].md, ws
		return pr
	})
}

// batchNormTrain implements Backend.BatchNormTrain.
func (s *state) batchNormTrain(y, mean, variance, x, gamma, beta *tensor.Tensor, eps float32, relu bool) {
	s.begin("dnnl.BatchNormTrain", y, mean, variance, x, gamma, beta)
	s.require4D(x, "x")
	c := x.Dim(1)
	s.checkVec(gamma, "gamma", c)
	s.checkVec(beta, "beta", c)
	if y == nil || mean == nil || variance == nil {
		s.fail("y, mean and variance must not be nil", nil)
	}
	if mean == x || variance == x || mean == y || variance == y || mean == variance {
		s.fail("mean and variance must be distinct tensors of their own", nil)
	}
	// The output keeps x's layout; y may be x (in place).
	xmd := s.layout(x)
	pr := s.bnTrainPrim(x, xmd, eps, relu)
	var ws *bnWorkspace
	if relu {
		// Reuse the buffer of a workspace y holds from an earlier step.
		ws, _ = y.Aux().(*bnWorkspace)
		if ws == nil || cap(ws.buf) < pr.ws.size {
			ws = &bnWorkspace{buf: make([]byte, pr.ws.size)}
		}
		ws.md, ws.buf = pr.ws, ws.buf[:pr.ws.size]
	}
	xd := x.Storage()
	cmd := s.plain([]int{c})
	s.setOut(y, pr.dst, x.Shape())
	s.setOut(mean, cmd, []int{c})
	s.setOut(variance, cmd, []int{c})
	if relu {
		y.SetAux(ws)
		s.exec(pr, ptr(xd), ptr(gamma.Values()), ptr(beta.Values()), ptr(y.Storage()), ptr(mean.Values()), ptr(variance.Values()), ptr(ws.buf))
	} else {
		s.exec(pr, ptr(xd), ptr(gamma.Values()), ptr(beta.Values()), ptr(y.Storage()), ptr(mean.Values()), ptr(variance.Values()))
	}
}

// batchNormInfer implements Backend.BatchNormInfer.
func (s *state) batchNormInfer(y, x, gamma, beta, mean, variance *tensor.Tensor, eps float32, relu bool) {
	s.begin("dnnl.BatchNormInfer", y, x, gamma, beta, mean, variance)
	s.require4D(x, "x")
	c := x.Dim(1)
	s.checkVec(gamma, "gamma", c)
	s.checkVec(beta, "beta", c)
	s.checkVec(mean, "mean", c)
	s.checkVec(variance, "variance", c)
	if y == nil || y == gamma || y == beta || y == mean || y == variance {
		s.fail("y must be a tensor distinct from the parameters", nil)
	}
	xmd := s.layout(x)
	var flags uint32
	if relu {
		flags |= fReLU
	}
	pr := s.cached(opKey{kind: kBNInfer, a: keyOf(x.Shape()), src: xmd, eps: eps, flags: flags}, func() *prim {
		// With global statistics and fused ReLU, inference needs no
		// workspace.
		pd := s.bnFwdPD(C.dnnl_forward_inference, xmd, eps, bnFlags(true, relu))
		defer C.dnnl_primitive_desc_destroy(pd)
		cmd := s.plain([]int{c})
		dst := query(pd, C.dnnl_query_dst_md, 0)
		pr := s.newPrim(pd,
			arg{C.DNNL_ARG_SRC, xmd},
			arg{C.DNNL_ARG_MEAN, cmd},
			arg{C.DNNL_ARG_VARIANCE, cmd},
			arg{C.DNNL_ARG_SCALE, cmd},
			arg{C.DNNL_ARG_SHIFT, cmd},
			arg{C.DNNL_ARG_DST, dst})
		pr.src, pr.dst = xmd, dst
		return pr
	})
	xd := x.Storage()
	s.setOut(y, pr.dst, x.Shape())
	s.exec(pr, ptr(xd), ptr(mean.Values()), ptr(variance.Values()), ptr(gamma.Values()), ptr(beta.Values()), ptr(y.Storage()))
}

// batchNormBackward implements Backend.BatchNormBackward.
func (s *state) batchNormBackward(dx, dgamma, dbeta, dy, x, y, gamma, mean, variance *tensor.Tensor, eps float32, relu bool) {
	s.begin("dnnl.BatchNormBackward", dx, dgamma, dbeta, dy, x, y, gamma, mean)
	s.require4D(x, "x")
	c := x.Dim(1)
	s.checkVec(gamma, "gamma", c)
	s.checkVec(mean, "mean", c)
	s.checkVec(variance, "variance", c)
	s.requireShape(dy, "dy", x.Shape())
	if relu {
		s.requireShape(y, "y", x.Shape())
	}
	if dx == nil || dx == x || dx == gamma || dx == mean || dx == variance {
		s.fail("dx must be a tensor distinct from x and the parameters", nil)
	}
	if (dgamma != nil && dgamma == dbeta) || dgamma == dx || dbeta == dx {
		s.fail("dgamma, dbeta and dx must be distinct tensors", nil)
	}
	xmd := s.layout(x)

	// With ReLU, use the mask oneDNN recorded in y's Aux when BatchNormTrain
	// wrote y; otherwise mask dy by y > 0 with an eltwise backward first.
	useWS := false
	var ws *bnWorkspace
	if relu {
		ws, _ = y.Aux().(*bnWorkspace)
		useWS = ws != nil && ws.md == s.bnTrainPrim(x, xmd, eps, true).ws && len(ws.buf) >= ws.md.size
	}
	var flags uint32
	if useWS {
		flags |= fWorkspace
	}
	cmd := s.plain([]int{c})
	pr := s.cached(opKey{kind: kBNBwd, a: keyOf(x.Shape()), src: xmd, eps: eps, flags: flags}, func() *prim {
		// prop_kind backward computes dgamma and dbeta along with dx; they
		// are the two sums dx needs anyway. (backward_data, dx alone, is
		// not implemented for separate scale and shift in oneDNN 2.6.)
		f := bnFlags(false, useWS)
		hint := s.bnFwdPD(C.dnnl_forward_training, xmd, eps, f)
		defer C.dnnl_primitive_desc_destroy(hint)
		var d C.dnnl_batch_normalization_desc_t
		s.check(C.dnnl_batch_normalization_backward_desc_init(&d, C.dnnl_backward, xmd.c, xmd.c, C.float(eps), f),
			"dnnl_batch_normalization_backward_desc_init")
		pd := s.primDesc(unsafe.Pointer(&d), nil, hint)
		defer C.dnnl_primitive_desc_destroy(pd)
		diffDst := query(pd, C.dnnl_query_diff_dst_md, 0)
		diffSrc := query(pd, C.dnnl_query_diff_src_md, 0)
		args := []arg{
			{C.DNNL_ARG_SRC, xmd},
			{C.DNNL_ARG_MEAN, cmd},
			{C.DNNL_ARG_VARIANCE, cmd},
			{C.DNNL_ARG_SCALE, cmd},
			// The shift does not enter the backward pass, but oneDNN
			// requires the argument when use_shift is set.
			{C.DNNL_ARG_SHIFT, cmd},
			{C.DNNL_ARG_DIFF_DST, diffDst},
			{C.DNNL_ARG_DIFF_SRC, diffSrc},
			{C.DNNL_ARG_DIFF_SCALE, cmd},
			{C.DNNL_ARG_DIFF_SHIFT, cmd},
		}
		if useWS {
			args = append(args, arg{C.DNNL_ARG_WORKSPACE, query(pd, C.dnnl_query_workspace_md, 0)})
		}
		pr := s.newPrim(pd, args...)
		pr.src, pr.dst = diffSrc, diffDst
		return pr
	})

	dyd := s.input(dy, pr.dst, 0)
	if relu && !useWS {
		yd := s.input(y, pr.dst, 1)
		masked := s.tmpBuf(2, pr.dst.size/4)
		s.reluBackwardRaw(masked, yd, dyd, pr.dst)
		dyd = masked
	}
	// Parameter gradients nobody asked for go to scratch.
	dg, db := s.tmpBuf(3, 2*c)[:c], s.tmp[3][c:2*c]
	if dgamma != nil {
		s.setOut(dgamma, cmd, []int{c})
		dg = dgamma.Storage()
	}
	if dbeta != nil {
		s.setOut(dbeta, cmd, []int{c})
		db = dbeta.Storage()
	}
	// dx may be dy: the primitive works in place.
	s.setOut(dx, pr.src, x.Shape())
	// gamma stands in for the unused shift.
	g := ptr(gamma.Values())
	if useWS {
		s.exec(pr, ptr(x.Storage()), ptr(mean.Values()), ptr(variance.Values()), g, g, ptr(dyd), ptr(dx.Storage()), ptr(dg), ptr(db), ptr(ws.buf))
	} else {
		s.exec(pr, ptr(x.Storage()), ptr(mean.Values()), ptr(variance.Values()), g, g, ptr(dyd), ptr(dx.Storage()), ptr(dg), ptr(db))
	}
}

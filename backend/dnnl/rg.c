//go:build cgo

#include <stdlib.h>
#include <string.h>

#include "rg.h"

dnnl_status_t rg_ctx_new(rg_ctx **out) {
	rg_ctx *ctx = calloc(1, sizeof(rg_ctx));
	if (ctx == NULL) return dnnl_out_of_memory;
	dnnl_status_t st = dnnl_engine_create(&ctx->engine, dnnl_cpu, 0);
	if (st != dnnl_success) {
		free(ctx);
		return st;
	}
	st = dnnl_stream_create(&ctx->stream, ctx->engine, dnnl_stream_default_flags);
	if (st != dnnl_success) {
		dnnl_engine_destroy(ctx->engine);
		free(ctx);
		return st;
	}
	*out = ctx;
	return dnnl_success;
}

void rg_ctx_free(rg_ctx *ctx) {
	if (ctx == NULL) return;
	dnnl_stream_destroy(ctx->stream);
	dnnl_engine_destroy(ctx->engine);
	free(ctx->scratch);
	free(ctx);
}

// rg_reserve_scratch makes the scratchpad at least size bytes, page aligned.
// It returns 0 when out of memory.
int rg_reserve_scratch(rg_ctx *ctx, size_t size) {
	if (size <= ctx->scratch_size) return 1;
	void *p = NULL;
	if (posix_memalign(&p, 4096, size) != 0) return 0;
	free(ctx->scratch);
	ctx->scratch = p;
	ctx->scratch_size = size;
	return 1;
}

dnnl_status_t rg_op_new(rg_op **out, const_dnnl_primitive_desc_t pd, int nargs,
		const int *kinds, const dnnl_memory_desc_t *const *mds) {
	if (nargs < 0 || nargs > RG_MAX_ARGS) return dnnl_invalid_arguments;
	rg_op *op = calloc(1, sizeof(rg_op));
	if (op == NULL) return dnnl_out_of_memory;
	dnnl_status_t st = dnnl_primitive_create(&op->prim, pd);
	if (st != dnnl_success) {
		free(op);
		return st;
	}
	op->nargs = nargs;
	for (int i = 0; i < nargs; i++) {
		op->kind[i] = kinds[i];
		op->md[i] = mds[i];
	}
	const dnnl_memory_desc_t *smd =
			dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
	if (smd != NULL) {
		op->scratch_md = *smd;
		op->scratch_size = dnnl_memory_desc_get_size(smd);
	}
	*out = op;
	return dnnl_success;
}

void rg_op_free(rg_op *op) {
	if (op == NULL) return;
	dnnl_primitive_destroy(op->prim);
	free(op);
}

// rg_exec wraps the caller's buffers in memory objects, executes the
// primitive, waits for it and destroys the memory objects again, so that no
// oneDNN object holds a caller pointer once it returns. The caller has
// reserved a scratchpad of at least op->scratch_size bytes.
dnnl_status_t rg_exec(rg_ctx *ctx, const rg_op *op, void *p0, void *p1,
		void *p2, void *p3, void *p4, void *p5, void *p6, void *p7, void *p8,
		void *p9) {
	void *ptr[RG_MAX_ARGS] = {p0, p1, p2, p3, p4, p5, p6, p7, p8, p9};
	dnnl_exec_arg_t args[RG_MAX_ARGS + 1];
	dnnl_memory_t mem[RG_MAX_ARGS + 1];
	int n = 0;
	dnnl_status_t st = dnnl_success;
	for (int i = 0; i < op->nargs; i++) {
		if (ptr[i] == NULL) {
			st = dnnl_invalid_arguments;
			goto out;
		}
		st = dnnl_memory_create(&mem[n], op->md[i], ctx->engine, ptr[i]);
		if (st != dnnl_success) goto out;
		args[n].arg = op->kind[i];
		args[n].memory = mem[n];
		n++;
	}
	if (op->scratch_size > 0) {
		if (ctx->scratch_size < op->scratch_size) {
			st = dnnl_out_of_memory;
			goto out;
		}
		st = dnnl_memory_create(&mem[n], &op->scratch_md, ctx->engine, ctx->scratch);
		if (st != dnnl_success) goto out;
		args[n].arg = DNNL_ARG_SCRATCHPAD;
		args[n].memory = mem[n];
		n++;
	}
	st = dnnl_primitive_execute(op->prim, ctx->stream, n, args);
	if (st == dnnl_success) st = dnnl_stream_wait(ctx->stream);
out:
	for (int i = 0; i < n; i++) dnnl_memory_destroy(mem[i]);
	return st;
}

// rg_impl_info returns the name of the implementation oneDNN chose for pd,
// such as "jit:avx512_core".
const char *rg_impl_info(const_dnnl_primitive_desc_t pd) {
	const char *s = NULL;
	if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &s) != dnnl_success)
		return "";
	return s;
}

// rg_md_copy returns a heap copy of md (never freed: descriptors are
// interned, one per distinct layout).
dnnl_memory_desc_t *rg_md_copy(const dnnl_memory_desc_t *md) {
	dnnl_memory_desc_t *c = malloc(sizeof(*c));
	if (c != NULL) *c = *md;
	return c;
}

// rg.h declares the small C layer of the dnnl backend: an execution context
// (engine, stream, scratchpad) and prepared operations that run a primitive
// on caller-owned buffers within one call.

#ifndef RESGO_DNNL_RG_H
#define RESGO_DNNL_RG_H

#include <stddef.h>
#include <oneapi/dnnl/dnnl.h>
#include <oneapi/dnnl/dnnl_debug.h>

// The most buffer arguments one prepared operation takes, scratchpad apart.
#define RG_MAX_ARGS 10

// rg_ctx is what every execution needs: the CPU engine, an in-order stream
// and the user-mode scratchpad shared by all primitives (one buffer, grown
// on demand, in C memory).
typedef struct {
	dnnl_engine_t engine;
	dnnl_stream_t stream;
	void *scratch;
	size_t scratch_size;
} rg_ctx;

// rg_op is a created primitive with the execute-argument kinds and memory
// descriptors of its buffers, in the order rg_exec receives the pointers.
// The descriptors point to interned copies that live as long as the process.
typedef struct {
	dnnl_primitive_t prim;
	int nargs;
	int kind[RG_MAX_ARGS];
	const dnnl_memory_desc_t *md[RG_MAX_ARGS];
	dnnl_memory_desc_t scratch_md;
	size_t scratch_size;
} rg_op;

dnnl_status_t rg_ctx_new(rg_ctx **ctx);
void rg_ctx_free(rg_ctx *ctx);
int rg_reserve_scratch(rg_ctx *ctx, size_t size);

dnnl_status_t rg_op_new(rg_op **op, const_dnnl_primitive_desc_t pd, int nargs,
		const int *kinds, const dnnl_memory_desc_t *const *mds);
void rg_op_free(rg_op *op);

dnnl_status_t rg_exec(rg_ctx *ctx, const rg_op *op, void *p0, void *p1,
		void *p2, void *p3, void *p4, void *p5, void *p6, void *p7, void *p8,
		void *p9);

const char *rg_impl_info(const_dnnl_primitive_desc_t pd);
dnnl_memory_desc_t *rg_md_copy(const dnnl_memory_desc_t *md);

// OpenMP, which this oneDNN build runs on (libgomp).
int omp_get_max_threads(void);
void omp_set_num_threads(int n);

#endif

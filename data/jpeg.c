//go:build cgo

// JPEG decoding as PIL 9.4 does it (its JpegDecode.c and Convert.c), on
// the same libjpeg (Debian's libjpeg62-turbo): libjpeg's defaults, which
// PIL keeps unless asked for a draft (the accurate integer inverse DCT,
// JDCT_ISLOW, and fancy chroma upsampling), libjpeg's own colour
// conversion to RGB or gray, and PIL's conversions of CMYK.

#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <jpeglib.h>

#include "jpeg.h"

_Static_assert(sizeof(((resgo_jpeg_result *)0)->message) >= JMSG_LENGTH_MAX, "message too short");

// A decoder: libjpeg's state, its error handler and its source, on the
// stack of one call.
typedef struct {
	struct jpeg_decompress_struct cinfo;
	struct jpeg_error_mgr err;
	struct jpeg_source_mgr src;
	struct jpeg_progress_mgr progress;
	jmp_buf on_error;  // where a libjpeg error returns to
	int ended;         // libjpeg asked for bytes after the last one
	int max_scans;     // the most scans read (0: any number)
	int too_many;      // the file has more than max_scans scans
} decoder;

// on_error is libjpeg's error_exit: back to the call's setjmp.
static void on_error(j_common_ptr cinfo) {
	decoder *d = (decoder *)cinfo;  // cinfo is d's first member
	longjmp(d->on_error, 1);
}

// on_message is libjpeg's output_message, for warnings ("Corrupt JPEG
// data: ..."): ignored, as PIL ignores them; libjpeg's default prints
// them on stderr.
static void on_message(j_common_ptr cinfo) {
	(void)cinfo;
}

// on_progress is libjpeg's progress monitor, called as it reads the
// scans: it stops at scan max_scans + 1.
static void on_progress(j_common_ptr cinfo) {
	decoder *d = (decoder *)cinfo;
	if (d->max_scans > 0 && d->cinfo.input_scan_number > d->max_scans) {
		d->too_many = 1;
		longjmp(d->on_error, 1);
	}
}

static void src_init(j_decompress_ptr cinfo) {
	(void)cinfo;
}

// src_fill is called when libjpeg has read every byte given and wants
// more: the file ends before the image does. PIL refuses such a file
// ("image file is truncated"; ImageFile.LOAD_TRUNCATED_IMAGES is False),
// and so does this: an error, where libjpeg's own memory source would
// warn and finish the image in gray.
static boolean src_fill(j_decompress_ptr cinfo) {
	decoder *d = (decoder *)cinfo;
	d->ended = 1;
	longjmp(d->on_error, 1);
	return FALSE;
}

static void src_skip(j_decompress_ptr cinfo, long n) {
	struct jpeg_source_mgr *src = cinfo->src;
	if (n <= 0) return;
	if ((size_t)n > src->bytes_in_buffer) src_fill(cinfo);
	src->next_input_byte += n;
	src->bytes_in_buffer -= (size_t)n;
}

static void src_term(j_decompress_ptr cinfo) {
	(void)cinfo;
}

// prepare sets up d's error handler, progress monitor and source to read
// data, before the call's setjmp; create then creates libjpeg's state,
// after it, so that an error there returns to it too. Every call that
// prepares d ends with jpeg_destroy_decompress, also after an error.
static void prepare(decoder *d, const unsigned char *data, size_t len, int max_scans) {
	memset(d, 0, sizeof(*d));
	d->cinfo.err = jpeg_std_error(&d->err);
	d->err.error_exit = on_error;
	d->err.output_message = on_message;
	d->max_scans = max_scans;
	d->progress.progress_monitor = on_progress;
	d->src.next_input_byte = data;
	d->src.bytes_in_buffer = len;
	d->src.init_source = src_init;
	d->src.fill_input_buffer = src_fill;
	d->src.skip_input_data = src_skip;
	d->src.resync_to_restart = jpeg_resync_to_restart;
	d->src.term_source = src_term;
}

static void create(decoder *d) {
	jpeg_create_decompress(&d->cinfo);  // zeroes cinfo but its err
	d->cinfo.src = &d->src;
	d->cinfo.progress = &d->progress;
}

// fail reports the error that brought d back to its setjmp, and returns 1.
static int fail(decoder *d, resgo_jpeg_result *res) {
	res->ended = d->ended;
	if (d->ended) {
		snprintf(res->message, sizeof(res->message), "premature end of data (a truncated file)");
	} else if (d->too_many) {
		snprintf(res->message, sizeof(res->message), "more than %d scans", d->max_scans);
	} else {
		d->err.format_message((j_common_ptr)&d->cinfo, res->message);
	}
	jpeg_destroy_decompress(&d->cinfo);
	return 1;
}

int resgo_jpeg_header(const unsigned char *data, size_t len, resgo_jpeg_result *res) {
	decoder d;
	prepare(&d, data, len, 0);
	if (setjmp(d.on_error)) return fail(&d, res);
	create(&d);
	jpeg_read_header(&d.cinfo, TRUE);
	res->width = (int)d.cinfo.image_width;
	res->height = (int)d.cinfo.image_height;
	res->components = d.cinfo.num_components;
	jpeg_destroy_decompress(&d.cinfo);
	return 0;
}

// luma is PIL's ITU-R 601-2 luma in its fixed point (Convert.c's L24).
static JSAMPLE luma(unsigned r, unsigned g, unsigned b) {
	return (JSAMPLE)((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16);
}

// muldiv255 is PIL's MULDIV255: a*b/255, rounded, in its fixed point.
static unsigned muldiv255(unsigned a, unsigned b) {
	unsigned t = a * b + 128;
	return ((t >> 8) + t) >> 8;
}

// cmyk_row converts a row of libjpeg's CMYK output (of a CMYK file, or of
// a YCCK file, which libjpeg converts to CMYK) to RGB (channels 3) or L
// (channels 1) as PIL does. PIL reads a 4-component JPEG as Adobe's
// inverted CMYK (raw mode "CMYK;I"): its C is 255 - c of libjpeg's c, and
// so on. Its convert("RGB") (Convert.c's cmyk2rgb) makes R = nk -
// MULDIV255(C, nk) with nk = 255 - K, which is k - MULDIV255(255 - c, k)
// in libjpeg's values; G and B likewise. convert("L") is the luma of that
// RGB.
static void cmyk_row(const JSAMPLE *in, JSAMPLE *out, int width, int channels) {
	for (int x = 0; x < width; x++, in += 4) {
		unsigned k = in[3];
		unsigned r = k - muldiv255(255 - in[0], k);
		unsigned g = k - muldiv255(255 - in[1], k);
		unsigned b = k - muldiv255(255 - in[2], k);
		if (channels == 3) {
			*out++ = (JSAMPLE)r;
			*out++ = (JSAMPLE)g;
			*out++ = (JSAMPLE)b;
		} else {
			*out++ = luma(r, g, b);
		}
	}
}

// rgb_luma_row converts a row of RGB to PIL's L.
static void rgb_luma_row(const JSAMPLE *in, JSAMPLE *out, int width) {
	for (int x = 0; x < width; x++, in += 3) *out++ = luma(in[0], in[1], in[2]);
}

int resgo_jpeg_decode(const unsigned char *data, size_t len, int width, int height, int channels,
		      int max_scans, unsigned char *out, resgo_jpeg_result *res) {
	decoder d;
	prepare(&d, data, len, max_scans);
	if (setjmp(d.on_error)) return fail(&d, res);
	create(&d);
	jpeg_read_header(&d.cinfo, TRUE);
	if ((int)d.cinfo.image_width != width || (int)d.cinfo.image_height != height) {
		snprintf(res->message, sizeof(res->message), "frame of %ux%u, header said %dx%d",
			 d.cinfo.image_width, d.cinfo.image_height, width, height);
		jpeg_destroy_decompress(&d.cinfo);
		return 1;
	}
	// What PIL reads the file as, by its number of components (its
	// JpegImagePlugin.SOF), and what libjpeg is asked for: gray (L) as
	// gray or, for RGB, repeated by libjpeg as convert("RGB") repeats it;
	// YCbCr and RGB files as RGB (L is computed from it, as convert("L")
	// does, not taken from the Y channel); CMYK and YCCK files as CMYK.
	// Anything else is refused by libjpeg's colour conversion, as by PIL.
	int convert = 0;  // 1: libjpeg's output is converted row by row
	if (d.cinfo.num_components == 1 && channels == 1) {
		d.cinfo.out_color_space = JCS_GRAYSCALE;
	} else if (d.cinfo.num_components == 4) {
		d.cinfo.out_color_space = JCS_CMYK;
		convert = 1;
	} else {
		d.cinfo.out_color_space = JCS_RGB;
		convert = channels == 1;
	}
	jpeg_start_decompress(&d.cinfo);
	size_t stride = (size_t)width * (size_t)channels;
	JSAMPARRAY row = NULL;
	if (convert) {
		row = (*d.cinfo.mem->alloc_sarray)((j_common_ptr)&d.cinfo, JPOOL_IMAGE,
						   (JDIMENSION)width * (JDIMENSION)d.cinfo.output_components, 1);
	}
	while (d.cinfo.output_scanline < d.cinfo.output_height) {
		JSAMPLE *dst = out + (size_t)d.cinfo.output_scanline * stride;
		if (!convert) {
			// Straight into out, up to 16 rows a call.
			JSAMPROW rows[16];
			JDIMENSION n = d.cinfo.output_height - d.cinfo.output_scanline;
			if (n > 16) n = 16;
			for (JDIMENSION i = 0; i < n; i++) rows[i] = dst + i * stride;
			if (jpeg_read_scanlines(&d.cinfo, rows, n) == 0) break;
		} else {
			if (jpeg_read_scanlines(&d.cinfo, row, 1) == 0) break;
			if (d.cinfo.out_color_space == JCS_CMYK)
				cmyk_row(row[0], dst, width, channels);
			else
				rgb_luma_row(row[0], dst, width);
		}
	}
	// As PIL, read the rest of the image's data up to its end marker: a
	// file that ends before it is truncated. (libjpeg's source never
	// suspends, so every row has been read; finishing early would be its
	// error "Application transferred too few scanlines".)
	jpeg_finish_decompress(&d.cinfo);
	jpeg_destroy_decompress(&d.cinfo);
	return 0;
}

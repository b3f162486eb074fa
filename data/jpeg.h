//go:build cgo

// JPEG decoding with libjpeg-turbo's libjpeg API, the library and settings
// PIL 9.4 decodes with (see jpeg_cgo.go).

#ifndef RESGO_JPEG_H
#define RESGO_JPEG_H

#include <stddef.h>

// resgo_jpeg_result is what resgo_jpeg_header and resgo_jpeg_decode
// report.
typedef struct {
	int width, height;  // the frame's size
	int components;     // 1 (gray), 3 (YCbCr or RGB), 4 (CMYK or YCCK)
	int ended;          // 1: libjpeg needed bytes beyond the data given
	char message[200];  // libjpeg's message when it failed (JMSG_LENGTH_MAX)
} resgo_jpeg_result;

// resgo_jpeg_header reads the markers of the JPEG in data up to its
// first frame header; 0 on success.
int resgo_jpeg_header(const unsigned char *data, size_t len, resgo_jpeg_result *res);

// resgo_jpeg_decode decodes the JPEG in data into out, width x height
// pixels of channels bytes (3: RGB, 1: L), converted as PIL's
// convert("RGB") and convert("L"); 0 on success. width and height are
// what resgo_jpeg_header returned: the frame must have that size. A file
// of more than max_scans scans is refused.
int resgo_jpeg_decode(const unsigned char *data, size_t len, int width, int height, int channels,
		      int max_scans, unsigned char *out, resgo_jpeg_result *res);

#endif

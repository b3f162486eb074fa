package data

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
)

// FashionMNISTDir is where Debian's dataset-fashion-mnist package installs
// the four gzip'd IDX files.
const FashionMNISTDir = "/usr/share/datasets/fashion-mnist"

// FashionMNISTClasses are Fashion-MNIST's class names, indexed by label.
var FashionMNISTClasses = []string{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"}

// IDX is the content of an IDX file of unsigned bytes (the format of MNIST
// and Fashion-MNIST).
type IDX struct {
	// Dims are the dimensions, outermost first (for images: count, rows,
	// columns).
	Dims []int
	// Data holds the values in row-major order.
	Data []uint8
}

// maxIDXBytes bounds the data an IDX header may announce: 1 GiB. The
// largest IDX dataset in use, EMNIST ByClass, holds 814,255 images of
// 28x28 pixels, 638 MB; Fashion-MNIST's training images take 47 MB.
const maxIDXBytes = 1 << 30

// maxIDXSide bounds the rows and columns of IDX images: the IDX image sets
// in use are 28x28 (MNIST, Fashion-MNIST, EMNIST, KMNIST); 4096, the
// largest side training accepts (train.MaxSide), is far beyond them.
const maxIDXSide = 4096

// idxChunk is how much data ReadIDX reads at a time when it cannot know the
// data's size in advance (gzip'd files): the buffer then grows with the
// data actually read, not with what the header announces.
const idxChunk = 1 << 20

// ReadIDX reads an IDX file of unsigned bytes, gzip-compressed or not (the
// gzip magic number decides, not the name). It checks the header (two zero
// bytes, type 0x08, 1 to 4 dimensions, at most maxIDXBytes of data) and
// that the data is complete with nothing after it; errors name the file.
// Memory is allocated for the data the file holds, never for more than it
// holds because its header says so.
func ReadIDX(path string) (*IDX, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	size := int64(-1) // unknown
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
		size = st.Size()
	}
	br := bufio.NewReaderSize(f, 1<<16)
	var r io.Reader = br
	// A file too short or unreadable for Peek is not gzip'd; readIDX
	// reports the problem when it reads the header.
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		defer zr.Close()
		r, size = zr, -1
	}
	idx, err := readIDX(r, size)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return idx, nil
}

// readIDX decodes an IDX file from r, whose size is known (the file's
// size) or -1 (a gzip stream).
func readIDX(r io.Reader, size int64) (*IDX, error) {
	var head [4]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return nil, fmt.Errorf("not an IDX file: header: %w", noEOF(err))
	}
	if head[0] != 0 || head[1] != 0 {
		return nil, fmt.Errorf("not an IDX file: magic number 0x%02x%02x%02x%02x", head[0], head[1], head[2], head[3])
	}
	if head[2] != 0x08 {
		return nil, fmt.Errorf("IDX element type 0x%02x, only 0x08 (unsigned byte) is supported", head[2])
	}
	nd := int(head[3])
	if nd < 1 || nd > 4 {
		return nil, fmt.Errorf("IDX file with %d dimensions", nd)
	}
	raw := make([]byte, 4*nd)
	if _, err := io.ReadFull(r, raw); err != nil {
		return nil, fmt.Errorf("IDX header: %w", noEOF(err))
	}
	dims := make([]int, nd)
	n := int64(1)
	for i := range dims {
		dims[i] = int(binary.BigEndian.Uint32(raw[4*i:]))
		if n *= int64(dims[i]); n > maxIDXBytes {
			return nil, fmt.Errorf("IDX dimensions %v announce more than %d MiB of data", dims[:i+1], maxIDXBytes>>20)
		}
	}
	if header := int64(4 + 4*nd); size >= 0 && n != size-header {
		if n > size-header {
			return nil, fmt.Errorf("IDX data truncated: %d of %d bytes for dimensions %v: %w", size-header, n, dims, io.ErrUnexpectedEOF)
		}
		return nil, fmt.Errorf("IDX data longer than its dimensions %v announce", dims)
	}
	data, err := readUpTo(r, int(n), size >= 0)
	if err != nil {
		return nil, fmt.Errorf("IDX data truncated: %d of %d bytes for dimensions %v: %w", len(data), n, dims, noEOF(err))
	}
	var extra [1]byte
	if k, err := io.ReadFull(r, extra[:]); k > 0 {
		return nil, fmt.Errorf("IDX data longer than its dimensions %v announce", dims)
	} else if err != nil && err != io.EOF {
		return nil, err
	}
	return &IDX{Dims: dims, Data: data}, nil
}

// readUpTo reads exactly n bytes from r. If known is set, the stream is
// known to hold them and a buffer of n bytes is allocated at once;
// otherwise the buffer grows with what is read, idxChunk at a time and then
// by doubling, so that a header announcing more than the stream holds
// costs no more memory than the stream. On error it returns what it read.
func readUpTo(r io.Reader, n int, known bool) ([]byte, error) {
	if known {
		data := make([]byte, n)
		k, err := io.ReadFull(r, data)
		return data[:k], err
	}
	data := make([]byte, 0, min(n, idxChunk))
	for len(data) < n {
		if len(data) == cap(data) {
			data = slices.Grow(data, min(n-len(data), len(data)))
		}
		k, err := io.ReadFull(r, data[len(data):min(cap(data), n)])
		data = data[:len(data)+k]
		if err != nil {
			return data, err
		}
	}
	return data, nil
}

// noEOF turns a bare EOF into ErrUnexpectedEOF: a file that ends inside
// its header or data is truncated.
func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// ReadIDXDataset reads a pair of IDX files, images (magic 0x803: count,
// rows, columns) and labels (magic 0x801: count), into a grayscale
// in-memory dataset with the given class names. Errors name the file and
// the problem: a wrong magic number, counts that differ, a label outside
// the classes.
func ReadIDXDataset(imagesPath, labelsPath string, classes []string) (*Memory, error) {
	im, err := ReadIDX(imagesPath)
	if err != nil {
		return nil, err
	}
	if len(im.Dims) != 3 {
		return nil, fmt.Errorf("%s: an IDX file of %d dimensions (magic 0x80%d), want images (magic 0x803)", imagesPath, len(im.Dims), len(im.Dims))
	}
	lb, err := ReadIDX(labelsPath)
	if err != nil {
		return nil, err
	}
	if len(lb.Dims) != 1 {
		return nil, fmt.Errorf("%s: an IDX file of %d dimensions (magic 0x80%d), want labels (magic 0x801)", labelsPath, len(lb.Dims), len(lb.Dims))
	}
	n := im.Dims[0]
	if lb.Dims[0] != n {
		return nil, fmt.Errorf("%s has %d labels but %s has %d images", labelsPath, lb.Dims[0], imagesPath, n)
	}
	if n > 0 && (im.Dims[1] < 1 || im.Dims[2] < 1 || im.Dims[1] > maxIDXSide || im.Dims[2] > maxIDXSide) {
		return nil, fmt.Errorf("%s: images of %dx%d pixels: want 1 to %d pixels a side", imagesPath, im.Dims[2], im.Dims[1], maxIDXSide)
	}
	m := &Memory{W: im.Dims[2], H: im.Dims[1], C: 1, Pix: im.Data, Labels: make([]int, n), ClassNames: classes}
	for i, l := range lb.Data {
		if int(l) >= len(classes) {
			return nil, fmt.Errorf("%s: label %d of item %d is not one of the %d classes", labelsPath, l, i, len(classes))
		}
		m.Labels[i] = int(l)
	}
	return m, nil
}

// FashionMNIST reads Fashion-MNIST's training set (60000 images, when
// train is set) or test set (10000) from dir (FashionMNISTDir for Debian's
// package): train-images-idx3-ubyte and train-labels-idx1-ubyte, or the
// t10k- files, each gzip'd (name ending .gz, preferred) or not. The images
// are 28x28 grayscale, labelled with FashionMNISTClasses.
func FashionMNIST(dir string, train bool) (*Memory, error) {
	prefix := "t10k"
	if train {
		prefix = "train"
	}
	images, err := idxFile(dir, prefix+"-images-idx3-ubyte")
	if err != nil {
		return nil, err
	}
	labels, err := idxFile(dir, prefix+"-labels-idx1-ubyte")
	if err != nil {
		return nil, err
	}
	return ReadIDXDataset(images, labels, FashionMNISTClasses)
}

// idxFile returns dir/name.gz if it exists, else dir/name.
func idxFile(dir, name string) (string, error) {
	p := filepath.Join(dir, name)
	for _, c := range []string{p + ".gz", p} {
		if _, err := os.Stat(c); err == nil {
			return c, nil
		}
	}
	return "", fmt.Errorf("Fashion-MNIST: neither %s.gz nor %s exists (Debian's dataset-fashion-mnist package installs them in %s)", p, p, FashionMNISTDir)
}

package data

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/resgo/resgo/transform"
)

// CIFAR10Classes are CIFAR-10's class names, indexed by label (those of its
// batches.meta.txt).
var CIFAR10Classes = []string{"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"}

// CIFAR10Norm is the per-channel mean and standard deviation of CIFAR-10's
// training images, the usual normalization of models trained on it.
var CIFAR10Norm = transform.Normalization{Mean: []float32{0.4914, 0.4822, 0.4465}, Std: []float32{0.2470, 0.2435, 0.2616}}

// cifarRecord is the size of one record of CIFAR-10's binary format: a
// label byte, then the 32x32 red, green and blue planes.
const cifarRecord = 1 + 3*32*32

// maxCIFARBytes bounds a CIFAR-10 binary file: each of the dataset's six
// files holds 10,000 records (30,730,000 bytes); 1 GiB is 34 times that.
const maxCIFARBytes = 1 << 30

// ReadCIFAR10 reads files in CIFAR-10's binary format
// (cifar-10-batches-bin: data_batch_1.bin ... data_batch_5.bin,
// test_batch.bin) into one in-memory dataset of 32x32 RGB images labelled
// with CIFAR10Classes. Each file must be a whole number of 3073-byte
// records, at most 1 GiB; errors name the file and, for a label above 9,
// the record.
func ReadCIFAR10(paths ...string) (*Memory, error) {
	m := &Memory{W: 32, H: 32, C: 3, ClassNames: CIFAR10Classes}
	for _, p := range paths {
		if err := readCIFARFile(p, m); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func readCIFARFile(path string, m *Memory) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	size := st.Size()
	switch {
	case size > maxCIFARBytes:
		return fmt.Errorf("%s: %d bytes, more than the %d a CIFAR-10 binary file may have", path, size, maxCIFARBytes)
	case size == 0 || size%cifarRecord != 0:
		return fmt.Errorf("%s: %d bytes is not a whole number of CIFAR-10 records of %d bytes (label + 32x32x3)", path, size, cifarRecord)
	}
	raw := make([]byte, size)
	if _, err := io.ReadFull(f, raw); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	n := int(size / cifarRecord)
	const plane = 32 * 32
	pix := make([]uint8, n*3*plane)
	for i := range n {
		rec := raw[i*cifarRecord : (i+1)*cifarRecord]
		if rec[0] >= 10 {
			return fmt.Errorf("%s: record %d has label %d, want 0 to 9", path, i, rec[0])
		}
		m.Labels = append(m.Labels, int(rec[0]))
		img := pix[i*3*plane : (i+1)*3*plane]
		for p := range plane { // planar RGB to interleaved, as PIL holds it
			img[3*p], img[3*p+1], img[3*p+2] = rec[1+p], rec[1+plane+p], rec[1+2*plane+p]
		}
	}
	m.Pix = append(m.Pix, pix...)
	return nil
}

// cifarFiles returns the training files (data_batch_*.bin, sorted) and the
// test file (test_batch.bin, "" if absent) of dir; no training file means
// dir is not CIFAR-10's binary folder.
func cifarFiles(dir string) (train []string, test string) {
	train, _ = filepath.Glob(filepath.Join(dir, "data_batch_*.bin"))
	slices.Sort(train)
	if t := filepath.Join(dir, "test_batch.bin"); fileExists(t) {
		test = t
	}
	return train, test
}

// isCIFAR10 reports whether dir holds CIFAR-10's binary files.
func isCIFAR10(dir string) bool {
	train, test := cifarFiles(dir)
	return len(train) > 0 || test != ""
}

// openCIFAR10 opens CIFAR-10's binary folder: the data_batch files for
// training, test_batch.bin for validation (or only the latter with
// opt.EvalOnly).
func openCIFAR10(dir string, opt OpenOptions) (*Sets, error) {
	trainFiles, test := cifarFiles(dir)
	if test == "" {
		return nil, fmt.Errorf("%s: CIFAR-10's data_batch_*.bin but no test_batch.bin", dir)
	}
	s := &Sets{ValName: test, CIFAR10: true}
	if !opt.EvalOnly {
		if len(trainFiles) == 0 {
			return nil, fmt.Errorf("%s: CIFAR-10's test_batch.bin but no data_batch_*.bin to train on", dir)
		}
		train, err := ReadCIFAR10(trainFiles...)
		if err != nil {
			return nil, err
		}
		s.Train = train
	}
	val, err := ReadCIFAR10(test)
	if err != nil {
		return nil, err
	}
	s.Val = val
	return s, nil
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

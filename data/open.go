package data

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/resgo/resgo/transform"
)

// FashionMNISTName is the dataset spec that names Fashion-MNIST (see Open).
const FashionMNISTName = "fashion-mnist"

// FashionMNISTNorm is Fashion-MNIST's pixel mean and standard deviation,
// the normalization of the models trained on it.
var FashionMNISTNorm = transform.Normalization{Mean: []float32{0.2860}, Std: []float32{0.3530}}

// OpenOptions configure Open.
type OpenOptions struct {
	// ValDir is a separate validation folder of class folders. With it, the
	// spec folder is the training data as it is: neither searched for
	// train/ and val/ nor split. Fashion-MNIST ignores it.
	ValDir string
	// ValSplit is the fraction of each class of a single folder of class
	// folders held out for validation, in [0, 1) (see SplitFraction).
	ValSplit float64
	// Seed chooses the images ValSplit holds out.
	Seed uint64
	// EvalOnly opens only the data a trained model is evaluated on, as
	// Sets.Val: Fashion-MNIST's test set, the val/ folder of a spec folder
	// that has one, or else the whole spec folder, not split. Sets.Train is
	// then nil.
	EvalOnly bool
	// FashionMNISTDir is the folder Fashion-MNIST is read from; ""
	// means FashionMNISTDir, where Debian's package installs it.
	FashionMNISTDir string
}

// Sets are the datasets a spec names.
type Sets struct {
	// Train is the training data (nil with OpenOptions.EvalOnly); Val the
	// validation data.
	Train, Val Dataset
	// ValName names Val's origin in messages: its folder, or the spec
	// itself for Fashion-MNIST and for a folder split by ValSplit.
	ValName string
	// FashionMNIST reports that the spec named Fashion-MNIST: 28x28
	// grayscale images, normalized by FashionMNISTNorm.
	FashionMNIST bool
	// CIFAR10 reports that the spec is a folder of CIFAR-10's binary
	// files: 32x32 RGB images, normalized by CIFAR10Norm.
	CIFAR10 bool
}

// Open opens the training and validation data that spec names, as the
// command line's --data does:
//
//   - "fashion-mnist" (FashionMNISTName): Fashion-MNIST, its 60,000
//     training images for training and its 10,000 test images for
//     validation, read from opt.FashionMNISTDir;
//   - a folder with train/ and val/ folders of class folders, as Split and
//     the tutorial's split_data.py make it: those two;
//   - a folder of class folders: split class by class by opt.ValSplit,
//     reproducibly from opt.Seed (see SplitFraction), or trained on whole
//     with the separate validation folder opt.ValDir;
//   - a CSV file list, "path,label" rows (see OpenCSV): split as a folder
//     of class folders is, or trained on whole with the validation list
//     or folder opt.ValDir (a .csv file or a folder of class folders);
//   - a folder of CIFAR-10's binary files (cifar-10-batches-bin): its
//     data_batch_*.bin for training, test_batch.bin for validation.
//
// With opt.EvalOnly it opens only the data to evaluate on (see
// OpenOptions). Training and validation folders must have the same
// classes. Errors name the folder or file and the problem.
func Open(spec string, opt OpenOptions) (*Sets, error) {
	if spec == "" {
		return nil, errors.New(`no dataset: want a folder of class folders, a folder with train/ and val/, or "` + FashionMNISTName + `"`)
	}
	if spec == FashionMNISTName {
		return openFashionMNIST(opt)
	}
	if isFolder(spec) && isCIFAR10(spec) {
		return openCIFAR10(spec, opt)
	}
	if isCSV(spec) {
		return openCSVSets(spec, opt)
	}
	if opt.EvalOnly {
		dir := spec
		if v := filepath.Join(spec, "val"); isFolder(v) {
			dir = v
		}
		val, err := OpenImageFolder(dir)
		if err != nil {
			return nil, err
		}
		return &Sets{Val: val, ValName: dir}, nil
	}
	trainDir, valDir := spec, opt.ValDir
	if valDir == "" {
		if t, v := filepath.Join(spec, "train"), filepath.Join(spec, "val"); isFolder(t) && isFolder(v) {
			trainDir, valDir = t, v
		}
	}
	if valDir != "" {
		train, val, err := OpenTrainVal(trainDir, valDir)
		if err != nil {
			return nil, err
		}
		return &Sets{Train: train, Val: val, ValName: valDir}, nil
	}
	all, err := OpenImageFolder(spec)
	if err != nil {
		return nil, err
	}
	train, val, err := SplitFraction(all, opt.ValSplit, opt.Seed)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", spec, err)
	}
	return &Sets{Train: train, Val: val, ValName: spec}, nil
}

// openFashionMNIST opens Fashion-MNIST's training set (unless
// opt.EvalOnly) and test set.
func openFashionMNIST(opt OpenOptions) (*Sets, error) {
	dir := opt.FashionMNISTDir
	if dir == "" {
		dir = FashionMNISTDir
	}
	const hint = " (install it with: apt-get install dataset-fashion-mnist)"
	s := &Sets{ValName: FashionMNISTName, FashionMNIST: true}
	if !opt.EvalOnly {
		train, err := FashionMNIST(dir, true)
		if err != nil {
			return nil, fmt.Errorf("%w%s", err, hint)
		}
		s.Train = train
	}
	test, err := FashionMNIST(dir, false)
	if err != nil {
		if s.Train == nil { // the first files read: most likely not installed
			err = fmt.Errorf("%w%s", err, hint)
		}
		return nil, err
	}
	s.Val = test
	return s, nil
}

// isFolder reports whether path is a folder (following symbolic links).
func isFolder(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.IsDir()
}

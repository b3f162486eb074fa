package data

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/resgo/resgo/transform"
)

var benchTree struct {
	once sync.Once
	dir  string
	err  error
}

// TestMain removes the benchmarks' generated images.
func TestMain(m *testing.M) {
	code := m.Run()
	if benchTree.dir != "" {
		os.RemoveAll(benchTree.dir)
	}
	os.Exit(code)
}

// jpegTree returns a folder of 5 classes of 16 generated 500x375 JPEG
// images (the size of a typical flower_photos image), made once.
func jpegTree(b *testing.B) string {
	benchTree.once.Do(func() {
		benchTree.dir, benchTree.err = os.MkdirTemp("", "resgo-bench-")
		if benchTree.err != nil {
			return
		}
		for c := range 5 {
			for i := range 16 {
				writeImage(b, filepath.Join(benchTree.dir, fmt.Sprintf("class%d", c), fmt.Sprintf("%03d.jpg", i)), 500, 375, uint64(c*100+i))
			}
		}
	})
	if benchTree.err != nil {
		b.Fatal(benchTree.err)
	}
	return benchTree.dir
}

// runEpochs runs b.N epochs and reports images per second.
func runEpochs(b *testing.B, l *Loader) {
	b.ResetTimer()
	start := time.Now()
	images := 0
	for e := range b.N {
		it := l.Epoch(e)
		for batch := it.Next(); batch != nil; batch = it.Next() {
			images += len(batch.Labels)
			batch.Release()
		}
	}
	b.ReportMetric(float64(images)/time.Since(start).Seconds(), "images/s")
}

// BenchmarkLoaderImageFolderRRC measures the image folder loader with the
// tutorial's training transform: JPEG decoding, RandomResizedCrop(224),
// RandomHorizontalFlip, ToTensor and ImageNet normalization, batches of
// 16, on GOMAXPROCS workers. One iteration is one epoch of 80 images.
func BenchmarkLoaderImageFolderRRC(b *testing.B) {
	f, err := OpenImageFolder(jpegTree(b))
	if err != nil {
		b.Fatal(err)
	}
	l, err := NewLoader(f, Options{BatchSize: 16, Channels: 3, Height: 224, Width: 224, Shuffle: true, Seed: 1,
		Transform: transform.ImageNetTrain.Func(transform.ImageNet)})
	if err != nil {
		b.Fatal(err)
	}
	runEpochs(b, l)
}

// BenchmarkLoaderFashionMNIST measures the in-memory loader with the
// small-image recipe (pad 4, random 28x28 crop, flip) in batches of 128 on
// GOMAXPROCS workers. One iteration is one epoch of 10000 images (the
// Fashion-MNIST test set when installed, else generated images).
func BenchmarkLoaderFashionMNIST(b *testing.B) {
	ds, err := FashionMNIST(FashionMNISTDir, false)
	if err != nil {
		dir := b.TempDir()
		writeFashion(b, dir, "t10k", 10000, false)
		if ds, err = FashionMNIST(dir, false); err != nil {
			b.Fatal(err)
		}
	}
	l, err := NewLoader(ds, Options{BatchSize: 128, Channels: 1, Height: 28, Width: 28, Shuffle: true, Seed: 1,
		Transform: transform.SmallImageTrain(28, 4).Func(transform.Normalization{Mean: []float32{0.2860}, Std: []float32{0.3530}})})
	if err != nil {
		b.Fatal(err)
	}
	runEpochs(b, l)
}

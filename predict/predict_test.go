package predict_test

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/png"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"

	"github.com/resgo/resgo/backend"
	_ "github.com/resgo/resgo/backend/dnnl"
	_ "github.com/resgo/resgo/backend/ref"
	"github.com/resgo/resgo/data"
	"github.com/resgo/resgo/models/resnet"
	"github.com/resgo/resgo/predict"
	"github.com/resgo/resgo/transform"
)

// classifier returns a ResNet-20 classifier of 8x8 inputs (cheap on either
// backend) with batches of batch images.
func classifier(t *testing.T, batch int) *predict.Classifier {
	t.Helper()
	b, err := backend.Default()
	if err != nil {
		t.Fatal(err)
	}
	m, err := resnet.New(b, "resnet20", resnet.Options{IncludeTop: true, NumClasses: 5, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	clf, err := predict.New(m, []string{"a", "b", "c", "d", "e"}, transform.Preset{ResizeSize: 8, CropSize: 8, Channels: 3, Norm: transform.ImageNet})
	if err != nil {
		t.Fatal(err)
	}
	clf.Batch = batch
	return clf
}

// noiseImage returns a w x h RGB image of pseudo-random pixels.
func noiseImage(w, h int, seed uint64) *transform.Image {
	r := rand.New(rand.NewPCG(seed, 7))
	m := transform.NewImage(w, h, 3)
	for i := range m.Pix {
		m.Pix[i] = uint8(r.IntN(256))
	}
	return m
}

// names returns n image names; every seventh one fails to load.
func names(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("img%03d.png", i)
		if i%7 == 3 {
			out[i] = fmt.Sprintf("broken%03d.png", i)
		}
	}
	return out
}

var errBroken = errors.New("not an image")

// TestClassifyStreamMatchesClassify classifies a list with unloadable
// entries through ClassifyStream and through Classify on every loadable
// image at once: the same results in the same order, the failures
// reported in order.
func TestClassifyStreamMatchesClassify(t *testing.T) {
	clf := classifier(t, 4)
	list := names(23)
	load := func(name string) (*transform.Image, error) {
		var i int
		if _, err := fmt.Sscanf(name, "img%d.png", &i); err != nil {
			return nil, fmt.Errorf("%s: %w", name, errBroken)
		}
		return noiseImage(20+i%5, 16, uint64(i)), nil
	}
	var all []*transform.Image
	var allNames, wantSkipped []string
	for _, n := range list {
		im, err := load(n)
		if err != nil {
			wantSkipped = append(wantSkipped, n)
			continue
		}
		all, allNames = append(all, im), append(allNames, n)
	}
	want, err := clf.Classify(all, allNames, 3)
	if err != nil {
		t.Fatal(err)
	}

	var got []predict.Result
	var skipped []string
	n, err := clf.ClassifyStream(list, 3, load,
		func(name string, err error) {
			if !errors.Is(err, errBroken) {
				t.Errorf("skip(%s) with %v", name, err)
			}
			skipped = append(skipped, name)
		},
		func(r predict.Result) error { got = append(got, r); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if n != len(want) || len(got) != len(want) {
		t.Fatalf("%d classified, %d results; Classify gave %d", n, len(got), len(want))
	}
	for i := range want {
		if got[i].Image != want[i].Image || !slices.Equal(got[i].Logits, want[i].Logits) || got[i].Top[0] != want[i].Top[0] {
			t.Errorf("result %d: %s %v, Classify: %s %v", i, got[i].Image, got[i].Top, want[i].Image, want[i].Top)
		}
	}
	if !slices.Equal(skipped, wantSkipped) {
		t.Errorf("skipped %v, want %v", skipped, wantSkipped)
	}

	// An error from emit stops the stream.
	stop := errors.New("stop")
	emitted := 0
	if _, err := clf.ClassifyStream(list, 1, load, nil, func(predict.Result) error { emitted++; return stop }); !errors.Is(err, stop) || emitted != 1 {
		t.Errorf("emit's error: %v after %d results", err, emitted)
	}
}

// streamPeak streams n images of 256x256 through a classifier with batches
// of 8 and returns the largest number of loaded images not yet emitted and
// the largest live heap seen when an image is loaded.
func streamPeak(t *testing.T, clf *predict.Classifier, n int) (held int, peak uint64) {
	t.Helper()
	loaded, emitted := 0, 0
	load := func(name string) (*transform.Image, error) {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		peak = max(peak, ms.HeapAlloc)
		loaded++
		held = max(held, loaded-emitted)
		return noiseImage(256, 256, uint64(loaded)), nil
	}
	list := make([]string, n)
	for i := range list {
		list[i] = fmt.Sprint(i)
	}
	got, err := clf.ClassifyStream(list, 1, load, nil, func(predict.Result) error { emitted++; return nil })
	if err != nil || got != n {
		t.Fatalf("%d of %d classified: %v", got, n, err)
	}
	return held, peak
}

// TestClassifyStreamMemory streams 40 and then 200 images of 192 KiB each
// (39 MB together): no more than a batch of them is ever held, and the
// live heap peaks within a few images' worth of each other, where holding
// them all would add 31 MB for the 160 more.
func TestClassifyStreamMemory(t *testing.T) {
	clf := classifier(t, 8)
	streamPeak(t, clf, 8) // warm up: the model's buffers
	held40, peak40 := streamPeak(t, clf, 40)
	held200, peak200 := streamPeak(t, clf, 200)
	const imageBytes = 256 * 256 * 3
	if held40 > 8 || held200 > 8 {
		t.Errorf("held up to %d (40 images) and %d (200 images) images at once, batches of 8", held40, held200)
	}
	t.Logf("peak live heap: %d bytes for 40 images, %d for 200 (an image is %d bytes)", peak40, peak200, imageBytes)
	if peak200 > peak40+4*imageBytes {
		t.Errorf("peak live heap grows with the number of images: %d bytes for 40, %d for 200", peak40, peak200)
	}
}

// TestAlphaCannotChangeTopClass classifies a semi-transparent PNG and its
// opaque twin (same stored colours, alpha 255): alpha is dropped as PIL
// drops it, so the pixels, logits and top class are identical.
func TestAlphaCannotChangeTopClass(t *testing.T) {
	clf := classifier(t, 2)
	r := rand.New(rand.NewPCG(4, 4))
	see := image.NewNRGBA(image.Rect(0, 0, 24, 24))
	for i := range see.Pix {
		see.Pix[i] = uint8(r.IntN(256))
	}
	opaque := image.NewNRGBA(see.Rect)
	copy(opaque.Pix, see.Pix)
	for i := 3; i < len(opaque.Pix); i += 4 {
		opaque.Pix[i] = 255
	}
	var imgs []*transform.Image
	for _, m := range []image.Image{see, opaque} {
		var buf bytes.Buffer
		if err := png.Encode(&buf, m); err != nil {
			t.Fatal(err)
		}
		im, err := data.DecodeImage(bytes.NewReader(buf.Bytes()), "x.png", 3)
		if err != nil {
			t.Fatal(err)
		}
		imgs = append(imgs, im)
	}
	if !bytes.Equal(imgs[0].Pix, imgs[1].Pix) {
		t.Fatal("alpha changes the decoded pixels")
	}
	res, err := clf.Classify(imgs, []string{"alpha", "opaque"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res[0].Logits, res[1].Logits) || res[0].Top[0].Index != res[1].Top[0].Index {
		t.Errorf("alpha changes the logits: %v, opaque %v", res[0].Logits, res[1].Logits)
	}
}

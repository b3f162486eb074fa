package transform

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"sync"
	"testing"
)

// Parity with torchvision 0.14's RandomErasing: fixtures made by
// scripts/make_augment_fixtures.py at test time.

type augmentFixture struct {
	Torch       string `json:"torch"`
	TorchVision string `json:"torchvision"`
	Erase       struct {
		Shape []int     `json:"shape"`
		X     []float64 `json:"x"`
		Cases []struct {
			Rect []int     `json:"rect"`
			Out  []float64 `json:"out"`
		} `json:"cases"`
	} `json:"erase"`
	EraseStats []struct {
		H, W, N int
		None    float64    `json:"none"`
		Height  [2]float64 `json:"height"`
		Width   [2]float64 `json:"width"`
		Area    [2]float64 `json:"area"`
	} `json:"erase_stats"`
	Ops []struct {
		Shape []int   `json:"shape"`
		Pix   []uint8 `json:"pix"`
		Cases []struct {
			Op        string  `json:"op"`
			Magnitude float64 `json:"magnitude"`
			Out       []uint8 `json:"out"`
		} `json:"cases"`
	} `json:"ops"`
	Bins struct {
		Order []string `json:"order"`
		TA    map[string]struct {
			Values []float64 `json:"values"`
			Signed bool      `json:"signed"`
		} `json:"trivialaugment"`
		RA map[string]struct {
			Values []float64 `json:"values"`
			Signed bool      `json:"signed"`
		} `json:"randaugment"`
	} `json:"bins"`
}

var (
	augOnce sync.Once
	augData *augmentFixture
	augErr  error
	augSkip bool
)

// loadAugmentFixture runs the fixture script once; it skips the test when
// /usr/bin/python3 cannot import torchvision, unless CI=true or
// RESGO_REQUIRE_TORCH=1.
func loadAugmentFixture(t *testing.T) *augmentFixture {
	t.Helper()
	augOnce.Do(func() {
		if err := exec.Command("/usr/bin/python3", "-c", "import torchvision").Run(); err != nil {
			augErr, augSkip = fmt.Errorf("/usr/bin/python3 cannot import torchvision (Debian's python3-torchvision): %v", err), true
			return
		}
		out, err := exec.Command("/usr/bin/python3", "../scripts/make_augment_fixtures.py").Output()
		if err != nil {
			if ee, ok := err.(*exec.ExitError); ok {
				err = fmt.Errorf("%v\n%s", err, ee.Stderr)
			}
			augErr = fmt.Errorf("make_augment_fixtures.py failed: %v", err)
			return
		}
		var f augmentFixture
		if err := json.Unmarshal(out, &f); err != nil {
			augErr = fmt.Errorf("make_augment_fixtures.py output: %v", err)
			return
		}
		augData = &f
	})
	if augErr != nil {
		if !augSkip || os.Getenv("CI") == "true" || os.Getenv("RESGO_REQUIRE_TORCH") == "1" {
			t.Fatal(augErr)
		}
		t.Skip(augErr)
	}
	return augData
}

// TestTorchErase: Erase with the same rectangle gives
// torchvision.transforms.functional.erase's tensor, bit for bit.
func TestTorchErase(t *testing.T) {
	f := loadAugmentFixture(t)
	e := f.Erase
	c, h, w := e.Shape[0], e.Shape[1], e.Shape[2]
	for _, tc := range e.Cases {
		x := make([]float32, len(e.X))
		for i, v := range e.X {
			x[i] = float32(v)
		}
		r := tc.Rect
		Erase(x, c, h, w, r[0], r[1], r[2], r[3], 0)
		for i, v := range x {
			if v != float32(tc.Out[i]) {
				t.Fatalf("rectangle %v: [%d] = %v, torchvision %v", r, i, v, tc.Out[i])
			}
		}
	}
}

// TestTorchRandomErasingStats: RandomErasingParams draws rectangles with
// the statistics of torchvision's RandomErasing.get_params (the draws
// themselves come from different generators): the mean height, width and
// area within 5 standard errors, their spreads within 5%.
func TestTorchRandomErasingStats(t *testing.T) {
	f := loadAugmentFixture(t)
	rng := rand.New(rand.NewPCG(1, 2))
	for _, s := range f.EraseStats {
		var hs, ws, as []float64
		none := 0
		for range s.N {
			_, _, eh, ew, ok := RandomErasingParams(s.H, s.W, DefaultEraseScale, DefaultEraseRatio, rng)
			if !ok {
				none++
				continue
			}
			hs, ws, as = append(hs, float64(eh)), append(ws, float64(ew)), append(as, float64(eh*ew)/float64(s.H*s.W))
		}
		if math.Abs(float64(none)/float64(s.N)-s.None) > 0.01 {
			t.Errorf("%dx%d: %d of %d draws erase nothing, torchvision %.4f", s.H, s.W, none, s.N, s.None)
		}
		for _, q := range []struct {
			name string
			v    []float64
			want [2]float64
		}{{"height", hs, s.Height}, {"width", ws, s.Width}, {"area", as, s.Area}} {
			m, sd := meanSD(q.v)
			se := q.want[1] * math.Sqrt(2/float64(len(q.v)))
			if math.Abs(m-q.want[0]) > 5*se || math.Abs(sd-q.want[1]) > 0.05*q.want[1] {
				t.Errorf("%dx%d %s: mean %.4f sd %.4f, torchvision %.4f sd %.4f", s.H, s.W, q.name, m, sd, q.want[0], q.want[1])
			}
		}
	}
}

func meanSD(v []float64) (float64, float64) {
	var s float64
	for _, x := range v {
		s += x
	}
	m := s / float64(len(v))
	var q float64
	for _, x := range v {
		q += (x - m) * (x - m)
	}
	return m, math.Sqrt(q / float64(len(v)-1))
}

// TestRandomErasingInAugment: with ReProb 1 every sample has a rectangle
// of zeros inside the image; with ReProb 0 the draws are those of the
// augmentation without erasing.
func TestRandomErasingInAugment(t *testing.T) {
	img := NewImage(28, 28, 1)
	for i := range img.Pix {
		img.Pix[i] = 200
	}
	norm := Normalization{Mean: []float32{0}, Std: []float32{1}}
	a := SmallImageTrain(28, 0)
	a.FlipProb = 0
	a.ReProb = 1
	dst := make([]float32, 28*28)
	rng := rand.New(rand.NewPCG(3, 4))
	for range 50 {
		a.Apply(img, rng, dst, norm)
		zeros := 0
		for _, v := range dst {
			if v == 0 {
				zeros++
			}
		}
		if lo, hi := 0.02*28*28-28, 0.33*28*28+28; float64(zeros) < lo || float64(zeros) > hi {
			t.Fatalf("%d erased pixels of %d", zeros, 28*28)
		}
	}
}

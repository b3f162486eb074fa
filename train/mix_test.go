package train_test

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"testing"

	"github.com/resgo/resgo/backend"
	"github.com/resgo/resgo/tensor"
	"github.com/resgo/resgo/train"
)

// mixFixture is the "mix" part of scripts/make_augment_fixtures.py's
// output: timm's Mixup (batch mode) for given draws.
type mixFixture struct {
	Shape     []int     `json:"shape"`
	X         []float64 `json:"x"`
	Labels    []int     `json:"labels"`
	Logits    []float64 `json:"logits"`
	Smoothing float64   `json:"smoothing"`
	Classes   int       `json:"classes"`
	Cases     []struct {
		Kind   string    `json:"kind"`
		CY     int       `json:"cy"`
		CX     int       `json:"cx"`
		Lam    float64   `json:"lam"`
		X      []float64 `json:"x"`
		Target []float64 `json:"target"`
		Loss   float64   `json:"loss"`
		Grad   []float64 `json:"grad"`
	} `json:"cases"`
}

// loadMixFixture runs scripts/make_augment_fixtures.py; it skips the test
// when /usr/bin/python3 cannot import torchvision, unless CI=true or
// RESGO_REQUIRE_TORCH=1.
func loadMixFixture(t *testing.T) *mixFixture {
	t.Helper()
	if err := exec.Command("/usr/bin/python3", "-c", "import torchvision").Run(); err != nil {
		if os.Getenv("CI") == "true" || os.Getenv("RESGO_REQUIRE_TORCH") == "1" {
			t.Fatal("/usr/bin/python3 cannot import torchvision:", err)
		}
		t.Skip("/usr/bin/python3 cannot import torchvision:", err)
	}
	out, err := exec.Command("/usr/bin/python3", "../scripts/make_augment_fixtures.py", "--only", "mix").Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			err = fmt.Errorf("%v\n%s", err, ee.Stderr)
		}
		t.Fatal("make_augment_fixtures.py:", err)
	}
	var f struct {
		Mix mixFixture `json:"mix"`
	}
	if err := json.Unmarshal(out, &f); err != nil {
		t.Fatal(err)
	}
	return &f.Mix
}

func f32(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}

// TestTorchMix: for the same draws (lam, the cutmix box's centre), MixBatch
// and CutmixBox give timm's mixed batch and corrected lam, and
// MixedCrossEntropy the loss and gradient of timm's soft targets with
// SoftTargetCrossEntropy (autograd).
func TestTorchMix(t *testing.T) {
	f := loadMixFixture(t)
	n, c, h, w := f.Shape[0], f.Shape[1], f.Shape[2], f.Shape[3]
	b, err := backend.New("ref", 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range f.Cases {
		p := train.MixParams{Lam: tc.Lam}
		if tc.Kind == "cutmix" {
			// The fixture's lam is the corrected one; the drawn lam that
			// gives the same box is recovered from the sides.
			p = cutmixFor(t, h, w, tc.Lam, tc.CY, tc.CX)
		}
		if math.Abs(p.Lam-tc.Lam) > 1e-15 {
			t.Errorf("%s: lam %v, timm %v", tc.Kind, p.Lam, tc.Lam)
		}
		x := f32(f.X)
		train.MixBatch(x, n, c, h, w, p)
		for i, v := range x {
			if v != float32(tc.X[i]) {
				t.Fatalf("%s lam %v: x[%d] = %v, timm %v", tc.Kind, tc.Lam, i, v, tc.X[i])
			}
		}
		logits := tensor.FromValues(f32(f.Logits), n, f.Classes)
		var d, scratch tensor.Tensor
		var loss float64
		if err := backend.Do(b, func() {
			loss = train.MixedCrossEntropy(b, &d, &scratch, logits, f.Labels, p.Lam, float32(f.Smoothing))
		}); err != nil {
			t.Fatal(err)
		}
		if math.Abs(loss-tc.Loss) > 1e-6*tc.Loss {
			t.Errorf("%s lam %v: loss %.9g, timm %.9g", tc.Kind, tc.Lam, loss, tc.Loss)
		}
		for i, g := range d.Values() {
			if math.Abs(float64(g)-tc.Grad[i]) > 1e-6 {
				t.Errorf("%s lam %v: grad[%d] = %v, timm %v", tc.Kind, tc.Lam, i, g, tc.Grad[i])
			}
		}
	}
}

// cutmixFor finds a drawn lam whose CutmixBox at (cy, cx) has the
// corrected lam want, scanning lam finely (the box depends on lam only
// through int(side*sqrt(1-lam))).
func cutmixFor(t *testing.T, h, w int, want float64, cy, cx int) train.MixParams {
	t.Helper()
	for i := 0; i <= 10000; i++ {
		p := train.CutmixBox(h, w, float64(i)/10000, cy, cx)
		if math.Abs(p.Lam-want) < 1e-12 {
			return p
		}
	}
	t.Fatalf("no lam gives a cutmix box of lam %v at (%d, %d)", want, cy, cx)
	return train.MixParams{}
}

// TestMixDrawStats: lam follows Beta(alpha, alpha) (mean 1/2, variance
// 1/(4(2 alpha+1))), mixup_prob and switch_prob are honoured, and the
// cutmix box's corrected lam is 1 - its area.
func TestMixDrawStats(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	const n = 20000
	for _, alpha := range []float64{0.2, 0.8, 1} {
		m := train.Mix{MixupAlpha: alpha}
		var s, q float64
		for range n {
			l := m.Draw(28, 28, rng).Lam
			s += l
			q += l * l
		}
		mean := s / n
		variance := q/n - mean*mean
		want := 1 / (4 * (2*alpha + 1))
		if math.Abs(mean-0.5) > 5*math.Sqrt(want/n) || math.Abs(variance-want) > 0.05*want {
			t.Errorf("Beta(%v, %v): mean %.4f variance %.4f, want 0.5 and %.4f", alpha, alpha, mean, variance, want)
		}
	}
	m := train.Mix{MixupAlpha: 0.8, CutmixAlpha: 1, Prob: 0.6, SwitchProb: 0.3}
	mixed, cut := 0, 0
	for range n {
		p := m.Draw(28, 28, rng)
		if p.Lam != 1 || p.Cutmix {
			mixed++
		}
		if p.Cutmix {
			cut++
			if area := float64((p.Bottom-p.Top)*(p.Right-p.Left)) / (28 * 28); math.Abs(p.Lam-(1-area)) > 1e-12 {
				t.Fatalf("cutmix lam %v for a box of area %v", p.Lam, area)
			}
		}
	}
	if fm, fc := float64(mixed)/n, float64(cut)/float64(mixed); math.Abs(fm-0.6) > 0.02 || math.Abs(fc-0.3) > 0.02 {
		t.Errorf("mixed %.3f of batches (want 0.6), cutmix %.3f of them (want 0.3)", fm, fc)
	}
}

//go:build cgo

package predict_test

import (
	"bytes"
	"encoding/json"
	"image/jpeg"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"

	"github.com/resgo/resgo/backend"
	"github.com/resgo/resgo/checkpoint"
	"github.com/resgo/resgo/data"
	"github.com/resgo/resgo/internal/randt"
	"github.com/resgo/resgo/models/resnet"
	"github.com/resgo/resgo/predict"
	"github.com/resgo/resgo/transform"
)

// jpegParityScript writes, into the folder sys.argv[2], a seeded
// torchvision resnet18 (scripts/make_parity_fixtures.py's build, from
// sys.argv[1]; fc scaled so that the logits are of size about 1) as
// resnet18.pth, JPEGs of 300x220 images of gradients, stripes of 1 to 3
// pixels and noise (a different one in each file) written by PIL (4:4:4,
// 4:2:2 and 4:2:0, baseline and progressive; gray, baseline and
// progressive; CMYK; YCCK, which is a CMYK file with its Adobe transform
// flag set to 2), and logits.json: the
// logits of each file read by PIL, converted with convert("RGB") and
// preprocessed by torchvision's ResNet18_Weights.IMAGENET1K_V1.transforms()
// (resize 256, center crop 224, normalize), as the tutorial's predict.py
// does.
const jpegParityScript = `
import json, os, sys
import numpy as np
import torch, torchvision
from PIL import Image, ImageFile
ImageFile.MAXBLOCK = 1 << 26  # whole progressive files in one buffer: PIL's encoder cannot suspend there
sys.path.insert(0, sys.argv[1])
from make_parity_fixtures import build
out = sys.argv[2]
torch.set_num_threads(2)
m = build("resnet18").eval()
with torch.no_grad():
    s = m(torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(2))).std()
    m.fc.weight.div_(s)
    m.fc.bias.div_(s)
torch.save(m.state_dict(), out + "/resnet18.pth")
H, W = 220, 300
yy, xx = np.mgrid[0:H, 0:W]
def image(k):  # gradients, stripes of period 2 to 6 and noise, different for each k
    rng = np.random.default_rng(k)
    a, b, c = rng.integers(0, 256, 3)
    p = 1 + k % 3
    smooth = np.stack([(a + xx * 255 // W) % 256, (b + yy * 255 // H) % 256, (c + xx + yy) % 256], axis=2)
    stripes = np.stack([(xx // p % 2) * 255, (yy // p % 2) * (200 + k), (xx + yy) % 3 * 120], axis=2)
    noise = rng.integers(0, 256, size=(H, W, 3))
    region = ((xx // (40 + 5 * k) + yy // 50) % 3)[..., None]
    return Image.fromarray(np.where(region == 0, stripes, np.where(region == 1, noise, smooth)).astype(np.uint8))
files = []
def save(im, name, **kw):
    im.save(os.path.join(out, name), **kw)
    files.append(name)
for ss in (0, 1, 2):
    for prog in (0, 1):
        save(image(2 * ss + prog), "sub%d-prog%d.jpg" % (ss, prog), quality=90, subsampling=ss, progressive=bool(prog))
save(image(6).convert("L"), "gray.jpg", quality=90)
save(image(7).convert("L"), "gray-prog.jpg", quality=90, progressive=True)
save(image(8).convert("CMYK"), "cmyk.jpg", quality=90)
save(image(9).convert("CMYK"), "ycck.jpg", quality=90)
raw = bytearray(open(os.path.join(out, "ycck.jpg"), "rb").read())
i = raw.find(b"Adobe")  # "Adobe", version (2), flags0 (2), flags1 (2), transform (1)
raw[i + 11] = 2
open(os.path.join(out, "ycck.jpg"), "wb").write(raw)
pre = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.transforms()
logits = {}
with torch.no_grad():
    for name in files:
        x = pre(Image.open(os.path.join(out, name)).convert("RGB")).unsqueeze(0)
        logits[name] = m(x)[0].tolist()
json.dump(logits, open(os.path.join(out, "logits.json"), "w"))
`

// TestJPEGParity runs JPEGs of every subsampling, baseline and
// progressive, gray, CMYK and YCCK, through resgo's prediction path
// (data.LoadImage, the IMAGENET1K_V1 preprocessing, a seeded resnet18 on
// the default backend) and compares the logits with PIL, torchvision's
// transforms and PyTorch's model on the same files: within 1e-5 relative
// to the largest logit, and the same five best classes in the same order.
// It logs how far Go's
// image/jpeg (the decoder of the build without cgo) would be.
func TestJPEGParity(t *testing.T) {
	if err := exec.Command("/usr/bin/python3", "-c", "import torch, torchvision, PIL").Run(); err != nil {
		if os.Getenv("CI") == "true" || os.Getenv("RESGO_REQUIRE_TORCH") == "1" {
			t.Fatal("Debian's python3-torch, python3-torchvision and python3-pil are required in CI:", err)
		}
		t.Skip("no python3-torch, python3-torchvision or python3-pil")
	}
	dir := t.TempDir()
	if out, err := exec.Command("/usr/bin/python3", "-c", jpegParityScript, "../scripts", dir).CombinedOutput(); err != nil {
		t.Fatalf("PyTorch: %v\n%s", err, out)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "logits.json"))
	if err != nil {
		t.Fatal(err)
	}
	var want map[string][]float32
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	names := make([]string, 0, len(want))
	for name := range want {
		names = append(names, name)
	}
	sort.Strings(names)

	b, err := backend.Default()
	if err != nil {
		t.Fatal(err)
	}
	m, err := resnet.New(b, "resnet18", resnet.Options{IncludeTop: true})
	if err != nil {
		t.Fatal(err)
	}
	sd, err := checkpoint.ReadPTH(filepath.Join(dir, "resnet18.pth"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := checkpoint.Load(m, sd, checkpoint.LoadOptions{}); err != nil {
		t.Fatal(err)
	}
	clf, err := predict.New(m, resnet.ImageNetClasses(), transform.ImageNetV1)
	if err != nil {
		t.Fatal(err)
	}

	var libjpeg, goJPEG []*transform.Image
	for _, name := range names {
		path := filepath.Join(dir, name)
		im, err := data.LoadImage(path, 3)
		if err != nil {
			t.Fatal(err)
		}
		libjpeg = append(libjpeg, im)
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		g, err := jpeg.Decode(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		goJPEG = append(goJPEG, transform.FromImage(g, 3))
	}
	got, err := clf.Classify(libjpeg, names, 5)
	if err != nil {
		t.Fatal(err)
	}
	withGo, err := clf.Classify(goJPEG, names, 5)
	if err != nil {
		t.Fatal(err)
	}
	worst, worstGo, flipsGo := 0.0, 0.0, 0
	for i, name := range names {
		w := want[name]
		top5 := make([]int, len(w)) // PyTorch's classes, best first
		for c := range top5 {
			top5[c] = c
		}
		sort.SliceStable(top5, func(a, b int) bool { return w[top5[a]] > w[top5[b]] })
		top5 = top5[:5]
		rel := randt.RelErr(got[i].Logits, w)
		relGo := randt.RelErr(withGo[i].Logits, w)
		worst, worstGo = max(worst, rel), max(worstGo, relGo)
		if withGo[i].Top[0].Index != top5[0] {
			flipsGo++
		}
		t.Logf("%-14s relative error of the logits %.2g, top-1 %d (PyTorch's %d, margin %.3f); Go's image/jpeg: %.2g, top-1 %d",
			name, rel, got[i].Top[0].Index, top5[0], w[top5[0]]-w[top5[1]], relGo, withGo[i].Top[0].Index)
		if rel > 1e-5 {
			t.Errorf("%s: logits differ from PyTorch's by %.3g relative to the largest, more than 1e-5", name, rel)
		}
		for r, c := range got[i].Top {
			if c.Index != top5[r] {
				t.Errorf("%s: class %d is number %d, PyTorch's is %d", name, c.Index, r+1, top5[r])
			}
		}
	}
	t.Logf("%d JPEGs: worst relative error %.2g; with Go's image/jpeg %.2g and %d top-1 classes changed", len(names), worst, worstGo, flipsGo)
}

package checkpoint_test

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/resgo/resgo/checkpoint"
	"github.com/resgo/resgo/models/resnet"
	"github.com/resgo/resgo/nn"
)

// TestWritePTHRoundTrip writes a resnet18's state as torch.save would and
// reads it back with resgo's own reader.
func TestWritePTHRoundTrip(t *testing.T) {
	m := model(t, 5)
	*m.BN1.NumBatchesTracked.Count = 123
	sd := checkpoint.FromModule(m)
	path := filepath.Join(t.TempDir(), "flowers.pth")
	if err := checkpoint.WritePTH(path, sd); err != nil {
		t.Fatal(err)
	}
	back, err := checkpoint.ReadPTH(path)
	if err != nil {
		t.Fatal(err)
	}
	if back.Len() != sd.Len() {
		t.Fatalf("%d entries back, %d written", back.Len(), sd.Len())
	}
	for i, k := range sd.Keys {
		a, b := sd.Get(k), back.Get(k)
		if back.Keys[i] != k || fmt.Sprint(a.Shape) != fmt.Sprint(b.Shape) {
			t.Fatalf("%s: %v back as %s %v", k, a.Shape, back.Keys[i], b.Shape)
		}
		for j := range a.F32 {
			if math.Float32bits(a.F32[j]) != math.Float32bits(b.F32[j]) {
				t.Fatalf("%s[%d] changed", k, j)
			}
		}
	}
	if back.Get("bn1.num_batches_tracked").I64[0] != 123 {
		t.Error("num_batches_tracked not kept as int64")
	}
}

// TestWritePTHLoadsInPyTorch: torchvision's resnet18(num_classes=5) loads
// the file strictly with torch.load, as the tutorial's predict.py loads
// resNet34.pth, and gets the same values.
func TestWritePTHLoadsInPyTorch(t *testing.T) {
	if err := exec.Command("/usr/bin/python3", "-c", "import torch, torchvision").Run(); err != nil {
		if os.Getenv("CI") == "true" || os.Getenv("RESGO_REQUIRE_TORCH") == "1" {
			t.Fatal("Debian's python3-torch is required in CI:", err)
		}
		t.Skip("no PyTorch:", err)
	}
	m := model(t, 5)
	sd := checkpoint.FromModule(m)
	path := filepath.Join(t.TempDir(), "resNet18.pth")
	if err := checkpoint.WritePTH(path, sd); err != nil {
		t.Fatal(err)
	}
	script := fmt.Sprintf(`
import torch, torchvision
sd = torch.load(%q, map_location="cpu")
net = torchvision.models.resnet18(num_classes=5)
net.load_state_dict(sd)  # strict
print(len(sd), float(net.layer3[1].conv2.weight.double().sum()), int(net.bn1.num_batches_tracked), sd["fc.weight"].dtype)
`, path)
	out, err := exec.Command("/usr/bin/python3", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("PyTorch could not load it: %v\n%s", err, out)
	}
	var sum float64
	for _, v := range m.Layers[2].Layers[1].Module.(*resnet.BasicBlock).Conv2.Weight.Value.Values() {
		sum += float64(v)
	}
	want := fmt.Sprintf("%d %.6g", len(nn.State(m)), sum)
	fields := strings.Fields(string(out))
	var gotSum float64
	fmt.Sscan(fields[1], &gotSum)
	if got := fmt.Sprintf("%s %.6g", fields[0], gotSum); got != want || fields[3] != "torch.float32" {
		t.Errorf("PyTorch read %s, want %s (float32)", strings.TrimSpace(string(out)), want)
	}
}
